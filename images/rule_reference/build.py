"""The reference pages of the image-request rules (BUILD…): the checks of a new base image's
recipe when it is submitted (`images.services.reports`), beyond the Dockerfile check.

Their severities are fixed (the Dockerfile policy file does not list them).
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from .base import DIGEST, RuleDoc, doc

_BOOKWORM = "suite: bookworm\nvariant: minbase\npackages: [ca-certificates, tzdata]"

BUILD_RULES: tuple[RuleDoc, ...] = (
    doc(
        "BUILD001",
        _("Recipe builds FROM an image that is not an approved catalog version"),
        _(
            "Every FROM of a Dockerfile recipe must be an approved (or candidate) version of a "
            "catalog image in the portal's registry; the message says why this one is not (not "
            "in the catalog, no such version, revoked, or an unreadable reference)."
        ),
        _(
            "A new base image is built on what the platform team maintains: the portal pulls it "
            "from its own registry, not from upstream, and can then tell every image built on it "
            "when it must be rebuilt."
        ),
        "pull",
        _(
            "Build FROM an approved catalog image pinned by digest (its catalog page gives the "
            "reference), or bootstrap the OS from packages with a bootstrap recipe."
        ),
        "FROM docker.io/library/debian:12\nRUN apt-get update",
        f"FROM registry.example.com/runtime/debian-12@{DIGEST}\nRUN apt-get update",
        severity="fail",
    ),
    doc(
        "BUILD002",
        _("Bootstrap recipe for an OS mmdebstrap cannot make"),
        _(
            "A bootstrap recipe builds the OS from packages with mmdebstrap, which makes Debian "
            "and Ubuntu systems only; the request declares another OS family."
        ),
        _(
            "A runtime base image is a standard OS with the libraries services need; the portal "
            "can only bootstrap the systems its tool supports."
        ),
        "runtime",
        _(
            "For another OS (Rocky, Alma, openEuler …), use a Dockerfile recipe FROM an approved "
            "catalog image of that OS; or declare Debian or Ubuntu."
        ),
        "# OS: Rocky Linux 9\nsuite: bookworm",
        "# OS: Debian 12\n" + _BOOKWORM,
        severity="fail",
    ),
    doc(
        "BUILD003",
        _("Requested OS is past its end of life or restricted"),
        _(
            "The OS the request declares would not be approvable: it is past its end of life "
            "(CentOS 7, Debian 10 …) or restricted by the standard (alpine)."
        ),
        _(
            "Base images must be replaceable when a security problem appears; an OS past its end "
            "of life gets no more fixes, and the standard restricts alpine."
        ),
        "replace",
        _(
            "Request a supported release of the OS, or the replacement the catalog names "
            "(Rocky or Alma Linux, Debian, or a domestic OS such as openEuler)."
        ),
        "# OS: Debian 10\nsuite: buster",
        "# OS: Debian 12\n" + _BOOKWORM,
        severity="fail",
    ),
    doc(
        "BUILD004",
        _("Unusual mmdebstrap variant"),
        _(
            "The bootstrap recipe's variant (extract or custom) is not one of minbase, buildd, "
            "apt or essential, the variants a base image is usually made with."
        ),
        _(
            "A runtime base image holds the OS and the libraries services need, no more; extract "
            "and custom leave out what a working system needs unless the recipe adds it."
        ),
        "runtime",
        _(
            "Use variant minbase and list the packages the image needs; use buildd for a build "
            "base image."
        ),
        "suite: bookworm\nvariant: custom",
        _BOOKWORM,
        severity="warn",
    ),
    doc(
        "BUILD005",
        _("Declared OS is not the OS the recipe makes"),
        _(
            "The request's OS and OS version differ from what its recipe makes (the final FROM "
            "image's OS, or the bootstrap suite's release). Another OS family fails; another "
            "release of the same family warns."
        ),
        _(
            "The declared OS decides the image's lifecycle, advisories and scans, and which image "
            "replaces which; a wrong one hides the real system."
        ),
        "replace",
        _("Set OS and OS version to what the recipe makes, or change the recipe."),
        "# OS: Ubuntu 22.04\nsuite: bookworm",
        "# OS: Debian 12\n" + _BOOKWORM,
        severity="fail",
    ),
)
