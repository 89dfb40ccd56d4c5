"""API tokens (create, revoke, authenticate) and the scope/role permission of every API view."""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connections, transaction
from django.db.models import Model
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_lazy, pgettext
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission

from .actors import Actor
from .audit import audit_record
from .choices import SCOPE_MIN_ROLE, Role, Scope, TokenKind, role_at_least, role_in_sentence
from .models import ApiToken, Membership, Team

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
    kind: str = TokenKind.API,
) -> tuple[ApiToken, str]:
    """Create a token for `team`; return it with its secret (shown once, stored only hashed).

    The token's creator is the person behind `actor` (a user, or a token's creator), and the
    token never acts above that person's current role in `team`. Nobody mints scopes above
    their own role in `team`, platform admins included: a platform admin is not a member of
    a service team, so a token of theirs for it would act for nobody. A system actor's token
    has no person behind it and acts for nobody (kept for the tests' look-alike rows; the
    `create_token` command always names a user).

    Raises:
        ValidationError: unknown or empty scopes, a scope beyond the actor's role in the team,
            a fetch token that is not a platform team's `binaries:read`, a duplicate name, or
            a non-positive expiry.
    """
    unknown = sorted(set(scopes) - set(Scope.values))
    if not scopes:
        raise ValidationError({"scopes": gettext_lazy("Give at least one scope.")})
    if unknown:
        raise ValidationError(
            {
                "scopes": gettext("Unknown scope(s): %(unknown)s. Known: %(values)s.")
                % {"unknown": ", ".join(unknown), "values": ", ".join(Scope.values)}
            }
        )
    if Scope.IMAGES_REVIEW in scopes and not team.is_platform:
        raise ValidationError(
            {
                "scopes": gettext(
                    "images:review is for platform teams only; this team is a service team."
                )
            }
        )
    if kind == TokenKind.FETCH and (
        sorted(set(scopes)) != [Scope.BINARIES_READ] or not team.is_platform
    ):
        raise ValidationError(
            {"scopes": gettext("A fetch token is a platform team's token with binaries:read only.")}
        )
    # A fetch token's authority is the minting platform admin's (checked by the environment
    # service) and its use is the download alone, whoever minted it.
    if not actor.is_system and not (kind == TokenKind.FETCH and actor.is_platform_admin):
        role = actor.role_in(team)
        if role is None:
            raise ValidationError(
                {
                    "team": gettext(
                        "You are not a member of team %(team)s; a member of it must create its "
                        "tokens."
                    )
                    % {"team": team.name}
                }
            )
        too_high = [s for s in scopes if not role_at_least(role, SCOPE_MIN_ROLE[s])]
        if too_high:
            raise ValidationError(
                {
                    "scopes": gettext(
                        "Your role in %(team)s (%(role)s) does not allow: %(too_high)s."
                    )
                    % {"team": team.name, "role": role, "too_high": ", ".join(too_high)}
                }
            )
    if expires_days is not None and expires_days <= 0:
        raise ValidationError(
            {"expires_days": gettext_lazy("The expiry must be a positive number of days.")}
        )
    if ApiToken.objects.filter(team=team, name=name).exists():
        raise ValidationError(
            {
                "name": gettext("Team %(team_name)s already has a token named %(name)r.")
                % {"team_name": team.name, "name": name}
            }
        )

    prefix = secrets.token_hex(6)
    secret = f"{TOKEN_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(
        team=team,
        name=name,
        scopes=sorted(set(scopes)),
        prefix=prefix,
        secret_hash=_hash_secret(secret),
        kind=kind,
        created_by=actor.person,
        expires_at=timezone.now() + timedelta(days=expires_days) if expires_days else None,
    )
    token.full_clean()
    with transaction.atomic():
        token.save()
        audit_record(
            actor=actor,
            action="token.create",
            obj=token,
            after={"team": team.name, "name": name, "scopes": token.scopes, "kind": kind},
        )
    return token, secret


def token_may_revoke(*, token: ApiToken, actor: Actor) -> bool:
    """Its creator, a maintainer (or above) of its team, or a platform admin; a fetch token
    (the nodes' download credential) only a platform admin."""
    if actor.is_system or actor.is_platform_admin:
        return True
    if token.kind == TokenKind.FETCH:
        return False
    person = actor.person
    if person is not None and token.created_by_id is not None and token.created_by_id == person.pk:
        return True
    role = actor.role_in(token.team)
    return role is not None and role_at_least(role, Role.MAINTAINER)


