"""What in a recipe would reach outside its build: mounts, network and security modes of `RUN`,
remote sources of `ADD`/`COPY`, images `COPY --from=` pulls, and `ONBUILD`.

Pure functions over one instruction (keyword and arguments). The policy rules report them as
`fail` findings; the builder refuses the same on its own (`images.builder.sandbox`), so a
policy file that lowers their severity does not open the build host.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from images.texts import Message, _

MOUNT = "BIP040"
RUN_FLAG = "BIP041"
REMOTE_SOURCE = "BIP042"
EXTERNAL_COPY_FROM = "BIP043"
ONBUILD = "BIP044"
RULES = (MOUNT, RUN_FLAG, REMOTE_SOURCE, EXTERNAL_COPY_FROM, ONBUILD)

_FLAG_RE = re.compile(r"\s*(--\S*)")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_SCP_RE = re.compile(r"^[\w.-]+@[\w.-]+:")  # git@github.com:org/repo.git
_REMOTE_ONLY_FLAGS = frozenset({"checksum", "keep-git-dir"})


@dataclass(frozen=True)
class Escape:
    """One way an instruction reaches outside its build."""

    rule: str
    line: int
    message: Message


def split_flags(args: str) -> tuple[list[tuple[str, str]], str]:
    """The leading `--name[=value]` flags of an instruction's arguments, and the rest.

    Names are lower-cased; a flag without `=` has the value "".
    """
    flags: list[tuple[str, str]] = []
    position = 0
    while True:
        match = _FLAG_RE.match(args, position)
        if not match:
            break
        name, _, value = match.group(1)[2:].partition("=")
        flags.append((name.lower(), value))
        position = match.end()
    return flags, args[position:].strip()


def copy_from_value(keyword: str, args: str) -> str | None:
    """The `--from=` value of a COPY/ADD instruction, or None when it has none."""
    if keyword not in ("COPY", "ADD"):
        return None
    flags, _rest = split_flags(args)
    return next((value for name, value in flags if name == "from"), None)


def _sources(rest: str) -> list[str]:
    if rest.startswith("["):
        try:
            words = json.loads(rest)
        except ValueError:
            words = None
        if isinstance(words, list) and all(isinstance(w, str) for w in words):
            return words[:-1]
    return rest.split()[:-1]


def is_remote(source: str) -> bool:
    """True for a URL (`https://…`, `git://…`) or a git remote (`git@host:repo`)."""
    return bool(_URL_RE.match(source) or _SCP_RE.match(source))


def instruction_escapes(keyword: str, args: str, line: int) -> list[Escape]:
    """How one instruction (keyword upper case, arguments as written) leaves its build."""
    keyword = keyword.upper()
    found: list[Escape] = []
    if keyword == "ONBUILD":
        found.append(
            Escape(
                ONBUILD,
                line,
                _(
                    "ONBUILD runs its instruction in every later build FROM this image, outside "
                    "the review of this recipe: remove it."
                ),
            )
        )
        return found
    if keyword not in ("RUN", "ADD", "COPY"):
        return found
    flags, rest = split_flags(args)
    if keyword == "RUN":
        for name, value in flags:
            if name == "mount":
                found.append(
                    Escape(
                        MOUNT,
                        line,
                        _(
                            "RUN --mount=%(value)s mounts something from outside the build "
                            "(cache, bind, secret, ssh or tmpfs; buildah 1.28's cache mounts "
                            "can reach the host): remove the --mount and do the work in the RUN "
                            "step.",
                            value=value[:80],
                        ),
                    )
                )
            else:
                found.append(
                    Escape(
                        RUN_FLAG,
                        line,
                        _(
                            "RUN --%(flag)s changes the step's network or security sandbox: "
                            "remove it; recipe builds run with the platform's own network and "
                            "security settings.",
                            flag=name,
                        ),
                    )
                )
        return found
    for name, _value in flags:
        if name in _REMOTE_ONLY_FLAGS:
            found.append(
                Escape(
                    REMOTE_SOURCE,
                    line,
                    _(
                        "%(keyword)s --%(flag)s fetches a remote source: install from the OS "
                        "packages in a RUN step instead.",
                        keyword=keyword,
                        flag=name,
                    ),
                )
            )
    for source in _sources(rest):
        if is_remote(source):
            found.append(
                Escape(
                    REMOTE_SOURCE,
                    line,
                    _(
                        "%(keyword)s %(source)s downloads from outside the build: install the "
                        "software from the OS packages in a RUN step (apt-get install …) "
                        "instead.",
                        keyword=keyword,
                        source=source[:120],
                    ),
                )
            )
    return found
