"""Job step texts in the reader's language.

Workers write a job's `step` in English (the API serves it as written, and a worker has no
reader). The pages show it translated: a step that matches one of the patterns below is
rendered from its translated template with the matched parts; any other step is shown as is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from .job_errors import job_error_display

STEP_PATTERNS: Sequence[tuple[re.Pattern[str], Promise]] = tuple(
    (re.compile(pattern), template)
    for pattern, template in (
        (r"^finished$", _("finished")),
        (r"^requeued: (?P<reason>.+)$", _("requeued: %(reason)s")),
        (r"^step (?P<n>\d+) of (?P<total>\d+)$", _("step %(n)s of %(total)s")),
        (r"^bootstrap mirror$", _("bootstrap mirror")),
        (r"^sandbox check$", _("sandbox check")),
        (r"^buildah rmi$", _("removing the build's images")),
        (r"^purging old binary versions$", _("purging old binary versions")),
        (r"^reading stored binaries$", _("reading stored binaries")),
        (
            r"^making the image FROM scratch with buildah$",
            _("making the image FROM scratch with buildah"),
        ),
        (r"^building the Dockerfile with buildah$", _("building the Dockerfile with buildah")),
        (
            r"^making the image from the root filesystem$",
            _("making the image from the root filesystem"),
        ),
        (r"^syft: cataloguing packages$", _("syft: cataloguing packages")),
        (r"^syft: cataloguing modules$", _("syft: cataloguing modules")),
        (r"^packages: normalising$", _("packages: normalising")),
        (r"^ABI: reading shared libraries$", _("ABI: reading shared libraries")),
        (r"^match: advisories$", _("match: advisories")),
        (r"^gate: publish rule$", _("gate: publish rule")),
        (r"^recording the candidate version$", _("recording the candidate version")),
        (r"^registering the binary version$", _("registering the binary version")),
        (r"^pulling the build image (?P<ref>.+)$", _("pulling the build image %(ref)s")),
        (r"^pushing to (?P<dest>.+)$", _("pushing to %(dest)s")),
        (
            r"^reading the pushed manifest back from (?P<host>.+)$",
            _("reading the pushed manifest back from %(host)s"),
        ),
        (r"^verifying the base layers of (?P<ref>.+)$", _("verifying the base layers of %(ref)s")),
        (
            r"^bootstrapping (?P<suite>\S+) \((?P<variant>[^)]+)\) with mmdebstrap$",
            _("bootstrapping %(suite)s (%(variant)s) with mmdebstrap"),
        ),
        (
            r"^resolving the (?P<kind>\S+) recipe of (?P<ref>.+)$",
            _("resolving the %(kind)s recipe of %(ref)s"),
        ),
        (r"^re-matching (?P<n>\d+) changed packages$", _("re-matching %(n)s changed packages")),
        (r"^recording (?P<ref>.+)$", _("recording %(ref)s")),
        (r"^copy: (?P<what>.+)$", _("copy: %(what)s")),
        (r"^collecting (?P<path>/out/.+)$", _("collecting %(path)s")),
        (
            r"^wave (?P<wave>\S+): (?P<done>\d+) of (?P<total>\d+) items$",
            _("wave %(wave)s: %(done)s of %(total)s items"),
        ),
        (r"^plan (?P<plan>\d+): wave (?P<wave>\S+)$", _("plan %(plan)s: wave %(wave)s")),
        (
            r"^(?P<seen>\d+) of (?P<total>\d+) records read$",
            _("%(seen)s of %(total)s records read"),
        ),
        (r"^(?P<seen>\d+) records read$", _("%(seen)s records read")),
        (r"^(?P<image>\S+): listing tags$", _("%(image)s: listing tags")),
        (r"^reading server path (?P<source>.+)$", _("reading server path %(source)s")),
        (r"^reading upload (?P<source>.+)$", _("reading upload %(source)s")),
        (
            r"^reading internal mirror url (?P<source>.+)$",
            _("reading internal mirror URL %(source)s"),
        ),
        (
            r"^source build #(?P<build>\d+): (?P<service>\S+) (?P<version>\S+)$",
            _("source build #%(build)s: %(service)s %(version)s"),
        ),
        (
            r"^app image of (?P<deployment>.+): (?P<binary>.+) on (?P<runtime>.+)$",
            _("app image of %(deployment)s: %(binary)s on %(runtime)s"),
        ),
        (
            r"^unpacking (?P<name>.+) \(sha256 (?P<sha>[0-9a-f]+)\)$",
            _("unpacking %(name)s (sha256 %(sha)s)"),
        ),
        (r"^running (?P<command>.+) in (?P<image>\S+)$", _("running %(command)s in %(image)s")),
        (
            r"^build context: (?P<name>.+) \((?P<size>\d+) bytes\)$",
            _("build context: %(name)s (%(size)s bytes)"),
        ),
        (
            r"^checking (?P<service>\S+) (?P<version>\S+) \((?P<arch>[^)]+)\)$",
            _("checking %(service)s %(version)s (%(arch)s)"),
        ),
        (
            r"^writing (?P<path>/.+) \((?P<size>\d+) bytes\) into a layer$",
            _("writing %(path)s (%(size)s bytes) into a layer"),
        ),
        (
            r"^(?P<count>\d+) demo deployments; the rebase demo's version is published$",
            _("%(count)s demo deployments; the rebase demo's version is published"),
        ),
    )
)


def job_step_display(step: str) -> str:
    """The step in the active language (the step itself when no pattern knows it)."""
    for pattern, template in STEP_PATTERNS:
        match = pattern.match(step)
        if match:
            values = match.groupdict()
            if "reason" in values:  # a requeue's reason is a job error
                values["reason"] = job_error_display(values["reason"])
            return str(template) % values
    return step
