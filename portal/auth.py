"""API tokens (create, revoke, authenticate) and the scope/role permission of every API view."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from .actors import Actor
from .audit import audit_record
from .choices import SCOPE_MIN_ROLE, Scope, role_at_least
from .models import ApiToken

TOKEN_PREFIX = "bip_"  # noqa: S105 - a public prefix, not a secret
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def token_create(
    *,
    team: Any,
    name: str,
    scopes: list[str],
    actor: Actor,
    expires_days: int | None = None,
) -> tuple[ApiToken, str]:
    """Create a token for `team`; return it with its secret (shown once, stored only hashed).

    Raises:
        ValidationError: unknown or empty scopes, a scope beyond the team's role, a duplicate
            name, or a non-positive expiry.
    """
    unknown = sorted(set(scopes) - set(Scope.values))
    if not scopes:
        raise ValidationError({"scopes": "Give at least one scope."})
    if unknown:
        raise ValidationError(
            {"scopes": f"Unknown scope(s): {', '.join(unknown)}. Known: {', '.join(Scope.values)}."}
        )
    if Scope.IMAGES_REVIEW in scopes and not team.is_platform:
        raise ValidationError(
            {"scopes": "images:review is for platform teams only; this team is a service team."}
        )
    if not actor.is_system:
        role = actor.role_in(team)
        too_high = [s for s in scopes if role is None or not role_at_least(role, SCOPE_MIN_ROLE[s])]
        if too_high and not actor.is_platform_admin:
            raise ValidationError(
                {"scopes": f"Your role in {team.name} does not allow: {', '.join(too_high)}."}
            )
    if expires_days is not None and expires_days <= 0:
        raise ValidationError({"expires_days": "The expiry must be a positive number of days."})
    if ApiToken.objects.filter(team=team, name=name).exists():
        raise ValidationError({"name": f"Team {team.name} already has a token named {name!r}."})

    prefix = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        team=team,
        name=name,
        scopes=sorted(set(scopes)),
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        created_by=actor.user,
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    token.full_clean()
    with transaction.atomic():
        token.save()
        audit_record(
            actor=actor,
            action="token.create",
            obj=token,
            after={"team": team.name, "name": name, "scopes": token.scopes},
        )
    return token, secret


def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    """Revoke a token; revoking twice is refused so the audit log stays truthful."""
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not updated:
            raise ValidationError("This token is already revoked.")
        token.refresh_from_db()
        audit_record(
            actor=actor,
            action="token.revoke",
            obj=token,
            before={"revoked": False},
            after={"revoked": True},
        )
    return token


def token_authenticate(secret: str) -> ApiToken:
    """Find the live token for `secret` or raise AuthenticationFailed with the reason."""
    parts = secret.split("_")
    if not secret.startswith(TOKEN_PREFIX) or len(parts) < 3:
        raise exceptions.AuthenticationFailed("Malformed token: expected bip_<prefix>_<secret>.")
    token = ApiToken.objects.select_related("team").filter(prefix=parts[1]).first()
    if token is None or not hmac.compare_digest(token.secret_hash, _hash_secret(secret)):
        raise exceptions.AuthenticationFailed("Invalid token.")
    now = timezone.now()
    if token.revoked_at is not None:
        raise exceptions.AuthenticationFailed("This token was revoked.")
    if token.expires_at is not None and token.expires_at <= now:
        raise exceptions.AuthenticationFailed("This token has expired.")
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer bip_…` → (token's creator or anonymous user, ApiToken)."""

    keyword = b"bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword:
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: expected 'Bearer <token>'."
            )
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The token contains non-ASCII bytes.") from exc
        token = token_authenticate(secret)
        return TokenUser(token), token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


class TokenUser:
    """The `request.user` of a token request: authenticated, but not a Django user."""

    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False
    pk = None
    id = None

    def __init__(self, token: ApiToken) -> None:
        self.token = token
        self.username = f"token:{token.team.name}/{token.name}"

    def get_username(self) -> str:
        return self.username

    def __str__(self) -> str:
        return self.username


class ScopedPermission(BasePermission):
    """Require the view's scope for the request: tokens must carry it, users need the role.

    A view sets `required_scopes`: a dict from an action or HTTP method to a scope, with an
    optional `"*"` default; a value of None means any authenticated caller.
    """

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Any, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Authentication required: send 'Authorization: Bearer <token>' or log in."
            )
        scope = required_scope(request, view)
        if scope is None:
            return True
        actor = Actor.from_request(request)
        if actor.token is not None:
            if not actor.token.has_scope(scope):
                self.message = f"This token lacks the '{scope}' scope."
                return False
            return True
        role = actor.highest_role
        if role is None or not role_at_least(role, SCOPE_MIN_ROLE[scope]):
            self.message = (
                f"This needs the {SCOPE_MIN_ROLE[scope]} role (scope '{scope}'); "
                f"your role is {role or 'none'}."
            )
            return False
        return True


def required_scope(request: Any, view: Any) -> str | None:
    """The scope the view needs for this request (by action, then method, then '*')."""
    scopes = getattr(view, "required_scopes", None)
    if scopes is None:
        raise exceptions.PermissionDenied("This endpoint declares no scope; refusing by default.")
    action = getattr(view, "action", None)
    for key in (action, request.method, "*"):
        if key is not None and key in scopes:
            scope: str | None = scopes[key]
            return scope
    raise exceptions.PermissionDenied("This endpoint declares no scope for this operation.")
