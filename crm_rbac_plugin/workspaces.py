"""Plain functions that create workspaces, roles and memberships.

The CLI, the demo seed and host code call these; they add to the session and
flush, and leave the commit to the caller so several steps form one
transaction.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import conditions
from .config import setting
from .defaults import expand_grants
from .errors import RBACError, ValidationError
from .loader import BYPASS
from .models import utcnow
from .registry import SCOPES

if TYPE_CHECKING:
    from .interface import RBACProtocol


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "workspace"


def seed_roles(rbac: RBACProtocol, workspace: Any) -> dict[str, Any]:
    """Create the built-in roles of ``RBAC_ROLE_TEMPLATES`` in ``workspace``."""
    roles = {}
    for tpl in setting("RBAC_ROLE_TEMPLATES"):
        role = rbac.models.Role(workspace=workspace, key=tpl["key"], name=tpl["name"],
                                description=tpl.get("description", ""), builtin=True,
                                is_owner=bool(tpl.get("is_owner")))
        for resource, action, scope, condition in expand_grants(rbac.registry, tpl):
            add_grant(rbac, role, resource, action, scope, condition=condition)
        rbac.db.session.add(role)
        roles[tpl["key"]] = role
    rbac.db.session.flush()
    return roles


def add_grant(rbac: RBACProtocol, role: Any, resource: str, action: str, scope: str = "all", *,
              effect: str = "allow", condition: Any = None) -> Any:
    """Add one validated grant to ``role`` (not flushed)."""
    res = rbac.registry.check_action(resource, action)
    if scope not in SCOPES:
        raise RBACError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}")
    if scope not in res.scopes:
        raise RBACError(f"{resource}.{action}: scope {scope!r} needs an owner column; "
                        f"{resource} has none: use 'all' or no grant")
    if effect not in ("allow", "deny"):
        raise RBACError(f"unknown effect {effect!r}; use allow or deny")
    clauses = conditions.validate(res.model, condition) if (res.model and condition) else ()
    if condition and res.model is None:
        raise RBACError(f"resource {resource!r} has no records, so no condition applies")
    grant = rbac.models.Grant(resource=resource, action=action, scope=scope, effect=effect,
                              condition=conditions.to_json(clauses) or None)
    role.grants.append(grant)
    return grant


def create_workspace(rbac: RBACProtocol, name: str, *, owner: Any = None, plan: str | None = None,
                     slug: str | None = None) -> Any:
    """Create a workspace with its built-in roles, and its first Owner."""
    ws = rbac.models.Workspace(name=name, slug=slug or slugify(name),
                               plan=plan or setting("RBAC_DEFAULT_PLAN"))
    rbac.db.session.add(ws)
    rbac.db.session.flush()
    seed_roles(rbac, ws)
    if owner is not None:
        add_member(rbac, ws, owner, ["owner"])
    return ws


def role_by_key(rbac: RBACProtocol, workspace: Any, key: str) -> Any:
    Role = rbac.models.Role
    role = rbac.db.session.scalar(
        sa.select(Role).where(Role.workspace_id == workspace.id,
                              sa.or_(Role.key == key, Role.name == key)),
        execution_options=BYPASS)
    if role is None:
        raise RBACError(f"workspace {workspace.slug!r} has no role {key!r}")
    return role


def add_member(rbac: RBACProtocol, workspace: Any, user: Any, roles: Iterable[Any] = ("member",), *,
               department: Any = None, status: str = "active") -> Any:
    """Make ``user`` a member of ``workspace`` holding ``roles`` (keys or Role objects)."""
    m = rbac.models.Membership(workspace=workspace, user=user, status=status,
                               department=department)
    rbac.db.session.add(m)
    for role in roles:
        assign_role(rbac, m, role)
    rbac.db.session.flush()
    return m


def assign_role(rbac: RBACProtocol, membership: Any, role: Any, *, starts_at: dt.datetime | None = None,
                expires_at: dt.datetime | None = None) -> Any:
    """Give ``membership`` a role, optionally only from/until a UTC instant (the Guest's
    default expiry applies when none is given, see :func:`.defaults.default_expiry`)."""
    if isinstance(role, str):
        role = role_by_key(rbac, membership.workspace, role)
    if role.workspace_id is not None and membership.workspace_id is not None \
            and role.workspace_id != membership.workspace_id:
        raise RBACError("a role can only be given to members of its own workspace")
    if expires_at is None:
        expires_at = default_expiry(role, starts_at)
    if starts_at and expires_at and expires_at <= starts_at:
        raise RBACError("the assignment must end after it starts")
    mr = rbac.models.MemberRole(membership=membership, role=role, starts_at=starts_at,
                                expires_at=expires_at)
    rbac.db.session.add(mr)
    return mr


def default_expiry(role: Any, starts_at: dt.datetime | None = None) -> dt.datetime | None:
    """When an assignment of ``role`` given without an expiry ends (None: it does not).

    ``RBAC_ROLE_DEFAULT_EXPIRY_DAYS`` names built-in roles by key (the Guest:
    30 days), counted from the start of the assignment or from now. A
    temporary or contractor's access so ends by itself unless someone
    chooses an explicit end.
    """
    days = (setting("RBAC_ROLE_DEFAULT_EXPIRY_DAYS") or {}).get(role.key) if role.builtin else None
    if days is None or role.is_owner:
        return None
    try:
        return (starts_at or utcnow()) + dt.timedelta(days=int(days))
    except OverflowError:  # a start within ``days`` of the last day a date can hold
        raise ValidationError(f"{role.name} ends {days} days after it starts, past the "
                              "last date that can be stored", field="starts_at") from None


def switchable(rbac: RBACProtocol, user: Any) -> list[Any]:
    """Return the workspaces where ``user`` is an active member, by name.

    These, and only these, are the workspaces the switcher offers and the
    switch route accepts; a deleted workspace is never among them. Single-tenant mode has one workspace and no
    switcher: the list is empty.
    """
    if user is None or setting("RBAC_SINGLE_TENANT"):
        return []
    M, W = rbac.models.Membership, rbac.models.Workspace
    return list(rbac.db.session.scalars(
        sa.select(W).join(M, M.workspace_id == W.id)
        .where(M.user_id == rbac.user_pk(user), M.status == "active", W.deleted_at.is_(None))
        .order_by(W.name, W.id),
        execution_options=BYPASS))
