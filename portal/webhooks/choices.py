"""Choices of the webhooks: the event types a team may subscribe to, delivery states."""

from django.db import models
from django.utils.translation import gettext_lazy as _

EVENT_TYPE_PREFIX = "io.baseimage.portal."


class EventType(models.TextChoices):
    """CloudEvents `type` of every event the portal emits (reverse-DNS, as the spec asks).

    Catalog events (image versions) reach every team's subscriptions; the others reach the
    subscriptions of the team that owns the subject and of the platform teams.
    """

    IMAGE_VERSION_PUBLISHED = (
        "io.baseimage.portal.image_version.published",
        _("Image version published"),
    )
    IMAGE_VERSION_SUPERSEDED = (
        "io.baseimage.portal.image_version.superseded",
        _("Image version superseded"),
    )
    IMAGE_VERSION_REVOKED = "io.baseimage.portal.image_version.revoked", _("Image version revoked")
    IMAGE_REQUEST_STATE_CHANGED = (
        "io.baseimage.portal.image_request.state_changed",
        _("Image request state changed"),
    )
    RELEASE_CREATED = "io.baseimage.portal.release.created", _("Release created")
    FINDING_CREATED = "io.baseimage.portal.finding.created", _("Finding created")
    REBASE_PLAN_CHANGED = "io.baseimage.portal.rebase_plan.changed", _("Rebase plan changed")


# Sent by "send test" only; nobody subscribes to it.
TEST_EVENT_TYPE = "io.baseimage.portal.webhook.test"


class DeliveryState(models.TextChoices):
    """pending (an attempt is queued or due) → succeeded | failed (attempts spent or refused)."""

    PENDING = "pending", _("Pending")
    SUCCEEDED = "succeeded", _("Succeeded")
    FAILED = "failed", _("Failed")
