"""The audit trail: an append-only log of permission changes, refusals and exports.

What is written, and when:

* **Permission changes** are recorded generically from the flush, whatever
  route, form, API call or script made them: a ``before_flush`` listener
  notes every created, changed or deleted policy object (workspaces,
  departments, memberships, manager assignments, roles, grants, role
  assignments, field rules, segregation-of-duties pairs) with its column
  values as they were (from attribute history), and ``before_commit`` writes
  **one event per workspace per committed transaction** summarising all of
  them (``before``/``after`` keyed by target, ``detail.changes`` listing each
  change). A request commits once, so a permission-changing request yields
  exactly one event; a rolled-back transaction or savepoint (a preview)
  yields none. The event's ``action`` is the most significant change
  (``role.created`` over ``grant.changed``, see :data:`PRIORITY`). When the
  code describes the change itself in the same transaction
  (``rbac.audit("member.deactivated", ...)``, as the team service does),
  that event is the one kept and the changes seen at flush are added to its
  ``detail.changes``: still exactly one event. An event may be completed so
  only inside the transaction that wrote it.
* **Refused attempts** (the ``access_denied`` signal) are collected during a
  request and written after it in a transaction of their own, because the
  refused request's own transaction is rolled back. Refusals outside a
  request (scripts, jobs) are not logged.
* **Exports and other application events**: ``rbac.audit("export",
  resource="deals", rows=12)`` adds an event to the session; the caller
  commits.

Append-only: a flush that updates or deletes an :class:`AuditEvent`, and an
ORM or Core ``UPDATE``/``DELETE`` statement on its table run through the
session, raise :class:`AuditImmutable`, in the system context too. Only
:func:`purge_before` (retention) deletes rows. SQL run on a raw connection is
not seen (as for the query filter); a database trigger or grants would close
that gap.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import has_request_context, request
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from . import csvsafe
from .context import SYSTEM, current_override
from .errors import PermissionDenied
from .guard import NO_POLICY_EFFECT, _changed_keys, old_state, workspaces_of
from .identity import request_state, signed_in_user
from .loader import BYPASS
from .models import naive_utc, utcnow
from .policy import Access

if TYPE_CHECKING:
    from .interface import RBACProtocol

__all__ = ["AuditImmutable", "RETENTION", "record", "purge_before", "PRIORITY"]

TABLE = "rbac_audit_event"
_PENDING = "rbac_audit_pending"
_RETENTION = "rbac_audit_retention"
_EXPLICIT = "rbac_audit_explicit"
_COMPLETING = "rbac_audit_completing"
_SHARED = "rbac_audit_shared"
#: Execution options that let a DELETE of audit events through (retention, or a
#: demo database being wiped); nothing else may delete them.
RETENTION = {_RETENTION: True}

#: Kinds of policy object: (name in actions and targets, audited resource).
KINDS: dict[str, tuple[str, str]] = {
    "Workspace": ("workspace", "settings"),
    "Department": ("department", "members"),
    "Membership": ("member", "members"),
    "ManagerAssignment": ("manager", "members"),
    "Role": ("role", "roles"),
    "Grant": ("grant", "roles"),
    "MemberRole": ("assignment", "members"),
    "FieldRule": ("field_rule", "roles"),
    "RoleConflict": ("sod", "roles"),
    "SharingAgreement": ("agreement", "sharing"),
    "SharingPermission": ("agreement_permission", "sharing"),
}

#: The change that names a transaction's event, most significant first.
PRIORITY: tuple[str, ...] = (
    "sharing.created", "sharing.revoked", "sharing.declined", "sharing.left",
    "sharing.accepted", "sharing.deleted", "sharing.changed",
    "role.created", "role.deleted", "member.removed", "member.added", "member.deactivated",
    "member.reactivated", "assignment.added", "assignment.removed", "assignment.changed",
    "role.changed", "grant.added", "grant.removed", "grant.changed", "field_rule.added",
    "field_rule.removed", "field_rule.changed", "member.changed",
    "manager.changed", "department.changed", "sod.changed", "plan.changed",
    "workspace.changed", "workspace.created",
)


class AuditImmutable(PermissionDenied):
    """Raised when something tries to change or delete an audit event."""


# -- values --------------------------------------------------------------------------


def _jsonable(value: Any) -> Any:
    """Return ``value`` as JSON can hold it: instants in ISO form, decimals and UUIDs
    (a host's user key may be one) as text."""
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def snapshot(obj: Any, values: Any = None) -> dict[str, Any]:
    """Return the column values of ``obj`` (or of ``values``, a namespace) as JSON."""
    source = values if values is not None else obj
    return {a.key: _jsonable(getattr(source, a.key, None))
            for a in sa.inspect(type(obj)).column_attrs}


def actor(rbac: RBACProtocol) -> tuple[Any, int | None]:
    """Return (user id, membership id) of whoever is acting now (None, None: the system)."""
    ctx = current_override()
    if isinstance(ctx, Access):
        return ctx.user_id, ctx.membership_id
    user = signed_in_user()
    if user is None:
        return None, None
    state = request_state()
    real = state.real_access  # set while viewing as another member
    if real is None:
        real = state.access
    if real is None and ctx is not SYSTEM:
        with rbac.db.session.no_autoflush:
            real = rbac.current_access()
    return (rbac.user_pk(user),
            real.membership_id if real is not None else None)


def _real_or_acting() -> Access | None:
    """The real member while viewing as another, else the acting one (resolved ones only)."""
    state = request_state()
    return state.real_access or state.access


def _ip() -> str | None:
    return request.remote_addr if has_request_context() else None


def record(rbac: RBACProtocol, action: str, *, workspace_id: int | None = None, resource: str = "",
           target: str = "", before: Any = None, after: Any = None,
           actor_ids: tuple[Any, int | None] | None = None, **detail: Any) -> Any:
    """Add an audit event to the session (the caller commits) and return it.

    The workspace and actor default to the current member's.
    """
    user_id, membership_id = actor_ids if actor_ids is not None else actor(rbac)
    if workspace_id is None:
        ctx = current_override()
        access = ctx if isinstance(ctx, Access) else (
            _real_or_acting() if has_request_context() else None)
        workspace_id = access.workspace_id if access is not None else None
    ev = rbac.models.AuditEvent(workspace_id=workspace_id, at=utcnow(), actor_user_id=user_id,
                         actor_membership_id=membership_id, action=action, resource=resource,
                         target=target, before=_jsonable(before), after=_jsonable(after),
                         detail=_jsonable(detail) or None, ip=_ip())
    rbac.db.session.add(ev)
    rbac.db.session.info.setdefault(_EXPLICIT, []).append(ev)
    return ev


def purge_before(rbac: RBACProtocol, cutoff: dt.datetime, workspace_id: int | None = None) -> int:
    """Delete audit events older than ``cutoff`` (retention); the only deletion allowed."""
    A = rbac.models.AuditEvent
    stmt = sa.delete(A).where(A.at < cutoff)
    if workspace_id is not None:
        stmt = stmt.where(A.workspace_id == workspace_id)
    result = rbac.db.session.execute(stmt, execution_options={_RETENTION: True,
                                                              "synchronize_session": False})
    return int(result.rowcount or 0)


# -- listeners -------------------------------------------------------------------------


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Listen on the app's session: immutability, change collection, one event per commit."""
    event.listen(db_session, "before_flush", lambda s, c, i: _before_flush(rbac, s))
    event.listen(db_session, "before_commit", lambda s: _before_commit(rbac, s))
    event.listen(db_session, "after_soft_rollback", _after_soft_rollback)
    event.listen(db_session, "after_commit", _forget_completing)
    event.listen(db_session, "after_rollback", _forget_completing)
    event.listen(db_session, "do_orm_execute", _refuse_statements)


def _refuse_statements(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    if state.execution_options.get(_RETENTION):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) == TABLE:
        raise AuditImmutable("Audit events cannot be changed or deleted.")


def _forget_completing(session: Session) -> None:
    session.info.pop(_COMPLETING, None)


def _kind(obj: Any) -> tuple[str, str]:
    return KINDS[type(obj).__name__]


def _before_flush(rbac: RBACProtocol, session: Session) -> None:
    A = rbac.models.AuditEvent
    completing = session.info.get(_COMPLETING, ())
    for obj in (*session.dirty, *session.deleted):
        if isinstance(obj, A) and (obj in session.deleted or session.is_modified(obj)):
            if obj in session.deleted or not any(obj is c for c in completing):
                raise AuditImmutable("Audit events cannot be changed or deleted.")
    classes = rbac.models.policy_classes()
    pending = session.info.setdefault(_PENDING, [])
    tx = session.get_nested_transaction() or session.get_transaction()
    _note_shared_writes(rbac, session, tx)
    who = None
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, classes):
            continue
        if obj in session.new:
            op, before = "created", None
        elif obj in session.deleted:
            op, before = "deleted", snapshot(obj, old_state(obj))
        else:
            if not session.is_modified(obj, include_collections=False):
                continue
            keys = _changed_keys(obj) - NO_POLICY_EFFECT
            if not keys:
                continue
            op, before = "changed", snapshot(obj, old_state(obj))
        if who is None:
            who = actor(rbac)
        pending.append({"obj": obj, "op": op, "before": before, "tx": tx, "actor": who})


