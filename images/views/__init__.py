"""UI views of the images app, one module per area; `images.urls` routes them."""

from .advisory_imports import AdvisoryImportListView
from .catalog import (
    BaseImageDetailView,
    BaseImageListView,
    DockerfileCheckView,
    ImageRequestActionView,
    ImageRequestCreateView,
    ImageRequestDetailView,
    ImageRequestEditView,
    ImageRequestListView,
)
from .rules import RuleDetailView, RuleReferenceView
from .versions import ImageVersionDetailView, ImageVersionScanView
from .waivers import WaiverActionView, WaiverCreateView, WaiverDetailView, WaiverListView

__all__ = [
    "AdvisoryImportListView",
    "BaseImageDetailView",
    "BaseImageListView",
    "DockerfileCheckView",
    "ImageRequestActionView",
    "ImageRequestCreateView",
    "ImageRequestDetailView",
    "ImageRequestEditView",
    "ImageRequestListView",
    "RuleDetailView",
    "RuleReferenceView",
    "WaiverActionView",
    "WaiverCreateView",
    "WaiverDetailView",
    "WaiverListView",
    "ImageVersionDetailView",
    "ImageVersionScanView",
]
