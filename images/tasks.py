"""Celery tasks of the images app (periodic upkeep; real work runs as Jobs)."""

from celery import shared_task

from portal.actors import Actor

from .models import BaseImage
from .services import base_image_apply_lifecycle
from .services.scans import image_versions_scan_approved


@shared_task(name="images.tasks.refresh_lifecycle")
def refresh_lifecycle() -> int:
    """Re-derive every entry's status from the lifecycle table (an OS reaches EOL by date)."""
    actor = Actor.system_actor("lifecycle")
    for image in BaseImage.objects.select_related("replacement"):
        base_image_apply_lifecycle(image=image, actor=actor)
    return BaseImage.objects.count()


@shared_task(name="images.tasks.import_advisory_mirrors")
def import_advisory_mirrors() -> list[int]:
    """Start an advisory import job for every internal mirror URL (PORTAL_ADVISORY_MIRRORS),
    except one whose previous import is still queued or running."""
    from django.conf import settings

    from portal.choices import JobState

    from .models import AdvisoryImport
    from .services.advisories import advisory_import_start

    actor = Actor.system_actor("advisory mirrors")
    started = []
    for url in settings.PORTAL_ADVISORY_MIRRORS:
        busy = AdvisoryImport.objects.filter(
            source_kind="url", source=url, job__state__in=JobState.live()
        ).exists()
        if not busy:
            started.append(advisory_import_start(actor=actor, url=url).pk)
    return started


@shared_task(name="images.tasks.scan_approved_versions")
def scan_approved_versions() -> int:
    """Queue a scan of every approved image version (the schedule, PORTAL_SCAN_INTERVAL_HOURS)."""
    return image_versions_scan_approved(actor=Actor.system_actor("scan-schedule"))