def _note_shared_writes(rbac: RBACProtocol, session: Session, tx: Any) -> None:
    """Remember writes to records of another workspace (made through an agreement).

    The flush guard has let them through already; they are written to the
    audit trail of both workspaces at commit (see :func:`_write_shared`).
    """
    ctx = current_override()
    if ctx is None and has_request_context():
        ctx = request_state().access
    if not isinstance(ctx, Access) or not ctx.shares:
        # The system context, nobody, or a member nothing is shared with: the
        # flush guard has refused any write outside their workspace already.
        return
    noted = session.info.setdefault(_SHARED, [])
    for obj in (*session.new, *session.dirty, *session.deleted):
        res = rbac.registry.for_model(type(obj))
        if res is None:
            continue
        # The guard never lets a member move a record to another workspace, so
        # the current value is the stored one.
        ws = getattr(obj, res.workspace_column, None)
        if ws is None or ws == ctx.workspace_id:
            continue
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        op = ("created" if obj in session.new else
              "deleted" if obj in session.deleted else "edited")
        share = next((s for s in ctx.shares if s.workspace_id == ws), None)
        noted.append({"tx": tx, "workspace_id": ws, "resource": res.name, "op": op,
                      "id": _jsonable(getattr(obj, "id", None)),
                      "changed": sorted(_changed_keys(obj)) if op == "edited" else None,
                      "agreement_id": share.agreement_id if share else None,
                      "actor": (ctx.user_id, ctx.membership_id),
                      "from_workspace_id": ctx.workspace_id})


