"""The publish gate: no unwaived finding at or above the threshold with a fix available."""

from __future__ import annotations

from typing import Any

from portal.actors import Actor


def image_version_apply_gate(*, version_id: int, actor: Actor) -> dict[str, Any]:
    """Evaluate the gate for a scanned version and move its `scanning` requests along:
    clean → published (auto-publish) or left for a reviewer; blocked → says which findings
    block it and how to waive them. (A seam the gate work fills; until then it does nothing.)"""
    return {}
