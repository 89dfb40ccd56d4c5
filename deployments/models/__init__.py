"""Models of the deployments app, one module per entity family; every name is importable here."""

from .builds import SourceBuild

# Migrations refer to the JSONField default by its old path, deployments.models._default_args.
from .core import (
    DEFAULT_ARGS,
    BinaryVersion,
    Deployment,
    Environment,
    PolicyException,
    Release,
    Service,
    _default_args,  # noqa: F401
    abs_path_validator,
    actor_label,
    k8s_version_validator,
    secret_name_validator,
    sha256_validator,
    version_validator,
)
from .daily_counts import DeploymentDailyCount, DeploymentDailyCountDay
from .plans import MigrationPlan, Plan, PlanItem, RebasePlan

__all__ = [
    "actor_label",
    "DEFAULT_ARGS",
    "BinaryVersion",
    "Deployment",
    "DeploymentDailyCount",
    "DeploymentDailyCountDay",
    "Environment",
    "MigrationPlan",
    "Plan",
    "PlanItem",
    "PolicyException",
    "RebasePlan",
    "Release",
    "Service",
    "SourceBuild",
    "abs_path_validator",
    "k8s_version_validator",
    "secret_name_validator",
    "sha256_validator",
    "version_validator",
]
