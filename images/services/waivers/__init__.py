"""Waivers: request, approve (a platform admin other than the requester), reject, revoke; and
which active waivers cover which findings (expiry by date, no rescan).

A waiver names an advisory by its id or any alias; it covers a finding whose advisory is that
record or is linked to it by an alias in either direction (waiving CVE-X covers DSA-Y, which
aliases CVE-X, and waiving DSA-Y covers CVE-X). Services live in deployments, a layer above:
a service name is turned into its team through a resolver deployments registers at start.

Three rooms:

* `request`: asking for a waiver (scope, VEX statement, expiry), and the service resolver.
* `decisions`: a reviewer approves or rejects it; it is revoked.
* `coverage`: which active waivers cover which findings, a team's list, the OpenVEX document.
"""

from __future__ import annotations

from images.services.waivers.coverage import (
    active_waivers_for,
    advisory_names,
    waiver_active_q,
    waiver_list_for_actor,
    waiver_products,
    waivers_openvex,
)
from images.services.waivers.decisions import waiver_approve, waiver_reject, waiver_revoke
from images.services.waivers.request import (
    OPEN_STATES,
    ServiceTeamResolver,
    advisory_ref_known,
    waiver_max_days,
    waiver_request,
    waiver_service_resolver_register,
)

__all__ = [
    "OPEN_STATES",
    "ServiceTeamResolver",
    "active_waivers_for",
    "advisory_names",
    "advisory_ref_known",
    "waiver_active_q",
    "waiver_approve",
    "waiver_list_for_actor",
    "waiver_max_days",
    "waiver_products",
    "waiver_reject",
    "waiver_request",
    "waiver_revoke",
    "waiver_service_resolver_register",
    "waivers_openvex",
]
