"""The /api/v1/ router: every app registers its viewsets here, under one namespace."""

from rest_framework.routers import SimpleRouter

from images.api.views import BaseImageViewSet
from portal.api.views import JobViewSet

router = SimpleRouter()
router.register("base-images", BaseImageViewSet, basename="base-image")
router.register("jobs", JobViewSet, basename="job")

urlpatterns = router.urls
