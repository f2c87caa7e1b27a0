"""The plugin's own events, found where they are written: a ``before_flush`` listener.

Whatever wrote the row (a settings page, the JSON API, the CLI, Flask-Admin,
host code), the flush that writes it adds the notifications to the same
flush, so they commit or roll back with it:

- a ``MemberRole`` inserted or deleted: *role assigned* / *role removed*, to
  the member concerned (even when they acted themselves: it concerns them);
  not for a pending member (the invitation mail tells them), a membership
  created in the same transaction (its first roles come with it) nor one
  deleted in the same flush;
- a ``Membership`` whose status goes ``active`` -> ``inactive`` or back:
  *deactivated* / *reactivated*, to the member;
- a ``SharingAgreement`` inserted (*offered*, to the receiving side), its
  status changed (*accepted*, *declined*, *left* to the granting side;
  *revoked* to the receiving side), or its terms or permissions changed
  (*changed*, *widened* when a permission was added, to the receiving side).
  A side's recipients are its active Owners and the members holding
  ``settings.manage`` (who act on agreements), minus the acting user.

One agreement event is told once per transaction, however many flushes it
takes (``session.info``, cleared at commit and rollback).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..audit.events import actor
from ..loader import BYPASS
from ..models import utcnow
from ..policy_rows import holds_role_now
from .queue import enqueue, path_for, write_now

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: ``session.info`` key of the agreement events told in the open transaction.
TOLD_KEY = "rbac_notify_told"
#: ``session.info`` key of the memberships created in the open transaction.
JOINED_KEY = "rbac_notify_joined"
#: Agreement status -> (event, side told).
STATUS_EVENTS = {"pending": ("offered", "receiving"),  # offered again (widened)
                 "active": ("accepted", "granting"), "declined": ("declined", "granting"),
                 "left": ("left", "granting"), "revoked": ("revoked", "receiving")}
#: Agreement columns whose change is not a change of its terms.
NOT_TERMS = frozenset({"status", "decided_at", "created_at", "created_by_id"})


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Listen on the app's session (after the write guard, which may refuse the flush)."""
    event.listen(db_session, "before_flush", lambda s, c, i: collect(rbac, s))
    event.listen(db_session, "after_commit", _forget)
    event.listen(db_session, "after_rollback", _forget)


def _forget(session: Session) -> None:
    session.info.pop(TOLD_KEY, None)
    session.info.pop(JOINED_KEY, None)


def collect(rbac: RBACProtocol, session: Session) -> None:
    """Queue the notifications of the roles, memberships and agreements this flush writes."""
    m = rbac.models
    watched = (m.MemberRole, m.DepartmentRole, m.Membership, m.SharingAgreement,
               m.SharingPermission)
    # Each of the three is a new set at every read: read once. What follows adds
    # notifications only, which none of the reads below looks for.
    new, dirty, deleted = session.new, session.dirty, session.deleted
    if not any(isinstance(o, watched) for o in (*new, *dirty, *deleted)):
        return
    joined = session.info.setdefault(JOINED_KEY, set())
    joined.update(id(o) for o in new if isinstance(o, m.Membership))
    with session.no_autoflush:
        for obj in new:
            if isinstance(obj, m.MemberRole):
                _role_event(rbac, session, obj, "assigned", deleted)
            elif isinstance(obj, m.DepartmentRole):
                _department_role_event(rbac, session, obj, "assigned")
            elif isinstance(obj, m.SharingAgreement):
                _agreement_event(rbac, session, obj, "offered", "receiving")
        for obj in deleted:
            if isinstance(obj, m.MemberRole):
                _role_event(rbac, session, obj, "removed", deleted)
            elif isinstance(obj, m.DepartmentRole):
                _department_role_event(rbac, session, obj, "removed")
        _permission_changes(rbac, session, new, dirty, deleted)  # before the terms: "widened" says more
        for obj in dirty:
            if isinstance(obj, m.Membership):
                _status_event(rbac, session, obj)
            elif isinstance(obj, m.SharingAgreement):
                _agreement_change(rbac, session, obj)


