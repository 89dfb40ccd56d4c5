"""`parse_dockerfile`: global ARGs and their substitution, FROM lines, stage names, references."""

from __future__ import annotations

import difflib
import re
from typing import Any

from images.policy.parser.lines import _directives, _logical_instructions, _split_lines
from images.policy.parser.syntax import (
    BEFORE_FROM,
    DUPLICATE_STAGE,
    INSTRUCTIONS,
    MALFORMED_FROM,
    MAX_STAGES,
    NO_FROM,
    TOO_MANY_STAGES,
    UNDEFINED_ARG,
    UNKNOWN_INSTRUCTION,
    UNKNOWN_STAGE,
    Instruction,
    ParsedDockerfile,
    ParsedStage,
    Problem,
)
from images.texts import _

_VAR_RE = re.compile(
    r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))"
)
_STAGE_NAME_RE = re.compile(r"^[a-z][a-z0-9_.-]*\Z")
_FROM_FLAG_RE = re.compile(r"--from=(\S+)")
# Automatic platform ARGs BuildKit defines for FROM without an ARG line.
PLATFORM_ARGS = frozenset(
    {
        "BUILDPLATFORM",
        "BUILDOS",
        "BUILDARCH",
        "BUILDVARIANT",
        "TARGETPLATFORM",
        "TARGETOS",
        "TARGETARCH",
        "TARGETVARIANT",
    }
)


def substitute(text: str, args: dict[str, str | None]) -> tuple[str, list[str]]:
    """Expand `$X`/`${X…}` in `text` with the global ARGs; also return the undefined names."""
    undefined: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(4)
        operator, word = match.group(2), match.group(3) or ""
        is_set = name in args and args[name] is not None
        value = args.get(name) or ""
        if operator == ":-":
            return value if value else word
        if operator == "-":
            return value if is_set else word
        if operator == ":+":
            return word if value else ""
        if operator == "+":
            return word if is_set else ""
        if not is_set:
            undefined.append(name)
        return value

    if "$" not in text:
        return text, undefined
    return _VAR_RE.sub(replace, text), undefined


def _parse_arg(args: str) -> list[tuple[str, str | None]]:
    result: list[tuple[str, str | None]] = []
    for token in args.split():
        name, sep, value = token.partition("=")
        if sep and len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result.append((name, value if sep else None))
    return result


def _from_stage(
    instruction: Instruction,
    index: int,
    global_args: dict[str, str | None],
    names: dict[str, int],
    problems: list[Problem],
) -> tuple[str, str, str, str, int | None, bool]:
    """Parse a FROM line: (name, base_raw, base, platform, parent_stage, valid)."""
    tokens = instruction.args.split()
    line = instruction.line
    platform = ""
    while tokens and tokens[0].startswith("--"):
        flag = tokens.pop(0)
        if flag.startswith("--platform="):
            platform = flag.partition("=")[2]
        else:
            problems.append(
                Problem(
                    MALFORMED_FROM,
                    line,
                    _(
                        "FROM has an unknown flag %(flag)s; only --platform=<platform> is allowed.",
                        flag=repr(flag),
                    ),
                )
            )
            return "", "", "", platform, None, False
    comment_at = next((i for i, t in enumerate(tokens) if i and t.startswith("#")), None)
    if comment_at is not None:
        comment = " ".join(tokens[comment_at:])
        problems.append(
            Problem(
                MALFORMED_FROM,
                line,
                _(
                    "FROM %(args)s has a trailing comment; Dockerfiles have no inline comments: "
                    "move %(comment)s to its own line.",
                    args=repr(instruction.args),
                    comment=repr(comment),
                ),
            )
        )
        tokens = tokens[:comment_at]
    name = ""
    if len(tokens) == 3 and tokens[1].lower() == "as":
        name = tokens[2]
    elif len(tokens) != 1:
        problems.append(
            Problem(
                MALFORMED_FROM,
                line,
                _(
                    "FROM needs an image and an optional 'AS <name>' (FROM "
                    "image[:tag|@digest] [AS name]); got %(args)s.",
                    args=repr(instruction.args),
                )
                if tokens
                else _("FROM needs an image: write FROM image[:tag|@digest] [AS name]."),
            )
        )
        return "", tokens[0] if tokens else "", "", platform, None, False
    base_raw = tokens[0]
    if name:
        lowered = name.lower()
        if not _STAGE_NAME_RE.match(lowered):
            problems.append(
                Problem(
                    MALFORMED_FROM,
                    line,
                    _(
                        "The stage name %(name)s is invalid: start with a letter and use "
                        "letters, digits, '-', '_' and '.'.",
                        name=repr(name),
                    ),
                )
            )
        elif lowered in names:
            problems.append(
                Problem(
                    DUPLICATE_STAGE,
                    line,
                    _(
                        "The stage name %(name)s is already used by stage %(stage)s: give each "
                        "stage a unique name.",
                        name=repr(name),
                        stage=names[lowered],
                    ),
                )
            )
        name = lowered
    base, undefined = substitute(base_raw, global_args)
    if undefined:
        names_text = ", ".join(sorted(set(undefined)))
        problems.append(
            Problem(
                UNDEFINED_ARG,
                line,
                _(
                    "FROM %(base)s uses %(names)s which no ARG before the first FROM defines "
                    "with a value: add `ARG %(first)s=<default>` at the top so the base image "
                    "can be checked.",
                    base=base_raw,
                    names=names_text,
                    first=undefined[0],
                ),
            )
        )
        return name, base_raw, "", platform, None, False
    parent = names.get(base.lower()) if base else None
    return name, base_raw, base, platform, parent, True


