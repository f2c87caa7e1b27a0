"""Record caps per role: "may create at most 500 clients".

A cap counts the records of the resource the member owns (its owner column
holds them) plus those the flush creates. Roles stack, so the most
permissive role decides (:func:`member_cap`). The check runs at flush for
every protected insert outside the system context, under a lock on the
member's membership row, so two creates of one member cannot both take the
last place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .. import role_conditions
from ..access_cache import has_uncommitted_policy
from ..audit.events import record
from ..errors import PermissionDenied, QuotaExceeded, ValidationError
from ..identity import client_ip
from ..inputs import MAX_ID
from ..loader import BYPASS
from ..models import utcnow
from ..policy import Access
from ..roles.escalation import is_privileged, require, same_workspace
from ..roles.grants import effective_specs
from ..roles.locks import lock_for_role_change

if TYPE_CHECKING:
    from ..interface import RBACProtocol


@dataclass(frozen=True)
class CapView:
    """One cap as the role page and the API show it."""

    resource: str
    max_records: int


def caps_of(role: Any) -> list[CapView]:
    """The role's caps, by resource."""
    return [CapView(q.resource, q.max_records) for q in role.quotas]


def set_cap(rbac: RBACProtocol, actor: Access | None, role: Any, resource: Any,
            max_records: Any) -> None:
    """Cap (or with ``max_records`` None, uncap) ``role``'s holders on ``resource``.

    Needs ``roles.manage``; the Owner and Admin roles take no cap (they keep
    full access), and only resources with an owner column can be counted.
    """
    actor = require(rbac, actor, "roles", "manage")
    same_workspace(actor, role)
    if is_privileged(role):
        raise PermissionDenied(f"The {role.name} role keeps full access and takes no cap.")
    if not isinstance(resource, str) or resource not in rbac.registry \
            or not rbac.registry.get(resource).is_model:
        raise ValidationError(f"unknown resource {resource!r}", field="resource")
    if rbac.registry.get(resource).owner_column is None:
        raise ValidationError(f"{resource} has no owner column, so its records cannot be "
                              "counted per member", field="resource")
    if max_records is not None and (isinstance(max_records, bool) or not isinstance(max_records, int)
                                    or not 0 <= max_records <= MAX_ID):
        raise ValidationError("the cap must be a whole number from 0 up", field="max_records")
    lock_for_role_change(rbac, role)
    before = {q.resource: q.max_records for q in role.quotas}
    existing = next((q for q in role.quotas if q.resource == resource), None)
    if max_records is None:
        if existing is not None:
            role.quotas.remove(existing)
    elif existing is not None:
        existing.max_records = max_records
    else:
        role.quotas.append(rbac.models.RoleQuota(resource=resource, max_records=max_records))
    rbac.db.session.flush()
    record(rbac, "role.cap_changed", workspace_id=role.workspace_id, resource=resource,
           target=role.name, before={"max_records": before.get(resource)},
           after={"max_records": max_records}, role=role.name, role_id=role.id,
           actor_ids=(actor.user_id, actor.membership_id))


def _held_in_force(rbac: RBACProtocol, session: Session, membership_id: int,
                   ) -> list[Any]:
    """The roles the member holds now, directly or through their department.

    As the loader reads them (:func:`..resolve._roles_in_force`): an
    assignment between its start and expiry, a department's role while the
    member belongs to it, each only while its role's and its own condition
    (weekdays and hours in the workspace's zone, the request's network)
    hold.
    """
    m, now = rbac.models, utcnow()
    with session.no_autoflush:
        member = session.get(m.Membership, membership_id, execution_options=BYPASS)
        if member is None:
            return []
        rows: list[tuple[Any, Any]] = [
            (mr.role, mr.access_condition) for mr in session.scalars(
                sa.select(m.MemberRole).where(m.MemberRole.membership_id == membership_id),
                execution_options=BYPASS) if mr.active_at(now)]
        if member.department_id is not None:
            rows += [(dr.role, dr.access_condition) for dr in session.scalars(
                sa.select(m.DepartmentRole).where(
                    m.DepartmentRole.department_id == member.department_id),
                execution_options=BYPASS)]
        workspace = session.get(m.Workspace, member.workspace_id, execution_options=BYPASS)
    tz = getattr(workspace, "timezone", None)
    address = client_ip()
    return [role for role, own in rows if not any(
        cond and role_conditions.refusal(cond, now, tz, address)
        for cond in (role_conditions.stored(role.access_condition), role_conditions.stored(own)))]


def member_cap(rbac: RBACProtocol, session: Session, membership_id: int, resource: str) -> int | None:
    """The most records of ``resource`` the member may own; None: no cap.

    Among the member's roles in force that allow ``create`` on the resource
    (their parents' grants included), whether assigned to them or given by
    their department: any without a cap leaves the member uncapped, else the
    highest cap applies. The Owner is never capped.
    """
    caps: list[int] = []
    for role in _held_in_force(rbac, session, membership_id):
        if role.is_owner:
            return None
        if not any(s.effect == "allow" and s.resource == resource and s.action in ("create", "*")
                   for s in effective_specs(role)):
            continue
        cap = next((q.max_records for q in role.quotas if q.resource == resource), None)
        if cap is None:
            return None
        caps.append(cap)
    return max(caps) if caps else None


