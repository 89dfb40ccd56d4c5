"""The WSGI app `bench/scale.py` serves: the portal itself plus the floor, a bare
`JsonResponse(values())` view of 50 catalog rows (three joins, no DRF, no auth) that goes
through the same middleware, so every endpoint is compared with it on the same server."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import include, path  # noqa: E402

from images.models import BaseImage  # noqa: E402

PORTAL_URLCONF = settings.ROOT_URLCONF
FLOOR_FIELDS = (
    "id",
    "name",
    "kind",
    "os_family",
    "os_version",
    "toolchain",
    "status",
    "status_note",
    "eol_date",
    "replacement__name",
    "owner_team__name",
    "registry__url",
    "description",
    "updated_at",
)


def floor(request: HttpRequest) -> JsonResponse:
    """The floor: one query, 50 rows, straight to JSON."""
    rows = list(BaseImage.objects.order_by("name").values(*FLOOR_FIELDS)[:50])
    return JsonResponse(rows, safe=False)


urlpatterns = [path("bench/floor/", floor), path("", include(PORTAL_URLCONF))]
settings.ROOT_URLCONF = __name__
application = get_wsgi_application()
