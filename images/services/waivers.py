"""Waivers: request, approve (a platform admin other than the requester), reject, revoke; and
which active waivers cover which findings (expiry by date, no rescan)."""

from __future__ import annotations

from collections.abc import Iterable

from ..models import Finding, Waiver


def active_waivers_for(
    findings: Iterable[Finding],
    *,
    image_version_id: int | None = None,
    base_image_id: int | None = None,
    service_name: str = "",
    team_id: int | None = None,
) -> dict[int, Waiver]:
    """Finding id → the approved, unexpired waiver that covers it in this context.

    (A seam the waiver work fills; until then nothing is waived.)
    """
    return {}
