"""The first-run banner's fragment (htmx-polled from every page while the demo builds)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ..demo_progress import demo_progress


@login_required
def demo_progress_view(request: HttpRequest) -> HttpResponse:
    """The banner, or nothing once every demo image is ready (the swap removes it)."""
    progress = demo_progress()
    if not progress:
        return HttpResponse("")
    return render(request, "images/_demo_banner.html", {"demo_progress": progress})
