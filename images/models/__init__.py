"""Models of the images app, one module per entity family; every name is importable from here."""

from .advisories import Advisory, AdvisoryAlias, AdvisoryImport, AdvisoryRevision, AffectedPackage
from .catalog import (
    BaseImage,
    ImageRequest,
    ImageRequestEvent,
    ImageVersion,
    Registry,
    digest_validator,
    image_name_validator,
    tag_validator,
)
from .findings import FINDING_ORDER, Finding, Waiver
from .scans import ImageAbi, Package, Sbom, SbomPackage

__all__ = [
    "FINDING_ORDER",
    "Advisory",
    "AdvisoryAlias",
    "AdvisoryImport",
    "AdvisoryRevision",
    "AffectedPackage",
    "BaseImage",
    "Finding",
    "ImageAbi",
    "ImageRequest",
    "ImageRequestEvent",
    "ImageVersion",
    "Package",
    "Registry",
    "Sbom",
    "SbomPackage",
    "Waiver",
    "digest_validator",
    "image_name_validator",
    "tag_validator",
]
