"""Writes of deployments: put a service into an environment, with a checked spec."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext, gettext_lazy, pgettext

from images.models import ImageVersion
from images.texts import message_render
from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.choices import Role
from portal.teams import require_team_role

from ..manifests import resource_errors
from ..models import BinaryVersion, Deployment, Environment, Service
from ._common import PINNED_REF, check_binary, check_runtime
from .app_image_bases import app_image_base_read_queue

_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*\Z")
RESOURCE_KEYS = ("cpu_request", "memory_request", "cpu_limit", "memory_limit")


def _clean_spec(
    *, command: Any, args: Any, env: Any, ports: Any, resources: Any, replicas: Any
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        errors["command"] = gettext("command must be a list of strings.")
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        errors["args"] = gettext("args must be a list of strings.")
    env_out: list[dict[str, str]] = []
    if isinstance(env, dict):
        env = [{"name": k, "value": v} for k, v in env.items()]
    if not isinstance(env, list):
        errors["env"] = gettext("env must be a list of {name, value} objects.")
    else:
        for item in env:
            if not (
                isinstance(item, dict)
                and set(item) == {"name", "value"}
                and isinstance(item["name"], str)
                and isinstance(item["value"], str)
            ):
                errors["env"] = gettext(
                    "env must be a list of {name, value} objects with string values."
                )
                break
            if not _ENV_NAME.match(item["name"]):
                errors["env"] = gettext(
                    "env name %(item)r must match [-._a-zA-Z][-._a-zA-Z0-9]*."
                ) % {"item": item["name"]}
                break
            env_out.append({"name": item["name"], "value": item["value"]})
    if not isinstance(ports, list) or not all(
        isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535 for p in ports
    ):
        errors["ports"] = gettext("ports must be a list of integers 1-65535.")
    if (
        not isinstance(resources, dict)
        or set(resources) - set(RESOURCE_KEYS)
        or not all(isinstance(v, str) for v in resources.values())
    ):
        errors["resources"] = gettext("resources takes string values for %(keys)s.") % {
            "keys": ", ".join(RESOURCE_KEYS)
        }
    elif problems := resource_errors(**resources):
        errors["resources"] = "; ".join(message_render(p, gettext) for p in problems) + "."
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        errors["replicas"] = gettext("replicas must be an integer >= 0.")
    if errors:
        raise ValidationError(errors)
    return {
        "command": command,
        "args": args,
        "env": env_out,
        "ports": ports,
        "resources": resources,
        "replicas": replicas,
    }


def deployment_create(
    *,
    actor: Actor,
    service: Service,
    environment: Environment,
    runtime_version: ImageVersion,
    binary_version: BinaryVersion | None = None,
    mode: str = "",
    app_image: str = "",
    command: Any = None,
    args: Any = None,
    env: Any = None,
    ports: Any = None,
    resources: Any = None,
    replicas: Any = 1,
) -> Deployment:
    """Put a service into an environment (developers of the service's team)."""
    require_team_role(
        actor=actor,
        team=service.team,
        minimum=Role.DEVELOPER,
        what=pgettext("may …", "deploy this service"),
    )
    spec = _clean_spec(
        command=[] if command is None else command,
        args=["-m", "release"] if args is None else args,
        env=[] if env is None else env,
        ports=[] if ports is None else ports,
        resources={} if resources is None else resources,
        replicas=replicas,
    )
    check_runtime(runtime_version)
    if binary_version is not None:
        check_binary(binary_version, service)
    if app_image and not PINNED_REF.match(app_image):
        raise ValidationError(
            {"app_image": gettext_lazy("app_image must be digest-pinned (repo@sha256:…).")}
        )
    if Deployment.objects.filter(service=service, environment=environment).exists():
        raise Conflict(
            gettext("%(service)s is already deployed in %(environment)s; create a release there.")
            % {"service": service.name, "environment": environment.name},
            code="duplicate",
        )
    deployment = Deployment(
        service=service,
        environment=environment,
        mode=mode or service.default_mode,
        runtime_version=runtime_version,
        binary_version=binary_version,
        app_image=app_image,
        **spec,
    )
    deployment.full_clean(validate_constraints=False)
    with transaction.atomic():
        deployment.save()
        app_image_base_read_queue(deployment=deployment, actor=actor)
        audit_record(
            actor=actor,
            action="deployment.create",
            obj=deployment,
            after={
                "service": service.name,
                "environment": environment.name,
                "mode": deployment.mode,
                "runtime_version": runtime_version.digest,
                "binary_version": binary_version.version if binary_version else None,
            },
        )
    return deployment
