"""The /api/v1/ router: every app registers its viewsets here, under one namespace."""

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from deployments.api.binaries import BinaryVersionViewSet, ServiceBinaryViewSet
from deployments.api.builds import ServiceBuildViewSet
from deployments.api.deployments import DeploymentViewSet
from deployments.api.environments import EnvironmentViewSet
from deployments.api.plans import MigrationPlanViewSet, RebasePlanViewSet
from deployments.api.releases import ReleaseViewSet
from deployments.api.services import ServiceViewSet
from deployments.api.urls import urlpatterns as deployments_urlpatterns
from images.api.advisories import AdvisoryViewSet
from images.api.views import (
    BaseImageViewSet,
    DockerfileCheckViewSet,
    ImageRequestViewSet,
    ImageVersionViewSet,
)
from images.api.waivers import WaiverViewSet
from portal.api.views import JobViewSet
from portal.webhooks.api import WebhookDeliveryViewSet, WebhookSubscriptionViewSet

router = SimpleRouter()
router.register("base-images", BaseImageViewSet, basename="base-image")
router.register("jobs", JobViewSet, basename="job")
router.register("services", ServiceViewSet, basename="service")
router.register(
    r"services/(?P<service_name>[^/]+)/binaries", ServiceBinaryViewSet, basename="service-binary"
)
router.register(
    r"services/(?P<service_name>[^/]+)/builds", ServiceBuildViewSet, basename="service-build"
)
router.register("binaries", BinaryVersionViewSet, basename="binary-version")
router.register("environments", EnvironmentViewSet, basename="environment")
router.register("deployments", DeploymentViewSet, basename="deployment")
router.register("releases", ReleaseViewSet, basename="release")
router.register("dockerfile-checks", DockerfileCheckViewSet, basename="dockerfile-check")
router.register("image-requests", ImageRequestViewSet, basename="image-request")
router.register("image-versions", ImageVersionViewSet, basename="image-version")
router.register("advisories", AdvisoryViewSet, basename="advisory")
router.register("waivers", WaiverViewSet, basename="waiver")
router.register("rebase-plans", RebasePlanViewSet, basename="rebase-plan")
router.register("migration-plans", MigrationPlanViewSet, basename="migration-plan")
router.register("webhooks/deliveries", WebhookDeliveryViewSet, basename="webhook-delivery")
router.register("webhooks", WebhookSubscriptionViewSet, basename="webhook")

# The OpenVEX document also without the trailing slash (it is a file name).
urlpatterns: list[URLPattern | URLResolver] = [
    path(
        "waivers/openvex.json",
        WaiverViewSet.as_view({"get": "openvex"}, schema=None),  # documented with the slash
        name="waiver-vex",
    ),
]
urlpatterns += router.urls
urlpatterns += deployments_urlpatterns