def token_revoke(*, token: ApiToken, actor: Actor) -> ApiToken:
    """Revoke a token; revoking twice is refused so the audit log stays truthful.

    Raises:
        PermissionDenied: the actor may not revoke it (see `token_may_revoke`; 403).
        ValidationError: the token is already revoked.
    """
    if not token_may_revoke(token=token, actor=actor):
        needed = (
            "a platform admin"
            if token.kind == TokenKind.FETCH
            else f"its creator, a maintainer of team {token.team.name} or a platform admin"
        )
        raise PermissionDenied(
            gettext("Only %(needed)s may revoke token %(team_name)s/%(token_name)s.")
            % {"needed": needed, "team_name": token.team.name, "token_name": token.name}
        )
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        if not updated:
            raise ValidationError(gettext_lazy("This token is already revoked."))
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
        raise exceptions.AuthenticationFailed(
            gettext_lazy("Malformed token: expected bip_<prefix>_<secret>.")
        )
    token = _token_by_prefix(parts[1])
    if token is None or not hmac.compare_digest(token.secret_hash, _hash_secret(secret)):
        raise exceptions.AuthenticationFailed(gettext_lazy("Invalid token."))
    now = timezone.now()
    if token.revoked_at is not None:
        raise exceptions.AuthenticationFailed(gettext_lazy("This token was revoked."))
    if token.expires_at is not None and token.expires_at <= now:
        raise exceptions.AuthenticationFailed(gettext_lazy("This token has expired."))
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


_Converter = Callable[[Any, Any, Any], Any]
_Loaded = tuple[type[Model], list[str], list[tuple[Any, list[_Converter]]]]


@functools.cache
def _token_select(using: str) -> tuple[str, list[_Loaded]]:
    """The SQL of the token look-up and, per model its columns fill in order, the attnames
    and each column's converters (built once per database).

    The token, its team, its creator (a left join) and the creator's current role in the
    token's team, in one query: `Actor` caps the token by that role on every request, so a
    demotion or a removal acts at once. The ORM's equivalent
    (`select_related("team", "created_by").annotate(creator_role=Subquery(…))`) spent more
    CPU building and compiling itself than the query takes to run, on every API request.
    """
    connection = connections[using]
    qn = connection.ops.quote_name
    user_model = ApiToken._meta.get_field("created_by").related_model
    assert isinstance(user_model, type)  # noqa: S101 - a concrete model, never a string here

    def col(alias: str, model: type[Model], name: str) -> str:
        return f"{alias}.{qn(str(getattr(model._meta.get_field(name), 'column', name)))}"

    loaded: list[_Loaded] = []
    columns: list[str] = []
    for alias, model in (("t", ApiToken), ("tm", Team), ("u", user_model)):
        fields = list(model._meta.concrete_fields)
        columns += [f"{alias}.{qn(str(field.column))}" for field in fields]
        converters = []
        for field in fields:
            column = field.get_col(alias)
            converters.append(
                (
                    column,
                    connection.ops.get_db_converters(column) + field.get_db_converters(connection),
                )
            )
        loaded.append((model, [field.attname for field in fields], converters))
    user_pk = user_model._meta.pk
    assert user_pk is not None  # noqa: S101 - every concrete model has one
    # Every name is a model's own table or column, quoted; the prefix is the one parameter.
    sql = (
        f"SELECT {', '.join(columns)}, "  # noqa: S608
        f"(SELECT {col('m', Membership, 'role')} FROM {qn(Membership._meta.db_table)} m"
        f" WHERE {col('m', Membership, 'user')} = {col('t', ApiToken, 'created_by')}"
        f" AND {col('m', Membership, 'team')} = {col('t', ApiToken, 'team')} LIMIT 1)"
        f" FROM {qn(ApiToken._meta.db_table)} t"
        f" INNER JOIN {qn(Team._meta.db_table)} tm"
        f" ON {col('tm', Team, 'id')} = {col('t', ApiToken, 'team')}"
        f" LEFT OUTER JOIN {qn(user_model._meta.db_table)} u"
        f" ON u.{qn(str(user_pk.column))} = {col('t', ApiToken, 'created_by')}"
        f" WHERE {col('t', ApiToken, 'prefix')} = %s LIMIT 1"
    )
    return sql, loaded


