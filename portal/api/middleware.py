"""Request-wide input rules: no NUL in the URL, and JSON 404s under /api/."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

API_PREFIX = "/api/"


def _has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path:
        return True
    return any(
        "\x00" in key or any("\x00" in value for value in values)
        for key, values in request.GET.lists()
    )


class InputGuardMiddleware:
    """Refuse NUL characters in the path and query string; answer JSON 404s for the API.

    PostgreSQL refuses NUL in a text literal with a DataError, so a `%00` in a filter
    parameter or a path segment (`/environments/a%00/`) used to be a 500. No URL of the
    portal has a use for NUL, so it is refused here once, before any view, with 400.
    Unknown `/api/…` routes fall through to Django's HTML 404; API clients get
    `{"detail", "code": "not_found"}` instead.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        is_api = request.path.startswith(API_PREFIX)
        if _has_nul(request):
            message = "The URL may not contain NUL (%00) characters."
            if is_api:
                return JsonResponse({"detail": message, "code": "invalid"}, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        response = self.get_response(request)
        if (
            is_api
            and response.status_code == 404
            and response.get("Content-Type", "").startswith("text/html")
        ):
            return JsonResponse(
                {"detail": f"No API route or object at {request.path}.", "code": "not_found"},
                status=404,
            )
        return response
