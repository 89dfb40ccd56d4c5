"""Forms of the portal package."""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy

from .choices import Scope
from .models import Team


def model_choice_field(form: forms.BaseForm, name: str) -> forms.ModelChoiceField[Any]:
    """The form's field `name`, typed as the ModelChoiceField it is (to set its queryset)."""
    return cast("forms.ModelChoiceField[Any]", form.fields[name])


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
