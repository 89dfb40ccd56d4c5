"""The Dockerfile policy engine: pure functions over Dockerfile text and catalog data.

Usage::

    result = check_dockerfile(text, catalog=catalog, service=service)
    result.to_dict()                      # the API body
    to_sarif(result, filename="Dockerfile")  # ?format=sarif
"""

from images.policy.catalog import (
    Catalog,
    CatalogError,
    CatalogImage,
    CatalogVersion,
    ServiceContext,
    catalog_from_dict,
)
from images.policy.config import PolicyConfig, PolicyError, RuleInfo, load_policy
from images.policy.engine import (
    MAX_DOCKERFILE_BYTES,
    CheckResult,
    DockerfileInputError,
    Finding,
    Stage,
    check_dockerfile,
)
from images.policy.sarif import to_sarif

__all__ = [
    "MAX_DOCKERFILE_BYTES",
    "Catalog",
    "CatalogError",
    "CatalogImage",
    "CatalogVersion",
    "CheckResult",
    "DockerfileInputError",
    "Finding",
    "PolicyConfig",
    "PolicyError",
    "RuleInfo",
    "ServiceContext",
    "Stage",
    "catalog_from_dict",
    "check_dockerfile",
    "load_policy",
    "to_sarif",
]
