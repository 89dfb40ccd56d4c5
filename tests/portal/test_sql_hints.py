"""`portal.sql_hints.joins_as_written`: PostgreSQL's join order as written, for the
statements inside it alone."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from portal.sql_hints import joins_as_written

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a PostgreSQL planner setting"
)


def _limit() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT current_setting(%s) || ' ' || current_setting(%s)",
            ["join_collapse_limit", "random_page_cost"],
        )
        return str(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True)
def test_the_setting_holds_for_each_statement_inside_and_no_other():
    before = _limit()
    with joins_as_written():
        inside = [_limit(), _limit()]
    assert before != "1 1.1"
    assert inside == ["1 1.1", "1 1.1"]
    assert _limit() == before


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_it_changes_nothing():
    """A SET LOCAL in an open transaction would outlive the statement."""
    before = _limit()
    with transaction.atomic(), joins_as_written():
        assert _limit() == before
    assert _limit() == before


@pytest.mark.django_db(transaction=True)
def test_a_failing_statement_leaves_the_connection_as_it_was():
    before = _limit()
    with pytest.raises(Exception, match="no_such_table"), joins_as_written():
        with connection.cursor() as cursor:
            cursor.execute("SELECT * FROM no_such_table")
    assert _limit() == before


@pytest.mark.django_db(transaction=True)
def test_a_server_side_cursor_is_left_as_it_is(platform_team):
    """`.iterator()` declares a named cursor FOR its one statement: no hint in front."""
    from portal.models import Team

    with joins_as_written():
        names = [team.name for team in Team.objects.order_by("name").iterator(chunk_size=1)]
        assert _limit() == "1 1.1"
    assert platform_team.name in names
