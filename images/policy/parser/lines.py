"""Dockerfile text to logical instructions: parser directives, continuation lines, heredocs."""

from __future__ import annotations

import re

from images.policy.parser.syntax import UNKNOWN_INSTRUCTION, UNTERMINATED, Instruction, Problem
from images.texts import _

_HEREDOC_INSTRUCTIONS = frozenset({"RUN", "COPY", "ADD"})

_DIRECTIVE_RE = re.compile(r"^#\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\S+)\s*\Z")
_INSTRUCTION_RE = re.compile(r"^\s*(\S+)(?:\s+(.*))?\Z", re.DOTALL)
_HEREDOC_RE = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_CONTINUATION_RE = {
    "\\": re.compile(r"\\[ \t]*$"),
    "`": re.compile(r"`[ \t]*$"),
}


def _split_lines(text: str) -> list[str]:
    # Only \n separates lines (as in BuildKit and hadolint); str.splitlines would also split
    # on \x0b, \x1c, U+2028 … and shift every line number after them.
    lines = text.split("\n")
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _directives(lines: list[str], problems: list[Problem]) -> tuple[str, int]:
    """Read parser directives at the top; return the escape character and the first body line."""
    escape = "\\"
    index = 0
    seen: set[str] = set()
    while index < len(lines):
        match = _DIRECTIVE_RE.match(lines[index].strip())
        if not match:
            break
        name, value = match.group(1).lower(), match.group(2)
        if name in seen:
            break
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                problems.append(
                    Problem(
                        UNKNOWN_INSTRUCTION,
                        index + 1,
                        _(
                            "The escape directive must be '\\' or '`', not %(value)s.",
                            value=repr(value),
                        ),
                    )
                )
            else:
                escape = value
        index += 1
    return escape, index


def _logical_instructions(
    lines: list[str], start: int, escape: str, problems: list[Problem]
) -> list[Instruction]:
    continuation = _CONTINUATION_RE[escape]
    result: list[Instruction] = []
    index = start
    total = len(lines)
    while index < total:
        raw = lines[index]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        first_line = index + 1
        parts: list[str] = []
        line = raw
        terminated = True
        while True:
            match = continuation.search(line)
            if not match:
                parts.append(line)
                index += 1
                break
            parts.append(line[: match.start()])
            index += 1
            # Skip comment and blank lines inside the continuation.
            while index < total and (
                not lines[index].strip() or lines[index].lstrip().startswith("#")
            ):
                index += 1
            if index >= total:
                terminated = False
                break
            line = lines[index]
        text = "".join(parts)
        match = _INSTRUCTION_RE.match(text)
        if not match:  # pragma: no cover - stripped text is never empty here
            continue
        keyword = match.group(1).upper()
        args = (match.group(2) or "").strip()
        if not terminated:
            problems.append(
                Problem(
                    UNTERMINATED,
                    first_line,
                    _(
                        "The %(keyword)s instruction ends with a line continuation '%(escape)s' "
                        "at the end of the file: remove the trailing escape or add the missing "
                        "line.",
                        keyword=keyword,
                        escape=escape,
                    ),
                )
            )
        heredocs = ""
        if keyword in _HEREDOC_INSTRUCTIONS and "<<" in args:
            bodies: list[str] = []
            for strip_tabs, _quote, delimiter in _HEREDOC_RE.findall(args):
                body: list[str] = []
                closed = False
                while index < total:
                    candidate = lines[index]
                    index += 1
                    if (candidate.lstrip("\t") if strip_tabs else candidate) == delimiter:
                        closed = True
                        break
                    body.append(candidate)
                bodies.append("\n".join(body))
                if not closed:
                    problems.append(
                        Problem(
                            UNTERMINATED,
                            first_line,
                            _(
                                "The heredoc <<%(delimiter)s of this %(keyword)s is never "
                                "closed: add a line containing only %(delimiter)s.",
                                delimiter=delimiter,
                                keyword=keyword,
                            ),
                        )
                    )
                    break
            heredocs = "\n".join(bodies)
        result.append(Instruction(keyword, args, first_line, heredocs))
    return result