def _history(obj: Any, key: str) -> tuple[Any, Any] | None:
    """``(old, new)`` of a changed column, else None."""
    hist = sa.inspect(obj).attrs[key].history
    if not hist.added or not hist.deleted or hist.added[0] == hist.deleted[0]:
        return None
    return hist.deleted[0], hist.added[0]


def _workspace_name(session: Session, models: Any, workspace_id: int | None) -> str:
    ws = session.get(models.Workspace, workspace_id, execution_options=BYPASS) if workspace_id else None
    return ws.name if ws is not None else "your workspace"


def _role_event(rbac: RBACProtocol, session: Session, mr: Any, verb: str,
                deleted: Collection[Any]) -> None:
    m = rbac.models
    membership = mr.membership
    if membership is None and mr.membership_id is not None:
        membership = session.get(m.Membership, mr.membership_id, execution_options=BYPASS)
    if (membership is None or id(membership) in session.info.get(JOINED_KEY, ())
            or membership in deleted or membership.status == "pending"):
        return  # joining (the roles come with the membership) or leaving
    role = mr.role or session.get(m.Role, mr.role_id, execution_options=BYPASS)
    name = role.name if role is not None else "a role"
    if verb == "assigned":
        until = f" until {mr.expires_at:%Y-%m-%d %H:%M} UTC" if mr.expires_at else ""
        summary = (f"You were given the role {name} in ", f"{until}.")
    else:
        summary = (f"Your role {name} in ", " was removed.")
    write_now(session, m, workspace_id=membership.workspace_id, recipients=[membership.id],
              category="roles", event_name=f"role.{verb}", summary=summary,
              link=path_for("rbac_settings.profile"))


def _department_role_event(rbac: RBACProtocol, session: Session, row: Any, verb: str) -> None:
    """Tell the active members of a department the role it gives them, or takes away."""
    m = rbac.models
    dept_id = row.department_id if row.department_id is not None else getattr(
        row.department, "id", None)
    role = row.role or session.get(m.Role, row.role_id, execution_options=BYPASS)
    if dept_id is None or role is None:
        return
    dept = session.get(m.Department, dept_id, execution_options=BYPASS)
    members = list(session.scalars(sa.select(m.Membership.id).where(
        m.Membership.department_id == dept_id, m.Membership.status == "active"),
        execution_options=BYPASS))
    if not members:
        return
    through = f" through the department {dept.name}" if dept is not None else ""
    summary = ((f"You were given the role {role.name}{through} in ", ".") if verb == "assigned"
               else (f"Your role {role.name}{through} in ", " was removed."))
    write_now(session, m, workspace_id=role.workspace_id, recipients=members,
              category="roles", event_name=f"role.{verb}", summary=summary,
              link=path_for("rbac_settings.profile"))


def _status_event(rbac: RBACProtocol, session: Session, membership: Any) -> None:
    change = _history(membership, "status")
    if change not in (("active", "inactive"), ("inactive", "active")):
        return
    verb = "deactivated" if change == ("active", "inactive") else "reactivated"
    write_now(session, rbac.models, workspace_id=membership.workspace_id,
              recipients=[membership.id], category="membership",
              event_name=f"membership.{verb}",
              summary=("Your membership of ", f" was {verb}."),
              link=path_for("rbac_settings.profile"))


def _sides(agreement: Any) -> dict[str, int | None]:
    def side(name: str) -> int | None:
        ws_id = getattr(agreement, f"{name}_workspace_id")
        ws = getattr(agreement, f"{name}_workspace")
        return ws_id if ws_id is not None else (ws.id if ws is not None else None)
    return {"granting": side("granting"), "receiving": side("receiving")}


