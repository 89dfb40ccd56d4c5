"""Finding messages as English templates with named values, translated where they are shown.

The checker runs without Django, so it cannot translate: a rule builds a `Text`, which is the
English sentence (a `str`: SARIF, logs and every caller that only wants text use it as it is)
and keeps its template and values, so the portal renders it in the reader's language
(`images.services.dockerfile`). A value may itself be a `Text` (a whole clause such as
"use REF"), translated the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeAlias

Value: TypeAlias = "str | int | Text"
Translate: TypeAlias = Callable[[str], str]


class Text(str):
    """A message: the English sentence (the string itself), with its `%(name)s` template and
    the values filled in, so that it can be rendered again in another language."""

    template: str
    params: Mapping[str, Value]

    def __new__(cls, template: str, params: Mapping[str, Value] | None = None) -> Text:
        values = dict(params or {})
        english = template % {k: str(v) for k, v in values.items()} if values else template
        text = super().__new__(cls, english)
        text.template = template
        text.params = values
        return text

    def render(self, translate: Translate) -> str:
        """The message with `translate` applied to this template and every nested one."""
        values = {
            name: value.render(translate) if isinstance(value, Text) else value
            for name, value in self.params.items()
        }
        return translate(self.template) % values if values else translate(self.template)

    def __reduce__(self) -> tuple[object, ...]:
        return (Text, (self.template, self.params))


def _(template: str, /, **params: Value) -> Text:
    """A message to translate later. Named `_` so that `makemessages` collects the templates
    into the portal's catalog; it translates nothing itself."""
    return Text(template, params)


Message: TypeAlias = str  # a plain string (hadolint's words) or a `Text`


def message_render(message: Message, translate: Translate) -> str:
    """A rule's message (a `Text`, or a plain string such as hadolint's) for the reader."""
    return message.render(translate) if isinstance(message, Text) else message