def owned_count(rbac: RBACProtocol, session: Session, resource: str, workspace_id: int,
                user_id: Any) -> int:
    """Records of ``resource`` in the workspace that ``user_id`` owns (unfiltered)."""
    res = rbac.registry.get(resource)
    model = res.model
    stmt = sa.select(sa.func.count()).select_from(model).where(
        getattr(model, res.owner_column) == user_id)  # type: ignore[arg-type]
    if res.workspace_column:
        stmt = stmt.where(getattr(model, res.workspace_column) == workspace_id)
    with session.no_autoflush:
        return int(session.scalar(stmt, execution_options=BYPASS) or 0)


#: Where :func:`capped_resources` keeps its answer on the (per policy version) Access.
_CAPPED_KEY = ("__capped_resources__", "")


def capped_resources(rbac: RBACProtocol, session: Session, access: Access) -> frozenset[str]:
    """The resources some role of the member's workspace caps (most workspaces: none).

    Kept on the member's :class:`~..policy.Access`, which is valid for one
    ``policy_version`` of the workspace: a cap written through the session
    bumps that version (:func:`..guard.collect_policy_changes`), so every
    worker reads the caps again on its next request. A transaction that
    changed the workspace's policy reads them afresh and keeps nothing, so
    a cap set earlier in the same transaction binds its later creates.
    """
    fresh = has_uncommitted_policy(session, access.workspace_id)
    hit = None if fresh else access.sql_cache.get(_CAPPED_KEY)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    m = rbac.models
    with session.no_autoflush:
        capped = frozenset(session.scalars(
            sa.select(m.RoleQuota.resource).join(m.Role, m.Role.id == m.RoleQuota.role_id)
            .where(m.Role.workspace_id == access.workspace_id).distinct(),
            execution_options=BYPASS))
    if not fresh:
        access.sql_cache[_CAPPED_KEY] = capped
    return capped


def lock_membership_row(rbac: RBACProtocol, session: Session, membership_id: int) -> None:
    """Write the member's row (no change) so their concurrent creates count one at a time."""
    M = rbac.models.Membership.__table__
    session.connection().execute(sa.update(M).where(M.c.id == membership_id)
                                 .values(status=M.c.status))


def new_owned_records(rbac: RBACProtocol, session: Session) -> dict[str, int]:
    """How many records of each resource with an owner column the flush creates."""
    new: dict[str, int] = {}
    for obj in session.new:
        res = rbac.registry.for_model(type(obj))
        if res is not None and res.owner_column is not None:
            new[res.name] = new.get(res.name, 0) + 1
    return new


def batch_refusal(rbac: RBACProtocol, session: Session, access: Access, resource: str,
                  adding: int) -> QuotaExceeded | None:
    """The refusal of creating ``adding`` records of ``resource`` at once, if a cap of
    the member's roles forbids it; None when it fits.

    Asked before the first of them is written (an import's preview and its
    commit), so the figures are those the member knows: what they own now and
    what the batch adds. The flush guard still checks each flush
    (:func:`check_caps`); this only makes the answer come first and right.
    """
    res = rbac.registry.get(resource)
    if access.is_owner or adding <= 0 or res.owner_column is None:
        return None
    cap = member_cap(rbac, session, access.membership_id, resource)
    if cap is None:
        return None
    used = owned_count(rbac, session, resource, access.workspace_id, access.user_id)
    if used + adding <= cap:
        return None
    return QuotaExceeded(
        f"Your role allows at most {cap:,} {resource} record(s) per member; you own "
        f"{used:,} and this adds {adding:,}: import at most {max(cap - used, 0):,}, hand "
        "some over or ask for a higher cap.",
        limit=f"{resource}.max_records", allowed=cap, used=used)


def check_caps(rbac: RBACProtocol, session: Session, access: Access, new: dict[str, int]) -> None:
    """Refuse (409) a flush whose ``new`` records take the member past a cap of their roles."""
    if access.is_owner or not new:
        return
    capped = capped_resources(rbac, session, access)
    for resource in sorted(capped & new.keys()):
        cap = member_cap(rbac, session, access.membership_id, resource)
        if cap is None:
            continue
        lock_membership_row(rbac, session, access.membership_id)
        used = owned_count(rbac, session, resource, access.workspace_id, access.user_id)
        if used + new[resource] > cap:
            raise QuotaExceeded(
                f"Your role allows at most {cap} {resource} record(s) per member and you "
                f"own {used}: hand some over or ask for a higher cap.",
                limit=f"{resource}.max_records", allowed=cap, used=used)
