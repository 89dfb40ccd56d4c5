"""Parsing of container image references (`[registry/]repository[:tag][@sha256:digest]`).

Pure functions, no Django: used by the resolve endpoint, the policy engine and the builder.
The grammar follows the distribution reference grammar (docker/distribution `reference`):
a first path component containing a `.` or `:` or equal to `localhost` is a registry host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from images.texts import Text, Translate, _

MAX_REFERENCE_LENGTH = 512

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z")
_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}\Z")
_HOST_RE = re.compile(
    r"^(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*"
    r"[A-Za-z0-9])?)*|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?\Z"
)


_SCHEME_RE = re.compile(r"^https?://", re.IGNORECASE)


def registry_host(url: str) -> str:
    """`host[:port]` of a registry URL, as image references spell it."""
    return _SCHEME_RE.sub("", url or "").rstrip("/")


class ReferenceError(ValueError):  # noqa: A001 - the domain's own name, not the builtin
    """The text is not a valid image reference; the message says what is wrong.

    `args[0]` is a `images.texts.Text`: English as a string, `text_in(translate)` for the
    reader's language."""

    def text_in(self, translate: Translate) -> str:
        """The message in the reader's language."""
        message = self.args[0] if self.args else ""
        return message.render(translate) if isinstance(message, Text) else str(message)


@dataclass(frozen=True)
class ImageReference:
    """A parsed image reference. `registry` is blank when the reference names none."""

    repository: str
    registry: str = ""
    tag: str = ""
    digest: str = ""

    @property
    def short_name(self) -> str:
        """The last path component (`golang` for `library/golang`)."""
        return self.repository.rsplit("/", 1)[-1]

    def pinned(self, digest: str) -> str:
        """`registry/repository@digest` (the tag is dropped: the digest is the identity)."""
        prefix = f"{self.registry}/" if self.registry else ""
        return f"{prefix}{self.repository}@{digest}"

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_reference(text: str) -> ImageReference:
    """Parse `text` into an ImageReference or raise ReferenceError with a clear message."""
    if not isinstance(text, str) or not text.strip():
        raise ReferenceError(_("The image reference is empty."))
    ref = text.strip()
    if len(ref) > MAX_REFERENCE_LENGTH:
        raise ReferenceError(
            _(
                "The image reference is longer than %(limit)s characters.",
                limit=MAX_REFERENCE_LENGTH,
            )
        )
    if any(ch.isspace() for ch in ref):
        raise ReferenceError(_("The image reference %(ref)s contains whitespace.", ref=repr(ref)))

    digest = ""
    if "@" in ref:
        ref, digest = ref.split("@", 1)
        if not _DIGEST_RE.match(digest):
            raise ReferenceError(
                _(
                    "The digest %(digest)s is not of the form sha256:<64 lowercase hex "
                    "characters>.",
                    digest=repr(digest),
                )
            )

    registry = ""
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _HOST_RE.match(first):
            raise ReferenceError(
                _("The registry host %(host)s is not a valid host[:port].", host=repr(first))
            )
        registry, ref = first, rest

    tag = ""
    last_slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > last_slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise ReferenceError(
                _(
                    "The tag %(tag)s is invalid: use letters, digits, '_', '.' and '-' (at most "
                    "128 characters, not starting with '.' or '-').",
                    tag=repr(tag),
                )
            )

    if not ref:
        raise ReferenceError(_("The image reference has no repository name."))
    if not _REPOSITORY_RE.match(ref):
        raise ReferenceError(
            _(
                "The repository name %(name)s is invalid: use lowercase letters, digits and "
                "separators ('.', '_', '-') between '/'-separated components.",
                name=repr(ref),
            )
        )
    return ImageReference(repository=ref, registry=registry, tag=tag, digest=digest)
