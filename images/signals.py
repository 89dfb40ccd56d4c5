"""Signals the images app sends, so a higher layer (deployments) can react without images
importing it.

`image_version_superseded(sender=ImageVersion, old_version_id, new_version_id, actor)` is sent
after the publish that superseded `old_version_id` by `new_version_id` has committed (once per
superseded version). The deployments app answers it with a draft rebase plan.
"""

from __future__ import annotations

from django.dispatch import Signal

image_version_superseded = Signal()
