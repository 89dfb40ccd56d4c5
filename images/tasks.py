"""Celery tasks of the images app (periodic upkeep; real work runs as Jobs)."""

from celery import shared_task

from portal.actors import Actor

from .models import BaseImage
from .services import base_image_apply_lifecycle


@shared_task(name="images.tasks.refresh_lifecycle")
def refresh_lifecycle() -> int:
    """Re-derive every entry's status from the lifecycle table (an OS reaches EOL by date)."""
    actor = Actor.system_actor("lifecycle")
    for image in BaseImage.objects.select_related("replacement"):
        base_image_apply_lifecycle(image=image, actor=actor)
    return BaseImage.objects.count()