def _write_shared(rbac: RBACProtocol, session: Session) -> None:
    """One ``shared.write`` event per transaction on each side of each agreement used."""
    noted = session.info.pop(_SHARED, None) or []
    seen: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for n in noted:
        seen.setdefault((n["workspace_id"], n["from_workspace_id"]), []).append(n)
    for (granting, receiving), writes in seen.items():
        changes = [{k: w[k] for k in ("resource", "id", "op", "changed", "agreement_id")}
                   for w in writes]
        target = ", ".join(sorted({f"{w['resource']} #{w['id']} {w['op']}" for w in writes}))
        first = writes[0]
        for ws, side in ((granting, "granting"), (receiving, "receiving")):
            session.add(rbac.models.AuditEvent(
                workspace_id=ws, at=utcnow(), actor_user_id=first["actor"][0],
                actor_membership_id=first["actor"][1], action="shared.write",
                resource=first["resource"], target=target[:2000],
                detail={"side": side, "granting_workspace_id": granting,
                        "receiving_workspace_id": receiving,
                        "agreement_ids": sorted({w["agreement_id"] for w in writes
                                                 if w["agreement_id"] is not None}),
                        "changes": changes},
                ip=_ip()))


def record_export(rbac: RBACProtocol, resource: str, rows_by_workspace: dict[Any, int], *,
                  target: str, **detail: Any) -> None:
    """Audit an export: one event in the member's workspace, and one in each workspace
    whose shared records it included (the caller commits)."""
    ctx = current_override()
    if ctx is None and has_request_context():
        ctx = _real_or_acting()
    own = ctx.workspace_id if isinstance(ctx, Access) else None
    total = sum(rows_by_workspace.values())
    shared = {int(ws): n for ws, n in rows_by_workspace.items()
              if ws is not None and ws != own and n}
    extra = {"shared_rows": {str(k): v for k, v in shared.items()}} if shared else {}
    record(rbac, "export", resource=resource, target=target, rows=total, **extra, **detail)
    for ws, n in shared.items():
        record(rbac, "shared.export", workspace_id=ws, resource=resource,
               target=f"{resource}: {n} shared rows exported by workspace #{own}", rows=n,
               side="granting", receiving_workspace_id=own, **detail)


