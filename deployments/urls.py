"""UI routes of the deployments app."""

from django.urls import path

from . import views
from .views.exceptions import PolicyExceptionView
from .views.usage import base_image_used_by, image_version_used_by

app_name = "deployments"

urlpatterns = [
    # "Used by" panels of the images app's pages (htmx fragments: images knows no deployments).
    path("base-images/<int:pk>/used-by/", base_image_used_by, name="base-image-used-by"),
    path("image-versions/<int:pk>/used-by/", image_version_used_by, name="image-version-used-by"),
    # CVE search and the blast radius of one advisory (any of its ids or aliases).
    path("advisories/", views.AdvisorySearchView.as_view(), name="advisory-search"),
    path("advisories/<str:ref>/", views.AdvisorySearchView.as_view(), name="advisory-detail"),
    path("services/", views.ServiceListView.as_view(), name="service-list"),
    path("services/new/", views.ServiceCreateView.as_view(), name="service-create"),
    path("services/<str:name>/", views.ServiceDetailView.as_view(), name="service-detail"),
    path(
        "services/<str:name>/policy-exceptions/",
        PolicyExceptionView.as_view(),
        name="policy-exception",
    ),
    path("services/<str:name>/upload/", views.binary_upload_view, name="binary-upload"),
    path(
        "services/<str:name>/deploy/",
        views.DeploymentCreateView.as_view(),
        name="deployment-create",
    ),
    path("binaries/<int:pk>/yank/", views.BinaryYankView.as_view(), name="binary-yank"),
    path("binaries/<int:pk>/artifact/", views.BinaryArtifactView.as_view(), name="binary-artifact"),
    path("environments/", views.EnvironmentListView.as_view(), name="environment-list"),
    path("environments/new/", views.EnvironmentCreateView.as_view(), name="environment-create"),
    path(
        "environments/<str:name>/",
        views.EnvironmentDetailView.as_view(),
        name="environment-detail",
    ),
    # The dashboard's links land on the filtered list; search and the review badge (issue 11).
    path("deployments/", views.DeploymentListView.as_view(), name="deployment-list"),
    path("search/", views.SearchView.as_view(), name="search"),
    path("review-queue/badge/", views.ReviewBadgeView.as_view(), name="review-badge"),
    path("dashboard/chart/", views.DashboardChartView.as_view(), name="dashboard-chart"),
    path("deployments/<int:pk>/", views.DeploymentDetailView.as_view(), name="deployment-detail"),
    path("deployments/<int:pk>/diff/", views.ReleaseDiffView.as_view(), name="release-diff"),
    path("releases/<int:pk>/", views.ReleaseDetailView.as_view(), name="release-detail"),
    path(
        "releases/<int:pk>/rollback/", views.ReleaseRollbackView.as_view(), name="release-rollback"
    ),
    # Rebase and OS-migration plans (issue 10): the list, the dry-run forms, a plan, its actions.
    path("plans/", views.PlanListView.as_view(), name="plan-list"),
    path("rebase-plans/new/", views.RebasePlanCreateView.as_view(), name="rebase-plan-create"),
    path("migration-plans/new/", views.MigrationCreateView.as_view(), name="migration-create"),
    path("plans/<int:pk>/", views.PlanDetailView.as_view(), name="plan-detail"),
    path("plans/<int:pk>/<str:action>/", views.PlanActionView.as_view(), name="plan-action"),
]
