"""English sentences kept as written and shown in the reader's language.

A worker has no reader, and an API serves what it stored, so job errors, webhook delivery
errors and the catalog's derived notes are written in English from templates with named values
(`%(name)s`). `StoredTexts` lists those templates (each marked `gettext_noop`, so
`makemessages` collects it) and renders a stored text that one of them produces from its
translated template, with the values read back out of the English text; a value that is itself
a listed sentence is translated too, `depth` levels down. Any other text (a tool's own words)
is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.utils.translation import gettext

_PLACEHOLDER = re.compile(r"%\((?P<name>\w+)\)s")


def _pattern(template: str) -> re.Pattern[str]:
    """The English template as a regular expression; each value a named group (a repeated
    name must repeat the same text)."""
    parts: list[str] = []
    seen: set[str] = set()
    end = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[end : match.start()]))
        name = match["name"]
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        end = match.end()
    parts.append(re.escape(template[end:]))
    return re.compile("".join(parts), re.DOTALL)


class StoredTexts:
    """The templates of one kind of stored text, and how to show one in the active language."""

    def __init__(self, templates: Sequence[str], *, depth: int) -> None:
        self.templates = tuple(templates)
        self.depth = depth
        # The most specific first (the most fixed text): "Nothing to build: deployment #… does
        # not exist." before "Nothing to build: %(error)s".
        self.patterns = tuple(
            (_pattern(template), template)
            for template in sorted(self.templates, key=lambda t: -len(_PLACEHOLDER.sub("", t)))
        )

    def display(self, text: str, *, _depth: int = 0) -> str:
        """`text` in the active language (`text` itself when no template produces it)."""
        for pattern, template in self.patterns:
            match = pattern.fullmatch(text)
            if match:
                values = match.groupdict()
                if _depth < self.depth:
                    values = {k: self.display(v, _depth=_depth + 1) for k, v in values.items()}
                return gettext(template) % values if values else gettext(template)
        return text