def agreement_recipients(rbac: RBACProtocol, session: Session, workspace_id: int) -> list[int]:
    """Active Owners of ``workspace_id`` and its members holding ``settings.manage`` (their
    own role in force, or their department's), minus the acting user (one query)."""
    m = rbac.models
    M, R, G = m.Membership, m.Role, m.Grant
    manage = sa.exists().where(G.role_id == R.id, G.resource.in_(("settings", "*")),
                               G.action.in_(("manage", "*")), G.effect == "allow")
    query = (sa.select(M.id, M.user_id)
             .where(M.workspace_id == workspace_id, M.status == "active",
                    holds_role_now(m, sa.or_(R.is_owner.is_(True), manage), utcnow())))
    acting_user = actor(rbac)[0]
    return sorted(mid for mid, uid in session.execute(query, execution_options=BYPASS)
                  if acting_user is None or uid != acting_user)


def _agreement_event(rbac: RBACProtocol, session: Session, agreement: Any, verb: str,
                     side: str) -> None:
    sides = _sides(agreement)
    told = session.info.setdefault(TOLD_KEY, set())
    # "changed" and "widened" are one event: the agreement's terms changed.
    key = (id(agreement), "terms" if verb in ("changed", "widened") else verb)
    if key in told or sides[side] is None:
        return
    told.add(key)
    m = rbac.models
    granting = _workspace_name(session, m, sides["granting"])
    receiving = _workspace_name(session, m, sides["receiving"])
    summary = {
        "offered": f"{granting} offers to share records with {receiving}.",
        "accepted": f"{receiving} accepted the sharing agreement from {granting}.",
        "declined": f"{receiving} declined the sharing agreement from {granting}.",
        "left": f"{receiving} left the sharing agreement with {granting}.",
        "revoked": f"{granting} revoked its sharing agreement with {receiving}.",
        "changed": f"{granting} changed the sharing agreement with {receiving}.",
        "widened": f"{granting} widened what it shares with {receiving}.",
    }[verb]
    enqueue(session, m, workspace_id=sides[side],  # type: ignore[arg-type]
            recipients=agreement_recipients(rbac, session, sides[side]),  # type: ignore[arg-type]
            category="sharing", event_name=f"sharing.{verb}", summary=summary,
            link=path_for("rbac_settings.sharing"))


def _agreement_change(rbac: RBACProtocol, session: Session, agreement: Any) -> None:
    change = _history(agreement, "status")
    if change is not None:
        if change[1] in STATUS_EVENTS:
            verb, side = STATUS_EVENTS[change[1]]
            _agreement_event(rbac, session, agreement, verb, side)
        return
    state = sa.inspect(agreement)
    terms = {a.key for a in state.mapper.column_attrs
             if a.key not in NOT_TERMS and state.attrs[a.key].history.has_changes()}
    if terms and agreement.status in ("pending", "active"):
        _agreement_event(rbac, session, agreement, "changed", "receiving")


def _permission_changes(rbac: RBACProtocol, session: Session, new: Collection[Any],
                        dirty: Collection[Any], deleted: Collection[Any]) -> None:
    """A permission added, changed or removed: the agreement *changed* (*widened* if added)."""
    m = rbac.models
    widened: dict[int, Any] = {}
    changed: dict[int, Any] = {}
    for obj in (*new, *dirty, *deleted):
        if not isinstance(obj, m.SharingPermission):
            continue
        agreement = obj.agreement
        if agreement is None and obj.agreement_id is not None:
            agreement = session.get(m.SharingAgreement, obj.agreement_id, execution_options=BYPASS)
        if agreement is None or agreement in new:
            continue
        if agreement.status not in ("pending", "active"):
            continue
        target = widened if obj in new else changed
        target[id(agreement)] = agreement
    for agreement in widened.values():
        _agreement_event(rbac, session, agreement, "widened", "receiving")
    for key, agreement in changed.items():
        if key not in widened:
            _agreement_event(rbac, session, agreement, "changed", "receiving")
