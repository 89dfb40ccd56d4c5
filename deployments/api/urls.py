"""API routes of the deployments app that a router cannot express (no trailing slash)."""

from django.urls import path

from .dashboard import DashboardView
from .environments import EnvironmentViewSet
from .impact import AdvisoryImpactView
from .policies import KyvernoPolicyView
from .releases import ReleaseViewSet
from .search import SearchView

urlpatterns = [
    path(
        "releases/<int:pk>/manifest.yaml",
        ReleaseViewSet.as_view({"get": "manifest"}),
        name="release-manifest",
    ),
    path(
        "environments/<str:name>/hostpath-sync.yaml",
        EnvironmentViewSet.as_view({"get": "hostpath_sync"}),
        name="environment-hostpath-sync",
    ),
    # The blast radius of an advisory: composed here, the images app knows no deployments.
    path("advisories/<str:ref>/impact/", AdvisoryImpactView.as_view(), name="advisory-impact"),
    # The navigation's search box (issue 11), over both apps.
    path("search/", SearchView.as_view(), name="search"),
    path("dashboard/", DashboardView.as_view(), name="dashboard"),
    # The admission policy spans the catalog and the environments: composed here.
    path("policies/kyverno.yaml", KyvernoPolicyView.as_view(), name="policy-kyverno"),
]
