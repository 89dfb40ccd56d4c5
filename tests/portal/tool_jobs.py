"""A job kind for tests only: run `params["argv"]` through `portal.commands.run_command`.

Real workers load it with `celery worker --include tests.portal.tool_jobs`; tests import it
to create such jobs. The result says what the job's `process_group` was while the command ran
(read when its first line arrived).
"""

from __future__ import annotations

from typing import Any

from portal.commands import run_command
from portal.jobs import JobContext, job_kind
from portal.models import Job

TOOL_KIND = "tests.tool"


@job_kind(TOOL_KIND, timeout_seconds=900, max_attempts=2, title="Test tool")
def run_tool(ctx: JobContext) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def on_output(line: str) -> None:
        if "process_group" not in seen:
            seen["process_group"] = Job.objects.get(pk=ctx.job.pk).process_group
        ctx.log(line)

    ctx.progress(5, "running the tool")
    result = run_command(
        list(ctx.params["argv"]),
        timeout=600,
        on_output=on_output,
        should_cancel=ctx.should_cancel,
    )
    return {"returncode": result.returncode, **seen}
