"""The portal's URLs plus one view that fails, so the browser tests see the real 500 page
(the handler the portal installs, reached through every middleware) without touching the
portal's own URLs. Used with `settings.ROOT_URLCONF = "tests.browser.error_urls"`."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path

from portal.urls import handler403, handler404, handler500
from portal.urls import urlpatterns as portal_urlpatterns

__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]

FAILING_PATH = "/test-only/fail/"


def fail(request: HttpRequest) -> HttpResponse:
    """A view with a bug."""
    raise RuntimeError("a test view fails on purpose")


urlpatterns = [path(FAILING_PATH.strip("/") + "/", fail), *portal_urlpatterns]
