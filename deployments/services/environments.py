"""Writes of environments: create one, and mint the fetch token its nodes download with."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, pgettext
from rest_framework.exceptions import PermissionDenied

from portal.actors import Actor
from portal.api.errors import Conflict
from portal.audit import audit_record
from portal.auth import token_create, token_revoke
from portal.choices import Role, Scope, TokenKind, role_in_sentence
from portal.models import ApiToken, Membership, Team

from ..choices import DeliveryStrategy
from ..manifests import FETCH_TOKEN_KEY, FETCH_TOKEN_SECRET
from ..models import Environment
from ._common import refuse_reserved


def environment_create(
    *,
    actor: Actor,
    name: str,
    namespace: str,
    k8s_version: str,
    delivery_strategy: str = DeliveryStrategy.HOSTPATH,
    hostpath_root: str = "/data/bin",
    fetch_token_secret: str = FETCH_TOKEN_SECRET,
    description: str = "",
) -> Environment:
    """Add an environment (platform admins: environments are shared by every team).

    A token counts as a platform admin only when its creator is one now (see `Actor`).

    Raises:
        PermissionDenied: the actor is not a platform admin (403).
    """
    if not actor.is_platform_admin:
        raise PermissionDenied(
            gettext("Only platform admins may create environments; your role is %(role)s.")
            % {
                "role": role_in_sentence(actor.highest_role)
                if actor.highest_role
                else pgettext("no role", "none")
            }
        )
    refuse_reserved(name, "environments")
    if Environment.objects.filter(name=name).exists():
        raise Conflict(
            gettext("An environment named %(name)r already exists.") % {"name": name},
            code="duplicate",
        )
    environment = Environment(
        name=name,
        namespace=namespace,
        k8s_version=k8s_version,
        delivery_strategy=delivery_strategy,
        hostpath_root=hostpath_root or "/data/bin",
        fetch_token_secret=fetch_token_secret or FETCH_TOKEN_SECRET,
        description=description,
    )
    environment.full_clean()
    with transaction.atomic():
        environment.save()
        audit_record(
            actor=actor,
            action="environment.create",
            obj=environment,
            after={
                "name": name,
                "namespace": namespace,
                "k8s_version": k8s_version,
                "delivery_strategy": delivery_strategy,
                "hostpath_root": environment.hostpath_root,
                "fetch_token_secret": environment.fetch_token_secret,
            },
        )
    return environment


# A fetch token is a platform-team token of kind `fetch` (binaries:read, the download only),
# named fetch-<environment>-<UTC stamp>. The stamp's fixed shape keeps prod's tokens apart from
# prod-eu's.
_FETCH_STAMP_FORMAT = "%Y%m%d-%H%M%S-%f"
_FETCH_STAMP_PATTERN = r"[0-9]{8}-[0-9]{6}-[0-9]{6}"


def _fetch_token_name(environment: Environment, when: datetime) -> str:
    return f"fetch-{environment.name}-{when.strftime(_FETCH_STAMP_FORMAT)}"


def _live_fetch_tokens(environment: Environment) -> QuerySet[ApiToken]:
    """The environment's fetch tokens that are not revoked (see `_fetch_token_name`)."""
    return ApiToken.objects.filter(
        kind=TokenKind.FETCH,
        team__is_platform=True,
        name__regex=rf"^fetch-{re.escape(environment.name)}-{_FETCH_STAMP_PATTERN}$",
        scopes=[Scope.BINARIES_READ],
        revoked_at__isnull=True,
    )


@dataclass(frozen=True)
class FetchToken:
    """A new download token for an environment's nodes; `secret` is shown once, never stored.

    `revoked` holds the environment's previous fetch tokens, revoked by this rotation.
    """

    token: ApiToken
    secret: str
    secret_name: str
    namespace: str
    revoked: tuple[ApiToken, ...] = ()

    @property
    def kubectl_command(self) -> str:
        """The command that puts the token into the environment's namespace."""
        return (
            f"kubectl create secret generic {self.secret_name} "
            f"--from-literal={FETCH_TOKEN_KEY}={self.secret} -n {self.namespace}"
        )

    @property
    def revoked_notice(self) -> str:
        """What the rotation revoked and what to do now; empty for the first token."""
        if not self.revoked:
            return ""
        names = ", ".join(f"{t.team.name}/{t.name} (prefix bip_{t.prefix}_…)" for t in self.revoked)
        which = "token" if len(self.revoked) == 1 else "tokens"
        was = "was" if len(self.revoked) == 1 else "were"
        return (
            f"The previous {which} {names} {was} revoked; update the Secret "
            f"{self.secret_name} in namespace {self.namespace} now: nodes still using the "
            f"old {which} get 401."
        )


def _platform_team_of(actor: Actor) -> Team:
    """The platform team a new fetch token belongs to: the actor's, else the first one."""
    if actor.token is not None:
        return actor.token.team
    if actor.user is not None:
        # The same query as `actor.user.memberships`, typed (Actor.user is Any).
        for membership in Membership.objects.filter(user=actor.user).select_related("team"):
            if membership.team.is_platform and membership.role == Role.PLATFORM_ADMIN:
                return membership.team
    team = Team.objects.filter(is_platform=True).order_by("pk").first()
    if team is None:
        raise ValidationError(gettext_lazy("No platform team exists to own the fetch token."))
    return team


def environment_fetch_token_create(*, environment: Environment, actor: Actor) -> FetchToken:
    """Create the token an environment's nodes download binaries with (platform admins).

    The token belongs to the platform team and has only `binaries:read`; its secret is
    returned once with the `kubectl create secret` command that stores it as the
    environment's fetch-token Secret. Calling again rotates: the new token is created and
    the environment's previous fetch tokens are revoked (each audited as `token.revoke`)
    in the same transaction, so the Secret in the cluster must be replaced at once.
    Rotations of one environment are serialised on its row.

    Raises:
        PermissionDenied: the actor is not a platform admin.
    """
    if not actor.is_platform_admin:
        raise PermissionDenied(
            gettext(
                "Only platform admins may create an environment's fetch token; your role is "
                "%(role)s."
            )
            % {
                "role": role_in_sentence(actor.highest_role)
                if actor.highest_role
                else pgettext("no role", "none")
            }
        )
    team = _platform_team_of(actor)
    with transaction.atomic():
        Environment.objects.select_for_update().filter(pk=environment.pk).get()
        previous = list(_live_fetch_tokens(environment).select_for_update(of=("self",)))
        token, secret = token_create(
            team=team,
            name=_fetch_token_name(environment, timezone.now()),
            scopes=[Scope.BINARIES_READ],
            actor=actor,
            kind=TokenKind.FETCH,
        )
        revoked = tuple(token_revoke(token=old, actor=actor) for old in previous)
        audit_record(
            actor=actor,
            action="environment.fetch_token_create",
            obj=environment,
            after={
                "token": f"{team.name}/{token.name}",
                "scopes": token.scopes,
                "secret_name": environment.fetch_token_secret,
                "namespace": environment.namespace,
                "revoked": [f"{old.team.name}/{old.name}" for old in revoked],
            },
        )
    return FetchToken(
        token=token,
        secret=secret,
        secret_name=environment.fetch_token_secret,
        namespace=environment.namespace,
        revoked=revoked,
    )
