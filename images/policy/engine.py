"""check_dockerfile: parse, apply the standard, merge hadolint, decide the verdict."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from images.policy import hadolint
from images.policy.catalog import Catalog, ServiceContext
from images.policy.config import PolicyConfig, load_policy
from images.policy.parser import (
    MALFORMED_FROM,
    UNKNOWN_INSTRUCTION,
    UNTERMINATED,
    ParsedDockerfile,
    parse_dockerfile,
)
from images.policy.rules import PURPOSES, StageInfo, analyse
from images.texts import Message, Text, Translate, _

MAX_DOCKERFILE_BYTES = 256 * 1024
LINTER_UNAVAILABLE = "BIP030"
_SEVERITY_ORDER = {"fail": 0, "warn": 1, "info": 2}
_SYNTAX_RULES = frozenset({UNKNOWN_INSTRUCTION, UNTERMINATED, MALFORMED_FROM})


class DockerfileInputError(ValueError):
    """The input cannot be checked at all; `status` is the HTTP status to answer (400/413)."""

    def __init__(self, message: Message, status: int = 400) -> None:
        super().__init__(str(message))
        self.message = str(message)  # English
        self.text = message if isinstance(message, Text) else None
        self.status = status

    def message_in(self, translate: Translate) -> str:
        """The message in the reader's language."""
        return self.text.render(translate) if self.text is not None else self.message


@dataclass(frozen=True)
class Finding:
    """One problem: rule id (BIPnnn, DLnnnn, SCnnnn), severity, 1-based line, message."""

    rule: str
    severity: str  # fail | warn | info
    line: int
    message: str  # in English (SARIF, portal-check)
    # The portal's own rules: the message as a template and its values, for the reader's
    # language (`message_in`); None for hadolint's findings, which hadolint words in English.
    text: Text | None = field(default=None, compare=False)

    @classmethod
    def of(cls, rule: str, severity: str, line: int, message: Message) -> Finding:
        """A finding whose message may be a translatable `Text`."""
        if isinstance(message, Text):
            return cls(rule, severity, line, str(message), message)
        return cls(rule, severity, line, message)

    def message_in(self, translate: Translate | None) -> str:
        """The message with `translate` applied (the English one when None or no `Text`)."""
        if translate is None or self.text is None:
            return self.message
        return self.text.render(translate)

    def to_dict(self, translate: Translate | None = None) -> dict[str, Any]:
        """JSON-safe form for the API (`translate`: the reader's language)."""
        return {
            "rule": self.rule,
            "severity": self.severity,
            "line": self.line,
            "message": self.message_in(translate),
        }


