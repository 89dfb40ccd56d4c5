"""UI routes of the images app."""

from django.urls import path

from . import views
from .views.curation import BaseImageCurateView, ImageVersionRevokeView
from .views.demo import demo_progress_view

app_name = "images"

urlpatterns = [
    path("base-images/", views.BaseImageListView.as_view(), name="base-image-list"),
    path("base-images/<int:pk>/", views.BaseImageDetailView.as_view(), name="base-image-detail"),
    # Image versions: scan state, SBOM downloads, findings; "Scan now".
    path(
        "image-versions/<int:pk>/",
        views.ImageVersionDetailView.as_view(),
        name="image-version-detail",
    ),
    path(
        "image-versions/<int:pk>/scan/",
        views.ImageVersionScanView.as_view(),
        name="image-version-scan",
    ),
    path("advisory-imports/", views.AdvisoryImportListView.as_view(), name="advisory-import-list"),
    # The rule reference (public): linked from findings, SARIF helpUri and portal-check.
    path("rules/", views.RuleReferenceView.as_view(), name="rule-reference"),
    path("rules/<str:rule>/", views.RuleDetailView.as_view(), name="rule-detail"),
    path("demo-progress/", demo_progress_view, name="demo-progress"),
    path("base-images/<int:pk>/curate/", BaseImageCurateView.as_view(), name="base-image-curate"),
    path(
        "image-versions/<int:pk>/revoke/",
        ImageVersionRevokeView.as_view(),
        name="image-version-revoke",
    ),
    path("dockerfile-check/", views.DockerfileCheckView.as_view(), name="dockerfile-check"),
    # Image requests: the form, my requests / review queue, the request page and its actions.
    path("image-requests/", views.ImageRequestListView.as_view(), name="image-request-list"),
    path(
        "image-requests/new/",
        views.ImageRequestCreateView.as_view(),
        name="image-request-create",
    ),
    path(
        "image-requests/<int:pk>/",
        views.ImageRequestDetailView.as_view(),
        name="image-request-detail",
    ),
    path(
        "image-requests/<int:pk>/edit/",
        views.ImageRequestEditView.as_view(),
        name="image-request-edit",
    ),
    path(
        "image-requests/<int:pk>/<slug:action>/",
        views.ImageRequestActionView.as_view(),
        name="image-request-action",
    ),
    # Waivers: the list / review queue, the request form, the waiver page and its actions.
    path("waivers/", views.WaiverListView.as_view(), name="waiver-list"),
    path("waivers/new/", views.WaiverCreateView.as_view(), name="waiver-create"),
    path("waivers/<int:pk>/", views.WaiverDetailView.as_view(), name="waiver-detail"),
    path(
        "waivers/<int:pk>/<slug:action>/",
        views.WaiverActionView.as_view(),
        name="waiver-action",
    ),
]
