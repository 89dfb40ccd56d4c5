"""URL roots: the UI, the API (v1, schema, docs), login/logout, the language switcher, admin."""

from csp.decorators import csp_update
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from .views import api_not_found, healthz

urlpatterns = [
    # The dashboard (issue 11) reads both apps, so the top layer serves it.
    path("", include("deployments.home_urls")),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", healthz, name="healthz"),
    # The language switcher posts here (Django's set_language: cookie, then redirect back).
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("images.urls")),
    path("", include("deployments.urls")),
    path("", include("portal.ui_urls")),
    path("", include("portal.webhooks.urls")),
    path("api/v1/", include(("portal.api_router", "api"), namespace="api")),
    re_path(r"^api/v1/", api_not_found),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file (script-src 'self'); its
    # page keeps one inline <style> and Swagger UI sets inline styles, so style-src is wider.
    path(
        "api/docs/",
        csp_update({"style-src": ["'unsafe-inline'"]})(
            SpectacularSwaggerSplitView.as_view(url_name="schema")
        ),
        name="api-docs",
    ),
    path("django-admin/", admin.site.urls),
]

handler403 = "portal.views.permission_denied"
handler404 = "portal.views.page_not_found"
handler500 = "portal.views.server_error"