def parse_dockerfile(text: str) -> ParsedDockerfile:
    """Parse Dockerfile text in one pass; syntax problems become `Problem`s, never exceptions."""
    problems: list[Problem] = []
    lines = _split_lines(text)
    escape, start = _directives(lines, problems)
    instructions = _logical_instructions(lines, start, escape, problems)

    global_args: dict[str, str | None] = {}
    names: dict[str, int] = {}
    stages: list[ParsedStage] = []
    current: dict[str, Any] | None = None
    body: list[Instruction] = []
    too_many = False
    kept: list[Instruction] = []
    stage_ref_lines: set[int] = set()

    def close() -> None:
        if current is not None:
            stages.append(ParsedStage(instructions=tuple(body), **current))

    for instruction in instructions:
        keyword = instruction.keyword
        if keyword not in INSTRUCTIONS:
            guess = difflib.get_close_matches(keyword, INSTRUCTIONS, n=1, cutoff=0.6)
            problems.append(
                Problem(
                    UNKNOWN_INSTRUCTION,
                    instruction.line,
                    _(
                        "Unknown instruction %(keyword)s. Did you mean %(guess)s? Valid "
                        "instructions are FROM, RUN, COPY, ADD, ENV, ARG, … (see the Dockerfile "
                        "reference).",
                        keyword=repr(keyword[:40]),
                        guess=guess[0],
                    )
                    if guess
                    else _(
                        "Unknown instruction %(keyword)s. Valid instructions are FROM, RUN, "
                        "COPY, ADD, ENV, ARG, … (see the Dockerfile reference).",
                        keyword=repr(keyword[:40]),
                    ),
                )
            )
            continue
        if keyword == "FROM":
            if len(stages) + (current is not None) >= MAX_STAGES:
                problems.append(
                    Problem(
                        TOO_MANY_STAGES,
                        instruction.line,
                        _(
                            "The Dockerfile has more than %(max)s stages (stage %(next)s starts "
                            "here): split it into smaller Dockerfiles. Nothing else was "
                            "checked.",
                            max=MAX_STAGES,
                            next=MAX_STAGES + 1,
                        ),
                    )
                )
                too_many = True
                break
            close()
            index = len(stages)
            name, base_raw, base, platform, parent, valid = _from_stage(
                instruction, index, global_args, names, problems
            )
            if name and name not in names:
                names[name] = index
            current = {
                "index": index,
                "name": name,
                "line": instruction.line,
                "base_raw": base_raw,
                "base": base,
                "platform": platform,
                "parent_stage": parent,
                "valid": valid,
            }
            body = []
            kept.append(instruction)
            continue
        kept.append(instruction)
        if current is None:
            if keyword == "ARG":
                global_args.update(_parse_arg(instruction.args))
            else:
                problems.append(
                    Problem(
                        BEFORE_FROM,
                        instruction.line,
                        _(
                            "%(keyword)s comes before the first FROM; only ARG may: move it "
                            "below a FROM line.",
                            keyword=keyword,
                        ),
                    )
                )
            continue
        body.append(instruction)
        if keyword in ("COPY", "ADD") and "--from=" in instruction.args:
            if _check_copy_from(instruction, len(stages), names, problems):
                stage_ref_lines.add(instruction.line)
    close()
    if not stages and not too_many:
        problems.append(
            Problem(
                NO_FROM,
                1,
                _(
                    "The Dockerfile has no FROM instruction: start it with FROM <approved base "
                    "image>."
                ),
            )
        )
    return ParsedDockerfile(
        instructions=tuple(kept),
        stages=tuple(stages),
        global_args=tuple(global_args.items()),
        escape=escape,
        problems=tuple(problems),
        too_many_stages=too_many,
        stage_ref_lines=frozenset(stage_ref_lines),
    )


def _check_copy_from(
    instruction: Instruction, index: int, names: dict[str, int], problems: list[Problem]
) -> bool:
    """Check `--from=`; True when it names an earlier stage."""
    match = _FROM_FLAG_RE.search(instruction.args)
    if not match:  # pragma: no cover - guarded by the caller
        return False
    source = match.group(1)
    if source.isdigit():
        if int(source) < index:
            return True
        problems.append(
            Problem(
                UNKNOWN_STAGE,
                instruction.line,
                _(
                    "%(keyword)s --from=%(source)s does not name an earlier stage (this is "
                    "stage %(index)s): use the index or name of a previous stage.",
                    keyword=instruction.keyword,
                    source=source,
                    index=index,
                ),
            )
        )
        return False
    if source.lower() in names:
        return True
    if any(ch in source for ch in ":/@$"):
        return False  # an image reference (checked by hadolint) or a build argument
    problems.append(
        Problem(
            UNKNOWN_STAGE,
            instruction.line,
            _(
                "%(keyword)s --from=%(source)s names no earlier stage (named stages: "
                "%(known)s): fix the name or add `AS %(source)s` to the stage's FROM.",
                keyword=instruction.keyword,
                source=source,
                known=", ".join(sorted(names)),
            )
            if names
            else _(
                "%(keyword)s --from=%(source)s names no earlier stage (named stages: none are "
                "named): fix the name or add `AS %(source)s` to the stage's FROM.",
                keyword=instruction.keyword,
                source=source,
            ),
        )
    )
    return False
