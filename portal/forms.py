"""Forms of the portal package."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.forms.renderers import BaseRenderer
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy

from .choices import Scope
from .models import Team


def model_choice_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField[Any]:
    """The form's field `name`, typed as the ModelChoiceField it is (to set its queryset)."""
    return cast("forms.ModelChoiceField[Any]", form.fields[name])


def _attrs_html(attrs: dict[str, Any]) -> SafeString:
    """Django's widgets/attrs.html in Python: ` name="value"`, a bare ` name` for True."""
    return mark_safe(  # noqa: S308 - each part is format_html's escaped output
        "".join(
            format_html(" {}", name) if value is True else format_html(' {}="{}"', name, str(value))
            for name, value in attrs.items()
            if value is not False
        )
    )


class QuickSelect(forms.Select):
    """A `<select>` written in Python: the same HTML as Django's select.html, without a
    template include per `<option>`. A release form's two selects (87 options) took 12 ms of
    a deployment page's 30 through the templates; what a busy page's form costs."""

    def render(
        self,
        name: str,
        value: Any,
        attrs: dict[str, Any] | None = None,
        renderer: BaseRenderer | None = None,
    ) -> SafeString:
        widget = self.get_context(name, value, attrs)["widget"]
        parts: list[str] = [
            format_html('<select name="{}"{}>', widget["name"], _attrs_html(widget["attrs"]))
        ]
        for group_name, options, _index in widget["optgroups"]:
            if group_name:
                parts.append(format_html('\n  <optgroup label="{}">', group_name))
            parts.extend(
                format_html(
                    '\n  <option value="{}"{}>{}</option>\n',
                    str(option["value"]),
                    _attrs_html(option["attrs"]),
                    option["label"],
                )
                for option in options
            )
            if group_name:
                parts.append("\n  </optgroup>")
        parts.append("\n</select>")
        # Every part above is format_html's escaped output or a literal.
        return mark_safe("".join(parts))  # noqa: S308


class _LabelRows(forms.models.ModelChoiceIterator):
    """The options as `LabelledChoiceField.label_rows` reads them: one query of the columns
    the labels show (not a model, and its relations, built per option)."""

    field: LabelledChoiceField

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        yield from self.field.label_rows(self.queryset)


class LabelledChoiceField(forms.ModelChoiceField):
    """A model choice whose options are (pk, label) rows of a values query, in a QuickSelect;
    the submitted choice is still looked up in the whole queryset, as a ModelChoiceField
    does. For a long list on a busy page: 76 runtime versions built as models with their base
    image and registry took 8 ms of a deployment page."""

    widget = QuickSelect
    iterator = _LabelRows

    def label_rows(self, queryset: QuerySet[Any]) -> Iterable[tuple[Any, str]]:
        """The (pk, label) of each option of `queryset`, in its order. This default builds
        each model, as ModelChoiceField does; a subclass reads only its label's columns."""
        for obj in queryset:
            yield obj.pk, self.label_from_instance(obj)


class TokenCreateForm(forms.Form):
    """Create a scoped API token for one of the user's teams."""

    team: forms.ModelChoiceField[Team] = forms.ModelChoiceField(
        queryset=Team.objects.none(), empty_label=None
    )
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    scopes = forms.MultipleChoiceField(
        label=gettext_lazy("Scopes"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_days = forms.IntegerField(
        label=gettext_lazy("Expires days"), min_value=1, max_value=3650, required=False, initial=90
    )

    def __init__(self, *args: Any, teams: QuerySet[Team], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "team").queryset = teams