def _token_by_prefix(prefix: str) -> ApiToken | None:
    """The token with `prefix`, its team and creator loaded (as `select_related` would) and
    its creator's role in its team as `creator_role`; None when no token has it."""
    using = ApiToken.objects.db
    connection = connections[using]
    sql, loaded = _token_select(using)
    with connection.cursor() as cursor:
        cursor.execute(sql, [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    objects: list[Model | None] = []
    start = 0
    for model, attnames, converters in loaded:
        values = list(row[start : start + len(attnames)])
        start += len(attnames)
        for index, (column, funcs) in enumerate(converters):
            for convert in funcs:
                values[index] = convert(values[index], column, connection)
        pk = values[attnames.index(getattr(model._meta.pk, "attname", "id"))]
        objects.append(None if pk is None else model.from_db(using, attnames, values))
    token, team, creator = objects
    assert isinstance(token, ApiToken)  # noqa: S101 - the inner join's first model
    ApiToken._meta.get_field("team").set_cached_value(token, team)
    ApiToken._meta.get_field("created_by").set_cached_value(token, creator)
    token.creator_role = row[start]  # type: ignore[attr-defined]
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
                gettext("Malformed Authorization header: expected 'Bearer <token>'.")
            )
        try:
            secret = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed(
                gettext_lazy("The token contains non-ASCII bytes.")
            ) from exc
        token = token_authenticate(secret)
        if token.kind == TokenKind.FETCH and not _accepts_fetch_tokens(request):
            # 403, not 401: the credential is genuine (a node's Secret is fine), it is only
            # not valid for this endpoint; a 401 would send operators to rotate the Secret.
            raise exceptions.PermissionDenied(
                gettext(
                    "Token %(team)s/%(token)s is a fetch token: it downloads binaries (GET "
                    "/api/v1/binaries/<id>/download/) and nothing else."
                )
                % {"team": token.team.name, "token": token.name}
            )
        return TokenUser(token), token

    def authenticate_header(self, request: Any) -> str:
        return 'Bearer realm="api"'


def _accepts_fetch_tokens(request: Any) -> bool:
    """Whether the view serving `request` lists its action in `fetch_token_actions`."""
    view = (getattr(request, "parser_context", None) or {}).get("view")
    return getattr(view, "action", None) in getattr(view, "fetch_token_actions", ())


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

    message: str | Promise = gettext_lazy("You do not have permission to perform this action.")

    def has_permission(self, request: Any, view: Any) -> bool:
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated(
                gettext("Authentication required: send 'Authorization: Bearer <token>' or log in.")
            )
        scope = required_scope(request, view)
        actor = Actor.from_request(request)
        if actor.token is not None and actor.token_refusal:
            self.message = actor.token_refusal
            return False
        if scope is None:
            return True
        if actor.token is not None:
            if not actor.token.has_scope(scope):
                self.message = gettext("This token lacks the '%(scope)s' scope.") % {"scope": scope}
                return False
            token_role = actor.highest_role or "none"
            if not role_at_least(token_role, SCOPE_MIN_ROLE[scope]):
                creator = actor.person.get_username() if actor.person is not None else "nobody"
                self.message = gettext(
                    "This token acts for %(creator)s, now a %(role)s of team %(team)s; scope "
                    "'%(scope)s' needs the %(needed)s role."
                ) % {
                    "creator": creator,
                    "role": role_in_sentence(token_role)
                    if actor.highest_role
                    else pgettext("no role", "none"),
                    "team": actor.token.team.name,
                    "scope": scope,
                    "needed": role_in_sentence(SCOPE_MIN_ROLE[scope]),
                }
                return False
            return True
        role = actor.highest_role
        if role is None or not role_at_least(role, SCOPE_MIN_ROLE[scope]):
            self.message = gettext(
                "This needs the %(needed)s role (scope '%(scope)s'); your role is %(role)s."
            ) % {
                "needed": role_in_sentence(SCOPE_MIN_ROLE[scope]),
                "scope": scope,
                "role": role_in_sentence(role) if role else pgettext("no role", "none"),
            }
            return False
        return True


def required_scope(request: Any, view: Any) -> str | None:
    """The scope the view needs for this request (by action, then method, then '*')."""
    scopes = getattr(view, "required_scopes", None)
    if scopes is None:
        raise exceptions.PermissionDenied(
            gettext_lazy("This endpoint declares no scope; refusing by default.")
        )
    action = getattr(view, "action", None)
    for key in (action, request.method, "*"):
        if key is not None and key in scopes:
            scope: str | None = scopes[key]
            return scope
    raise exceptions.PermissionDenied(
        gettext_lazy("This endpoint declares no scope for this operation.")
    )