@dataclass(frozen=True)
class Stage:
    """One build stage as the API reports it."""

    index: int
    name: str
    base: str
    line: int
    platform: str
    parent_stage: int | None
    resolved_image: str | None
    kind: str | None
    pinned_ref: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form for the API."""
        return {
            "index": self.index,
            "name": self.name,
            "base": self.base,
            "line": self.line,
            "platform": self.platform,
            "parent_stage": self.parent_stage,
            "resolved_image": self.resolved_image,
            "kind": self.kind,
            "pinned_ref": self.pinned_ref,
        }


@dataclass(frozen=True)
class CheckResult:
    """The answer to "does this Dockerfile follow the standard?"."""

    verdict: str  # pass | warn | fail
    findings: tuple[Finding, ...]
    stages: tuple[Stage, ...]
    linter_ran: bool = True

    def to_dict(self, translate: Translate | None = None) -> dict[str, Any]:
        """`{"verdict", "findings": [...], "stages": [...]}` as DESIGN.md §5 specifies
        (`translate`: the messages in the reader's language; English when None)."""
        return {
            "verdict": self.verdict,
            "findings": [finding.to_dict(translate) for finding in self.findings],
            "stages": [stage.to_dict() for stage in self.stages],
        }


def decode_dockerfile(text: str | bytes) -> str:
    """Validate and decode the input, or raise DockerfileInputError (400, or 413 if too big)."""
    if isinstance(text, bytes | bytearray | memoryview):
        data = bytes(text)
        if len(data) > MAX_DOCKERFILE_BYTES:
            raise DockerfileInputError(
                _(
                    "The Dockerfile is %(size)s bytes; the limit is %(limit)s bytes (256 KiB).",
                    size=len(data),
                    limit=MAX_DOCKERFILE_BYTES,
                ),
                413,
            )
        try:
            decoded = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DockerfileInputError(
                _(
                    "The Dockerfile is not UTF-8 text (invalid byte at offset %(offset)s); save "
                    "it as UTF-8.",
                    offset=exc.start,
                )
            ) from exc
    elif isinstance(text, str):
        decoded = text
        if len(decoded) > MAX_DOCKERFILE_BYTES or (
            len(decoded) * 4 > MAX_DOCKERFILE_BYTES
            and len(decoded.encode("utf-8", "surrogatepass")) > MAX_DOCKERFILE_BYTES
        ):
            raise DockerfileInputError(
                _(
                    "The Dockerfile is larger than %(limit)s bytes (256 KiB).",
                    limit=MAX_DOCKERFILE_BYTES,
                ),
                413,
            )
        try:
            decoded.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise DockerfileInputError(
                _(
                    "The Dockerfile is not valid Unicode text (it contains a lone surrogate at "
                    "character %(offset)s); save it as UTF-8.",
                    offset=exc.start,
                )
            ) from exc
    else:
        raise DockerfileInputError(_("The Dockerfile must be text."))
    decoded = decoded.removeprefix("\ufeff")
    if not decoded.strip():
        raise DockerfileInputError(_("The Dockerfile is empty."))
    if "\x00" in decoded:
        raise DockerfileInputError(
            _(
                "The Dockerfile contains NUL characters; it looks like a binary file, not a "
                "Dockerfile."
            )
        )
    return decoded


def _verdict(findings: tuple[Finding, ...]) -> str:
    severities = {finding.severity for finding in findings}
    if "fail" in severities:
        return "fail"
    if "warn" in severities:
        return "warn"
    return "pass"


def _short_name(reference: str) -> bool:
    """Whether `reference` names no registry (`runtime/debian:12`, not `host:5000/…`)."""
    first, _, rest = reference.partition("/")
    return not rest or not ("." in first or ":" in first or first == "localhost")


def _merge_linter(
    outcome: list[hadolint.LinterFinding],
    parsed: ParsedDockerfile,
    policy: PolicyConfig,
    exceptions: frozenset[str],
    infos: list[StageInfo] | None = None,
) -> list[Finding]:
    """Map hadolint results to findings, dropping what the portal's parser knows better.

    * DL3026 (untrusted registry) on a FROM whose image came from an ARG or an earlier stage,
      or on `COPY --from=<stage>`: hadolint sees `${BASE}` / `builder` / `0` as image names;
      the portal checked the real value (BIP003). Also on a FROM that names a catalog image
      by a short name (`runtime/debian:12`, pinned to the portal's registry before the
      build): hadolint reads a short name as Docker Hub, but the portal resolved it against
      the catalog (BIP002/BIP003/BIP010 report what is wrong with it), so the portal's own
      recommendation never warns.
    * DL1000 (hadolint cannot parse) when the portal's BuildKit-compatible parser found no
      syntax problem (hadolint 2.x rejects instructions after a heredoc): reported as
      BIP030, since hadolint's checks did not run.
    """
    known_lines = set(parsed.stage_ref_lines)
    known_lines.update(
        stage.line
        for stage in parsed.stages
        if stage.parent_stage is not None or (stage.base and stage.base != stage.base_raw)
    )
    known_lines.update(
        info.line for info in infos or () if info.resolved is not None and _short_name(info.base)
    )
    syntax_ok = not any(p.rule in _SYNTAX_RULES for p in parsed.problems)
    levels = policy.hadolint_levels
    findings = []
    for item in outcome:
        if item.code in policy.ignore or item.code in exceptions:
            continue
        if item.code == "DL3026" and item.line in known_lines:
            continue
        if item.code == "DL1000" and syntax_ok:
            if LINTER_UNAVAILABLE not in policy.ignore:
                findings.append(
                    Finding.of(
                        LINTER_UNAVAILABLE,
                        policy.severity(LINTER_UNAVAILABLE, "warn"),
                        max(item.line, 1),
                        _(
                            "hadolint cannot parse this line although BuildKit can (a hadolint "
                            "limitation, e.g. an instruction after a heredoc), so its checks "
                            "were skipped; only the portal's own rules were checked."
                        ),
                    )
                )
            continue
        severity = policy.severities.get(item.code) or levels.get(item.level, "info")
        findings.append(Finding(item.code, severity, max(item.line, 1), item.message))
    return findings


def check_dockerfile(
    text: str | bytes,
    *,
    catalog: Catalog,
    service: ServiceContext | None = None,
    purpose: str = "service",
    policy: PolicyConfig | None = None,
    run_hadolint: bool = True,
    today: datetime.date | None = None,
    hadolint_binary: str | None = None,
) -> CheckResult:
    """Check a Dockerfile against the base-image standard and hadolint.

    Args:
        text: the Dockerfile (str, or bytes that must be UTF-8).
        catalog: the catalog images and approved registries.
        service: the service the Dockerfile belongs to (language, exceptions), if known.
        purpose: "service" (an application image), "runtime-recipe" or "build-recipe"
            (the recipe of a new base image).
        policy: severities and ignores; the defaults when None.
        run_hadolint: also run hadolint and merge its findings.
        today: the date end-of-life is judged against (UTC today when None).
        hadolint_binary: the hadolint executable; found next to Python or on PATH when None.

    Raises:
        DockerfileInputError: the input is empty, not UTF-8, contains NUL or exceeds 256 KiB.
        ValueError: `purpose` is not one of the three purposes (a programming error).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {sorted(PURPOSES)}, not {purpose!r}")
    decoded = decode_dockerfile(text)
    policy = policy or load_policy(None)
    today = today or datetime.datetime.now(tz=datetime.UTC).date()
    run = None
    if run_hadolint:
        linter_ignores = sorted(rule for rule in policy.ignore if not rule.startswith("BIP"))
        run = hadolint.start(
            decoded.encode("utf-8"),
            trusted_registries=catalog.registries,
            ignore=linter_ignores,
            binary=hadolint_binary,
        )

    parsed = parse_dockerfile(decoded)
    raw: list[tuple[str, int, Message]] = [(p.rule, p.line, p.message) for p in parsed.problems]
    infos: list[StageInfo] = []
    if not parsed.too_many_stages:
        hits, infos = analyse(
            parsed, catalog=catalog, service=service, purpose=purpose, today=today
        )
        raw.extend(hits)

    exceptions = service.exceptions if service else frozenset()
    findings: list[Finding] = [
        Finding.of(rule, policy.severity(rule, "fail"), max(line, 1), message)
        for rule, line, message in raw
        if rule not in policy.ignore and rule not in exceptions
    ]
    linter_ran = False
    if run is not None:
        if parsed.too_many_stages:
            hadolint.cancel(run)
        else:
            outcome = hadolint.collect(run, timeout=policy.hadolint_timeout)
            if isinstance(outcome, hadolint.LinterFailure):
                if LINTER_UNAVAILABLE not in policy.ignore:
                    findings.append(
                        Finding.of(
                            LINTER_UNAVAILABLE,
                            policy.severity(LINTER_UNAVAILABLE, "warn"),
                            1,
                            _(
                                "The Dockerfile linter did not run (%(reason)s); only the "
                                "portal's own rules were checked. Retry, or tell the platform "
                                "team.",
                                reason=outcome.message,
                            ),
                        )
                    )
            else:
                linter_ran = True
                findings.extend(_merge_linter(outcome, parsed, policy, exceptions, infos))

    findings.sort(key=lambda f: (f.line, _SEVERITY_ORDER.get(f.severity, 3), f.rule))
    stages = tuple(
        Stage(
            index=info.index,
            name=info.name,
            base=info.base,
            line=info.line,
            platform=info.platform,
            parent_stage=info.parent_stage,
            resolved_image=info.resolved.name if info.resolved else None,
            kind=info.resolved.kind if info.resolved else None,
            pinned_ref=info.pinned_ref,
        )
        for info in infos
    )
    result = tuple(findings)
    return CheckResult(
        verdict=_verdict(result), findings=result, stages=stages, linter_ran=linter_ran
    )
