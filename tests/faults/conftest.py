"""Fault tests: real workers, brokers and databases stopped and started under load."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connection

from portal.celery import app as celery_app
from tests.faults.support import Workers


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


def database_url() -> str:
    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip("the fault tests need PostgreSQL (make test-faults)")
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Start real Celery workers on this test's database; all stopped at the end.

    The queues are emptied first: a message an earlier run left names a job id this
    database may have given to another job."""
    celery_app.control.purge()
    pool = Workers(
        tmp_path / "worker-logs",
        {
            "DATABASE_URL": database_url(),
            "JOB_HEARTBEAT_SECONDS": "1",
            "PORTAL_VAR_DIR": str(tmp_path / "var"),
        },
    )
    try:
        yield pool
    finally:
        pool.stop_all()
