"""UI views of the deployments app: services, versions, upload, deployments, releases, diff."""

from ._common import PAGE_SIZES
from .advisories import AdvisorySearchView
from .binaries import UPLOAD_CSRF_PARAM, BinaryArtifactView, BinaryYankView, binary_upload_view
from .dashboard import (
    DashboardChartView,
    DashboardView,
    DeploymentListView,
    ReviewBadgeView,
    SearchView,
)
from .deployments import DeploymentCreateView, DeploymentDetailView
from .environments import EnvironmentCreateView, EnvironmentDetailView, EnvironmentListView
from .migrations import MigrationCreateView
from .plans import PlanActionView, PlanDetailView, PlanListView, RebasePlanCreateView
from .releases import ReleaseDetailView, ReleaseDiffView, ReleaseRollbackView
from .services import ServiceCreateView, ServiceDetailView, ServiceListView

__all__ = [
    "AdvisorySearchView",
    "BinaryArtifactView",
    "BinaryYankView",
    "DashboardChartView",
    "DashboardView",
    "DeploymentCreateView",
    "DeploymentListView",
    "DeploymentDetailView",
    "EnvironmentCreateView",
    "EnvironmentDetailView",
    "EnvironmentListView",
    "MigrationCreateView",
    "PAGE_SIZES",
    "PlanActionView",
    "PlanDetailView",
    "PlanListView",
    "RebasePlanCreateView",
    "ReleaseDetailView",
    "ReleaseDiffView",
    "ReleaseRollbackView",
    "ReviewBadgeView",
    "SearchView",
    "ServiceCreateView",
    "ServiceDetailView",
    "ServiceListView",
    "UPLOAD_CSRF_PARAM",
    "binary_upload_view",
]
