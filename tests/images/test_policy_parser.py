"""The Dockerfile parser: stages, continuations, directives, ARGs, heredocs, problems."""

from __future__ import annotations

from images.policy.parser import MAX_STAGES, parse_dockerfile, substitute


def rules(text: str) -> list[tuple[str, int]]:
    return [(p.rule, p.line) for p in parse_dockerfile(text).problems]


def test_stages_names_platform_and_parent() -> None:
    parsed = parse_dockerfile(
        "ARG GO=1.22\n"
        "FROM --platform=$BUILDPLATFORM golang:${GO} AS Builder\n"
        "RUN go build\n"
        "FROM builder AS test\n"
        "FROM debian:12\n"
        "COPY --from=builder /a /a\n"
        "COPY --from=0 /b /b\n"
    )
    assert parsed.problems == ()
    first, second, third = parsed.stages
    assert (first.name, first.base, first.platform, first.line) == (
        "builder",
        "golang:1.22",
        "$BUILDPLATFORM",
        2,
    )
    assert first.base_raw == "golang:${GO}"
    assert second.parent_stage == 0
    assert third.parent_stage is None and third.base == "debian:12"
    assert parsed.stage_ref_lines == frozenset({6, 7})
    assert [i.keyword for i in third.instructions] == ["COPY", "COPY"]


def test_continuation_keeps_start_line_and_skips_comments_and_blank_lines() -> None:
    parsed = parse_dockerfile(
        "FROM debian:12\n"
        "RUN apt-get update && \\\n"
        "    # a comment inside\n"
        "\n"
        "    apt-get install -y curl\n"
        "ENV A=1\n"
    )
    run, env = parsed.stages[0].instructions
    assert run.line == 2
    assert "# a comment" not in run.args
    assert run.args.endswith("apt-get install -y curl")
    assert env.line == 6


def test_escape_directive_backtick() -> None:
    parsed = parse_dockerfile("# escape=`\nFROM debian:12\nRUN echo a `\n  b\nUSER 1\n")
    assert parsed.escape == "`"
    run, user = parsed.stages[0].instructions
    assert "echo a" in run.args and run.args.endswith("b")
    assert user.line == 5


def test_escape_directive_only_at_the_top() -> None:
    parsed = parse_dockerfile("FROM debian:12\n# escape=`\nRUN a \\\n b\n")
    assert parsed.escape == "\\"
    assert len(parsed.stages[0].instructions) == 1


def test_invalid_escape_directive_is_a_problem() -> None:
    assert ("BIP020", 1) in rules("# escape=x\nFROM debian:12\n")


def test_heredoc_body_is_not_parsed_as_instructions() -> None:
    parsed = parse_dockerfile("FROM debian:12\nRUN <<EOF\nFORM nonsense\nEOF\nUSER 1\n")
    assert parsed.problems == ()
    run, user = parsed.stages[0].instructions
    assert "FORM nonsense" in run.heredocs and user.line == 5


def test_unterminated_heredoc() -> None:
    assert ("BIP021", 2) in rules("FROM debian:12\nRUN <<EOF\necho\n")


def test_unterminated_continuation_at_eof() -> None:
    problems = parse_dockerfile("FROM debian:12\nRUN a && \\\n   b \\\n").problems
    assert [(p.rule, p.line) for p in problems] == [("BIP021", 2)]
    assert "end of the file" in problems[0].message


def test_no_from() -> None:
    assert rules("# only a comment\n") == [("BIP001", 1)]


def test_instruction_before_from() -> None:
    assert rules("ARG X=1\nRUN echo\nFROM debian:12\n") == [("BIP026", 2)]


def test_unknown_instruction_suggests_the_right_one() -> None:
    problems = parse_dockerfile("FROM debian:12\nCOPPY a b\n").problems
    assert [(p.rule, p.line) for p in problems] == [("BIP020", 2)]
    assert "Did you mean COPY?" in problems[0].message


def test_too_many_stages_is_one_problem_and_stops() -> None:
    text = "".join(f"FROM debian:12 AS s{i}\n" for i in range(300))
    parsed = parse_dockerfile(text)
    assert parsed.too_many_stages
    assert [(p.rule, p.line) for p in parsed.problems] == [("BIP022", MAX_STAGES + 1)]
    assert len(parsed.stages) == MAX_STAGES


def test_exactly_max_stages_is_fine() -> None:
    text = "".join(f"FROM debian:12 AS s{i}\n" for i in range(MAX_STAGES))
    assert not parse_dockerfile(text).too_many_stages


def test_malformed_from_lines() -> None:
    assert rules("FROM\n")[0] == ("BIP023", 1)
    assert rules("FROM a b c d\n")[0] == ("BIP023", 1)
    assert rules("FROM --network=host debian:12\n")[0] == ("BIP023", 1)
    assert rules("FROM debian:12 AS 1bad\n")[0] == ("BIP023", 1)


def test_inline_comment_after_from_is_named_and_the_image_still_parsed() -> None:
    parsed = parse_dockerfile("FROM scratch  # base image\n")
    assert [(p.rule, p.line) for p in parsed.problems] == [("BIP023", 1)]
    assert "own line" in parsed.problems[0].message
    assert parsed.stages[0].base == "scratch"


def test_duplicate_stage_name() -> None:
    assert ("BIP027", 2) in rules("FROM a:1 AS x\nFROM b:1 AS X\n")


def test_undefined_arg_in_from() -> None:
    problems = parse_dockerfile("ARG TAG\nFROM debian:${TAG}\n").problems
    assert [(p.rule, p.line) for p in problems] == [("BIP024", 2)]
    assert "ARG TAG=" in problems[0].message
    assert rules("FROM $NOPE\n") == [("BIP024", 1)]


def test_arg_substitution_forms() -> None:
    args = {"SET": "v", "EMPTY": "", "NONE": None}
    assert substitute("$SET-${SET}", args) == ("v-v", [])
    assert substitute("${NONE:-d}${EMPTY:-e}${SET:-x}", args) == ("dev", [])
    assert substitute("${EMPTY-d}${MISSING-m}", args) == ("m", [])
    assert substitute("${SET:+alt}${EMPTY:+no}", args) == ("alt", [])
    assert substitute("a${MISSING}", args) == ("a", ["MISSING"])


def test_quoted_arg_default() -> None:
    parsed = parse_dockerfile('ARG BASE="debian:12"\nFROM ${BASE}\n')
    assert parsed.stages[0].base == "debian:12"


def test_copy_from_unknown_stage_and_forward_index() -> None:
    text = "FROM a:1 AS builder\nFROM b:1\nCOPY --from=buidler /x /x\nCOPY --from=1 /y /y\n"
    problems = parse_dockerfile(text).problems
    assert [(p.rule, p.line) for p in problems] == [("BIP025", 3), ("BIP025", 4)]
    assert "builder" in problems[0].message


def test_copy_from_an_image_is_not_a_stage_problem() -> None:
    assert rules("FROM a:1\nCOPY --from=nginx:1.25 /etc/nginx /etc/nginx\n") == []


def test_crlf_and_vertical_tab_keep_line_numbers() -> None:
    parsed = parse_dockerfile("FROM a:1\r\nRUN echo \x0b x\r\nUSER 1\r\n")
    assert [i.line for i in parsed.stages[0].instructions] == [2, 3]
