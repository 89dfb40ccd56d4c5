"""Job errors in the reader's language: workers store them in English (the API serves them as
written); the pages render each from its translated template (`portal.job_errors`)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

from portal.actors import Actor
from portal.job_errors import ERROR_TEMPLATES, job_error_display
from portal.jobs import job_create
from portal.models import Job
from tests.i18n_support import compile_catalog

ROOT = Path(settings.BASE_DIR)
_RAISERS = {"JobFailure", "fail"}  # `fail` copies a build's error to its image request
_MARKERS = {"_", "gettext_noop"}


@pytest.fixture
def zh_catalog() -> None:
    compile_catalog()


def _name(node: ast.expr) -> str:
    return node.id if isinstance(node, ast.Name) else getattr(node, "attr", "")


def _raised_messages() -> list[tuple[str, ast.expr]]:
    """Every job error the apps write (`JobFailure(…)`, a build's `fail(…)`, the runner's
    `_fail(…)`, `job_mark_failed(error=…)`), with its place."""
    found = []
    for app in ("portal", "images", "deployments"):
        for path in sorted((ROOT / app).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                where, name = f"{path.relative_to(ROOT)}:{node.lineno}", _name(node.func)
                if name in _RAISERS and node.args:
                    found.append((where, node.args[0]))
                elif name in {"_fail", "_plan_fail"} and len(node.args) == 2:
                    found.append((where, node.args[1]))
                elif name == "job_mark_failed":
                    found.extend((where, k.value) for k in node.keywords if k.arg == "error")
    return found


def _marked_templates(node: ast.expr) -> tuple[list[str], list[ast.expr]]:
    """The templates of the `_(…)`/`gettext_noop(…)` calls in an expression, and the string
    literals and f-strings outside them (an unmarked English text)."""
    templates: list[str] = []
    loose: list[ast.expr] = []

    def visit(item: ast.AST) -> None:
        if isinstance(item, ast.Call) and _name(item.func) in _MARKERS:
            first = item.args[0]
            assert isinstance(first, ast.Constant) and isinstance(first.value, str)
            templates.append(first.value)
            return  # the values may be any expression
        if isinstance(item, ast.BinOp) and isinstance(item.op, ast.Mod):
            visit(item.left)  # gettext_noop("… %(name)s") % {"name": …}: the values are free
            return
        if isinstance(item, ast.JoinedStr) or (
            isinstance(item, ast.Constant) and isinstance(item.value, str)
        ):
            loose.append(item)  # type: ignore[arg-type]
            return
        for child in ast.iter_child_nodes(item):
            visit(child)

    visit(node)
    return templates, loose


def test_every_raised_message_is_a_listed_template() -> None:
    """A handler's failure is `_("a sentence with %(named)s values", named=…)` listed in
    portal.job_errors (or another error passed through as it is): a new English text in a
    `JobFailure` cannot be forgotten."""
    messages = _raised_messages()
    assert len(messages) > 50
    listed = set(ERROR_TEMPLATES)
    for where, node in messages:
        templates, loose = _marked_templates(node)
        assert not loose, f"{where}: an unmarked text in a job error; write _('…', name=…)"
        for template in templates:
            assert template in listed, f"{where}: add {template!r} to portal.job_errors"
            assert not re.search(r"%(?!\(\w+\)s)", template), f"{where}: use %(name)s only"


def _sample(template: str) -> tuple[str, dict[str, str]]:
    values = {name: f"v{i}-{name}" for i, name in enumerate(re.findall(r"%\((\w+)\)s", template))}
    return template % values, values


@pytest.mark.parametrize("template", ERROR_TEMPLATES)
def test_every_template_reads_back_and_renders_translated(zh_catalog, template: str) -> None:
    english, values = _sample(template)
    assert job_error_display(english) == english
    with translation.override("zh-hans"):
        chinese = job_error_display(english)
        assert chinese == translation.gettext(template) % values
    if template != "HTTP %(status)s":
        assert chinese != english and re.search(r"[\u4e00-\u9fff]", chinese), template


@pytest.mark.parametrize(
    ("error", "chinese"),
    [
        ("Registry error: 503 from harbor.local", "镜像仓库错误：503 from harbor.local"),
        (
            "Line 2: runtime/debian:12 is not an approved (or candidate) image version in the "
            "portal's registry: no approved or candidate version",
            "第 2 行：runtime/debian:12 不是门户镜像仓库中已批准（或候选）的镜像版本："
            "没有已批准或候选的版本",
        ),
        (
            "The build command failed (exit code 2); nothing was registered. Its output ends "
            "with:\nmain.c:1: error\nmake: *** [all] Error 1",
            "构建命令失败（退出码 2）；没有登记任何内容。其输出的末尾为：\n"
            "main.c:1: error\nmake: *** [all] Error 1",
        ),
        (
            "The build command succeeded but left no /out/bin/app: write the output there "
            "(e.g. gcc -o /out/bin/app …).",
            "构建命令成功了，但没有生成 /out/bin/app："
            "请把产物写到那里（例如 gcc -o /out/bin/app …）。",
        ),
        ("buildah: exit status 125", "buildah: exit status 125"),  # a tool's words: as is
    ],
)
def test_job_errors_in_chinese(zh_catalog, error: str, chinese: str) -> None:
    with translation.override("zh-hans"):
        assert job_error_display(error) == chinese
    assert job_error_display(error) == error


def test_a_requeued_step_translates_its_reason(zh_catalog) -> None:
    from portal.job_steps import job_step_display

    with translation.override("zh-hans"):
        shown = job_step_display("requeued: harbor.local is unavailable: timed out")
    assert "harbor.local 不可用：timed out" in shown


def test_the_job_page_shows_a_failed_jobs_error_in_the_readers_language(
    client, admin_user, zh_catalog
) -> None:
    job, _ = job_create(kind="portal.selftest", actor=Actor(user=admin_user))
    error = "No registry is configured to push to; add one (Registry, is_default)."
    Job.objects.filter(pk=job.pk).update(state="failed", error=error)
    client.force_login(admin_user)
    zh = client.get(f"/jobs/{job.pk}/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "没有配置要推送到的镜像仓库；请添加一个（Registry, is_default）。" in zh
    en = client.get(f"/jobs/{job.pk}/").content.decode()
    assert error in en and "镜像仓库" not in en
    listed = client.get("/jobs/", HTTP_ACCEPT_LANGUAGE="zh-Hans").content.decode()
    assert "没有配置要推送到的镜像仓库" in listed
    api = client.get(f"/api/v1/jobs/{job.pk}/", HTTP_ACCEPT_LANGUAGE="zh-Hans")
    assert api.status_code == 200 and api.json()["error"] == error  # the API: as stored