def _after_soft_rollback(session: Session, previous: Any) -> None:
    if session.info.get(_EXPLICIT):
        session.info[_EXPLICIT] = [e for e in session.info[_EXPLICIT] if e in session]

    def inside(tx: Any) -> bool:
        while tx is not None:
            if tx is previous:
                return True
            tx = tx.parent
        return False

    if session.info.get(_SHARED):
        session.info[_SHARED] = [n for n in session.info[_SHARED] if not inside(n["tx"])]
    pending = session.info.get(_PENDING)
    if not pending:
        return
    session.info[_PENDING] = [p for p in pending if not inside(p["tx"])]


def _deleted_at_flush(obj: Any) -> bool:
    """Whether the flush deleted ``obj``.

    A row taken out of a ``delete-orphan`` collection (``role.grants.remove(g)``)
    is only *dirty* when ``before_flush`` runs: the flush itself deletes it. Its
    net operation is read from its state once flushed, not from the listener.
    """
    state = sa.inspect(obj)
    return bool(state.deleted or state.was_deleted)


def _merge(pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per object: its first ``before`` and its net operation."""
    merged: dict[int, dict[str, Any]] = {}
    for p in pending:
        key = id(p["obj"])
        if key not in merged:
            merged[key] = dict(p)
        elif p["op"] == "deleted":
            merged[key]["op"] = "deleted"
    for key, entry in list(merged.items()):
        if entry["op"] != "deleted" and _deleted_at_flush(entry["obj"]):
            entry["op"] = "deleted"
        if entry["op"] == "deleted" and entry["before"] is None:
            del merged[key]  # created and deleted in the same transaction: no net change
    return list(merged.values())


def _label(kind: str, obj: Any, values: dict[str, Any]) -> str:
    ident = values.get("id")
    if kind == "role":
        return f"role #{ident} {values.get('name')}"
    if kind == "member":
        # A pending member is named by the invited address (Membership.display_name).
        user = getattr(obj, "user", None)
        if user is None:
            return f"member #{ident}"
        name = getattr(user, "email", None) if values.get("status") == "pending" else user
        return f"member #{ident} {name}"
    if kind == "assignment":
        return (f"assignment #{ident} (role #{values.get('role_id')} to member "
                f"#{values.get('membership_id')})")
    if kind == "grant":
        return (f"grant #{ident} {values.get('effect')} {values.get('resource')}."
                f"{values.get('action')} on role #{values.get('role_id')}")
    if kind == "field_rule":
        return (f"field rule #{ident} {values.get('resource')}.{values.get('field')} "
                f"on role #{values.get('role_id')}")
    if kind == "manager":
        return f"manager #{values.get('manager_id')} of member #{values.get('member_id')}"
    if kind == "agreement":
        return (f"agreement #{ident} workspace #{values.get('granting_workspace_id')} → "
                f"#{values.get('receiving_workspace_id')}")
    if kind == "agreement_permission":
        return (f"shared {values.get('resource')}.{values.get('action')} in agreement "
                f"#{values.get('agreement_id')}")
    if kind in ("department", "workspace"):
        return f"{kind} #{ident} {values.get('name')}"
    return f"{kind} #{ident}"


def _change_action(kind: str, op: str, before: dict[str, Any] | None,
                   after: dict[str, Any] | None) -> str:
    if kind == "assignment":
        return {"created": "assignment.added", "deleted": "assignment.removed"}.get(
            op, "assignment.changed")
    if kind == "member":
        if op == "created":
            return "member.added"
        if op == "deleted":
            return "member.removed"
        old, new = (before or {}).get("status"), (after or {}).get("status")
        if old != new and new == "inactive":
            return "member.deactivated"
        if old != new and new == "active" and old == "inactive":
            return "member.reactivated"
        return "member.changed"
    if kind == "role":
        return f"role.{op}"
    if kind in ("grant", "field_rule"):
        return f"{kind}." + {"created": "added", "deleted": "removed"}.get(op, "changed")
    if kind == "agreement":
        old, new = (before or {}).get("status"), (after or {}).get("status")
        if op == "changed" and old != new and new in ("active", "declined", "left", "revoked"):
            return "sharing." + {"active": "accepted"}.get(new, new)
        return f"sharing.{op}"
    if kind == "agreement_permission":
        return "sharing.changed"
    if kind == "workspace":
        if op == "created":
            return "workspace.created"
        if (before or {}).get("plan") != (after or {}).get("plan"):
            return "plan.changed"
        return "workspace.changed"
    return f"{kind}.changed"


def _before_commit(rbac: RBACProtocol, session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint is released: the outer transaction may still change more
    session.flush()  # collect what the commit would flush (a no-op when clean), then write
    _write_shared(rbac, session)
    pending = _merge(session.info.pop(_PENDING, None) or [])
    explicit = [e for e in session.info.pop(_EXPLICIT, None) or [] if e in session]
    if not pending:
        return
    by_ws: dict[int | None, list[dict[str, Any]]] = {}
    with session.no_autoflush:
        for p in pending:
            obj, op = p["obj"], p["op"]
            kind, resource = _kind(obj)
            after = None if op == "deleted" else snapshot(obj)
            before = p["before"]
            label = _label(kind, obj, after or before or {})
            wss = _event_workspaces(session, rbac, obj, kind, op, before or {})
            changed = None
            if before is not None and after is not None:
                changed = sorted(k for k in after if before.get(k) != after.get(k))
                if not changed:
                    continue  # changed and changed back: nothing to record
            values = after or before or {}
            key = (f"{values.get('manager_id')}:{values.get('member_id')}"
                   if kind == "manager" else values.get("id"))
            for ws in wss:
                by_ws.setdefault(ws, []).append({
                    "kind": kind, "key": key, "op": op,
                    "action": _change_action(kind, op, before, after), "resource": resource,
                    "target": label, "before": before, "after": after, "changed": changed,
                    "actor": p["actor"]})
    completing: list[Any] = []
    for ws, changes in by_ws.items():
        summary = [{k: c[k] for k in ("kind", "key", "op", "action", "resource", "target",
                                      "changed", "before", "after")} for c in changes]
        described = next((e for e in explicit if e.workspace_id == ws
                          and e.action not in ("export", "access.denied")
                          and not e.action.startswith("shared.")), None)
        if described is not None:
            # The code described this change itself (rbac.audit(...)): one event, its own,
            # completed with the changes seen at flush (who-could replays those).
            described.detail = {**(described.detail or {}), "changes": summary}
            described.resource = described.resource or changes[0]["resource"]
            completing.append(described)
            continue
        ranked = sorted(changes, key=lambda c: (PRIORITY.index(c["action"])
                                                if c["action"] in PRIORITY else len(PRIORITY)))
        main = ranked[0]
        session.add(rbac.models.AuditEvent(
            workspace_id=ws, at=utcnow(), actor_user_id=main["actor"][0],
            actor_membership_id=main["actor"][1], action=main["action"],
            resource=main["resource"],
            target=main["target"] + (f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""),
            before={c["target"]: c["before"] for c in changes if c["before"] is not None} or None,
            after={c["target"]: c["after"] for c in changes if c["after"] is not None} or None,
            detail={"changes": [{k: c[k] for k in ("kind", "key", "op", "action", "resource",
                                                   "target", "changed")}
                                for c in changes]},
            ip=_ip()))
    if completing:
        session.info[_COMPLETING] = completing


def _event_workspaces(session: Session, rbac: RBACProtocol, obj: Any, kind: str, op: str,
                      before: dict[str, Any]) -> list[int | None]:
    """The workspaces whose trail records a change: both sides of an agreement."""
    if kind == "workspace":
        return [obj.id]
    if kind == "agreement" and op == "deleted":
        return [before.get("granting_workspace_id"), before.get("receiving_workspace_id")]
    if op != "deleted" or kind == "agreement_permission":
        found = workspaces_of(session, rbac.models, obj, before)
        if found:
            return list(found)
    if op != "deleted":
        return [None]
    ws = before.get("workspace_id")
    return [ws if ws is not None else _deleted_workspace(session, rbac, obj, before)]


def _deleted_workspace(session: Session, rbac: RBACProtocol, obj: Any,
                       before: dict[str, Any]) -> int | None:
    """Workspace of a deleted grant, assignment or manager link, via its parent row."""
    m = rbac.models
    parent = None
    if "role_id" in before and before.get("role_id") is not None:
        parent = session.get(m.Role, before["role_id"], execution_options=BYPASS)
    elif before.get("membership_id") is not None:
        parent = session.get(m.Membership, before["membership_id"], execution_options=BYPASS)
    elif before.get("manager_id") is not None:
        parent = session.get(m.Membership, before["manager_id"], execution_options=BYPASS)
    if parent is None:
        # The parent went in the same flush: it was recorded too, with its workspace.
        for rel in ("role", "membership"):
            target = getattr(obj, rel, None)
            if target is not None:
                return getattr(target, "workspace_id", None)
        return None
    return getattr(parent, "workspace_id", None)


# -- refusals ----------------------------------------------------------------------------


def note_denied(rbac: RBACProtocol, access: Access | None, action: str, resource: str, record: Any,
                reason: str) -> None:
    """Remember a refusal of this request; :func:`write_denied` stores it after the request."""
    if not has_request_context():
        return
    state = request_state()
    who = state.real_access or access
    user = signed_in_user()
    user_id = rbac.user_pk(user) if user is not None else None
    ident = getattr(record, "id", None) if record is not None else None
    row = {
        "workspace_id": who.workspace_id if who is not None else None,
        "at": utcnow(),
        "actor_user_id": user_id,
        "actor_membership_id": who.membership_id if who is not None else None,
        "action": "access.denied", "resource": resource,
        "target": f"{resource} #{ident}" if ident is not None else resource,
        "before": None, "after": None,
        "detail": {"action": action, "record_id": _jsonable(ident), "reason": reason,
                   "path": request.path, "method": request.method},
        "ip": _ip(),
    }
    key = (action, resource, ident, reason)
    if key not in state.denied_keys:  # the decorator and the guard may report the same refusal
        state.denied_keys.add(key)
        state.denied.append(row)


def write_denied(rbac: RBACProtocol) -> None:
    """Store the refusals noted during this request, in a transaction of their own."""
    state = request_state()
    rows, state.denied = state.denied, []
    if not rows:
        return
    with rbac.db.engine.begin() as conn:
        conn.execute(rbac.models.AuditEvent.__table__.insert(), rows)


# -- reading -------------------------------------------------------------------------------


def parse_filters(args: Any) -> dict[str, Any]:
    """Read ``actor``, ``action``, ``resource``, ``from`` and ``to`` from query args.

    ``from``/``to`` are ISO dates or instants (UTC); a bare ``to`` date
    includes that whole day. Raises ValueError naming the bad argument.
    """
    out: dict[str, Any] = {}
    actor_arg = (args.get("actor") or "").strip()
    if actor_arg:
        try:
            out["actor"] = int(actor_arg)
        except ValueError:
            raise ValueError("actor: expected a membership id") from None
    for key in ("action", "resource"):
        value = (args.get(key) or "").strip()
        if value:
            out[key] = value[:60]
    for key in ("from", "to"):
        value = (args.get(key) or "").strip()
        if not value:
            continue
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{key}: expected a date such as 2026-11-01") from None
        when = naive_utc(when)
        if key == "to" and len(value) <= 10:
            when += dt.timedelta(days=1)
        out[key] = when
    return out


def events_query(rbac: RBACProtocol, workspace_id: int, filters: dict[str, Any]) -> Any:
    """Return the SELECT of a workspace's events matching ``filters``, newest first."""
    A = rbac.models.AuditEvent
    stmt = sa.select(A).where(A.workspace_id == workspace_id)
    if "actor" in filters:
        stmt = stmt.where(A.actor_membership_id == filters["actor"])
    if "action" in filters:
        stmt = stmt.where(A.action == filters["action"])
    if "resource" in filters:
        stmt = stmt.where(A.resource == filters["resource"])
    if "from" in filters:
        stmt = stmt.where(A.at >= filters["from"])
    if "to" in filters:
        stmt = stmt.where(A.at < filters["to"])
    return stmt.order_by(A.at.desc(), A.id.desc())


def event_json(ev: Any) -> dict[str, Any]:
    return {"id": ev.id, "workspace_id": ev.workspace_id, "at": ev.at.isoformat() + "Z",
            "actor_user_id": ev.actor_user_id, "actor_membership_id": ev.actor_membership_id,
            "action": ev.action, "resource": ev.resource, "target": ev.target,
            "before": ev.before, "after": ev.after, "detail": ev.detail, "ip": ev.ip}


CSV_COLUMNS = ("id", "at", "actor_user_id", "actor_membership_id", "action", "resource",
               "target", "before", "after", "detail", "ip")


def csv_row(ev: Any) -> list[str]:
    """One CSV row; JSON columns as JSON text, formula-looking cells neutralised."""
    data = event_json(ev)
    out = []
    for col in CSV_COLUMNS:
        value = data[col]
        text = "" if value is None else (json.dumps(value, sort_keys=True)
                                         if isinstance(value, (dict, list)) else str(value))
        out.append(csvsafe.safe_cell(text))
    return out
