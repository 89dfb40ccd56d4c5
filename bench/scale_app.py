"""The WSGI app `bench/scale.py` serves: the portal itself plus the floor, a bare
`JsonResponse(values())` view of 50 catalog rows (three joins, no DRF, no auth) that goes
through the same middleware, so every endpoint is compared with it on the same server.

`/bench/floor-drf/` is the same rows through DRF as every API view meets it (the portal's
token authentication, scope permission, content negotiation and JSON renderer): what an
API endpoint costs before it does any work of its own, measured like the endpoints.

`/bench/floor-page/` is the same for a page: the portal's layout (`base.html`) with an empty
content block, for a logged-in user (session, user, memberships, navigation, CSRF, CSP):
what a page costs before it shows anything."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.template import engines  # noqa: E402
from django.urls import include, path  # noqa: E402
from rest_framework.request import Request  # noqa: E402
from rest_framework.response import Response  # noqa: E402
from rest_framework.views import APIView  # noqa: E402

from images.models import BaseImage  # noqa: E402
from portal.choices import Scope  # noqa: E402

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


class FloorDrf(APIView):
    """The floor's rows through DRF with the portal's API defaults (a token's read)."""

    required_scopes = {"*": Scope.IMAGES_READ}

    def get(self, request: Request) -> Response:
        return Response(list(BaseImage.objects.order_by("name").values(*FLOOR_FIELDS)[:50]))


PAGE_FLOOR = engines["django"].from_string(
    '{% extends "base.html" %}{% block title %}floor{% endblock %}{% block content %}{% endblock %}'
)


@login_required
def floor_page(request: HttpRequest) -> HttpResponse:
    """The layout alone, for the session's user."""
    return HttpResponse(PAGE_FLOOR.render({}, request))


urlpatterns = [
    path("bench/floor-page/", floor_page),
    path("bench/floor/", floor),
    path("bench/floor-drf/", FloorDrf.as_view()),
    path("", include(PORTAL_URLCONF)),
]
settings.ROOT_URLCONF = __name__
application = get_wsgi_application()
