"""The session listeners that turn flushed policy changes into one event per workspace
per committed transaction, and keep audit events immutable."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import has_request_context
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session

from ..context import current_override, current_reason
from ..guard import NO_POLICY_EFFECT, _changed_keys, old_state, workspaces_of
from ..identity import request_state
from ..loader import BYPASS
from ..models import utcnow
from ..policy import Access
from .describe import PRIORITY, change_action, kind_of, label
from .events import (
    COMPLETING_KEY,
    EXPLICIT_KEY,
    PENDING_KEY,
    RETENTION_KEY,
    SHARED_KEY,
    TABLE,
    WRITTEN_KEY,
    AuditImmutable,
    actor,
    client_ip,
    jsonable,
    snapshot,
)
from .reasons import ALERT_SETTINGS_KEY, reason_for
from .sentences import SECURITY_EVENTS

if TYPE_CHECKING:
    from ..interface import RBACProtocol


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
    if state.execution_options.get(RETENTION_KEY):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) == TABLE:
        raise AuditImmutable("Audit events cannot be changed or deleted.")


def _forget_completing(session: Session) -> None:
    session.info.pop(COMPLETING_KEY, None)
    session.info.pop(WRITTEN_KEY, None)
    session.info.pop(ALERT_SETTINGS_KEY, None)


def _before_flush(rbac: RBACProtocol, session: Session) -> None:
    A = rbac.models.AuditEvent
    completing = session.info.get(COMPLETING_KEY, ())
    # Each of the three is a new set at every read: read once (the listener adds nothing).
    new, dirty, deleted = session.new, session.dirty, session.deleted
    for obj in (*dirty, *deleted):
        if isinstance(obj, A) and (obj in deleted or session.is_modified(obj)):
            if obj in deleted or not any(obj is c for c in completing):
                raise AuditImmutable("Audit events cannot be changed or deleted.")
    classes = rbac.models.policy_classes()
    pending = session.info.setdefault(PENDING_KEY, [])
    tx = session.get_nested_transaction() or session.get_transaction()
    _note_shared_writes(rbac, session, tx)
    who = None
    for obj in (*new, *dirty, *deleted):
        if not isinstance(obj, classes):
            continue
        if obj in new:
            op, before = "created", None
        elif obj in deleted:
            op, before = "deleted", snapshot(obj, old_state(obj))
        else:
            if not session.is_modified(obj, include_collections=False):
                continue
            keys = _changed_keys(obj) - NO_POLICY_EFFECT
            if not keys:
                continue
            op, before = "changed", snapshot(obj, old_state(obj))
        if who is None:
            # The reason in force when the change is flushed: the commit may come
            # after the block that gave it (an approval's replay, a savepoint).
            who, reason = actor(rbac), current_reason()
        pending.append({"obj": obj, "op": op, "before": before, "tx": tx, "actor": who,
                        "reason": reason})


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
    noted = session.info.setdefault(SHARED_KEY, [])
    for obj in (*session.new, *session.dirty, *session.deleted):
        res = rbac.registry.for_model(type(obj))
        if res is None:
            continue
        # The guard never lets a member move a record to another workspace, so
        # the current value is the stored one.
        ws = res.workspace_of(obj)
        if ws is None or ws == ctx.workspace_id:
            continue
        if obj in session.dirty and not session.is_modified(obj, include_collections=False):
            continue
        op = ("created" if obj in session.new else
              "deleted" if obj in session.deleted else "edited")
        share = next((s for s in ctx.shares if s.workspace_id == ws), None)
        noted.append({"tx": tx, "workspace_id": ws, "resource": res.name, "op": op,
                      "id": jsonable(getattr(obj, "id", None)),
                      "changed": sorted(_changed_keys(obj)) if op == "edited" else None,
                      "agreement_id": share.agreement_id if share else None,
                      "actor": (ctx.user_id, ctx.membership_id),
                      "from_workspace_id": ctx.workspace_id})


def _write_shared(rbac: RBACProtocol, session: Session) -> None:
    """One ``shared.write`` event per transaction on each side of each agreement used."""
    noted = session.info.pop(SHARED_KEY, None) or []
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
                ip=client_ip()))


def _after_soft_rollback(session: Session, previous: Any) -> None:
    if session.info.get(EXPLICIT_KEY):
        session.info[EXPLICIT_KEY] = [e for e in session.info[EXPLICIT_KEY] if e in session]

    def inside(tx: Any) -> bool:
        while tx is not None:
            if tx is previous:
                return True
            tx = tx.parent
        return False

    if session.info.get(SHARED_KEY):
        session.info[SHARED_KEY] = [n for n in session.info[SHARED_KEY] if not inside(n["tx"])]
    pending = session.info.get(PENDING_KEY)
    if not pending:
        return
    session.info[PENDING_KEY] = [p for p in pending if not inside(p["tx"])]


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


def _before_commit(rbac: RBACProtocol, session: Session) -> None:
    """Write one event per workspace summarising the transaction's policy changes.

    An event the code described itself in this transaction (``rbac.audit(...)``)
    is completed with the changes instead, so the transaction still yields one.
    """
    if session.in_nested_transaction():
        return  # a savepoint is released: the outer transaction may still change more
    session.flush()  # collect what the commit would flush (a no-op when clean), then write
    _write_shared(rbac, session)
    pending = _merge(session.info.pop(PENDING_KEY, None) or [])
    explicit = [e for e in session.info.pop(EXPLICIT_KEY, None) or [] if e in session]
    if not pending:
        return
    completing: list[Any] = []
    by_ws = _changes_by_workspace(rbac, session, pending)
    # Every workspace's reason rule is checked before any event is written.
    described_by = {ws: _described_event(explicit, ws) for ws in by_ws}
    reasons = {ws: reason_for(session, rbac, ws, changes, described_by[ws])
               for ws, changes in by_ws.items()}
    for ws, changes in by_ws.items():
        described = described_by[ws]
        if described is not None:
            _complete_described(described, changes, reasons[ws])
            completing.append(described)
            continue
        _insert(rbac, session, _summary_event(ws, changes, reasons[ws]))
    if completing:
        session.info[COMPLETING_KEY] = completing


#: The summary event's INSERT, by audit table (one per app's models): one construct
#: memoizes its cache key, which a new ``insert()`` computes from its structure at
#: every execution.
_inserts: dict[sa.Table, sa.Insert] = {}


def _insert(rbac: RBACProtocol, session: Session, values: dict[str, Any]) -> None:
    """Insert a summary event (its column ``values``) in the commit's transaction with
    one plain statement.

    The event is no object of the session: an ORM insert would take a flush of
    its own at commit, and nothing reads the summary back in the transaction
    that writes it. The alert rules, which find other events among a flush's
    new objects, take it from ``session.info`` (:data:`.events.WRITTEN_KEY`,
    its values as attributes) before the commit's flush (:mod:`..alerts.engine`).
    """
    table = rbac.models.AuditEvent.__table__
    statement = _inserts.get(table)
    if statement is None:
        # inline(): no RETURNING of the new id, which nothing reads.
        statement = _inserts[table] = table.insert().inline()
    session.connection().execute(statement, values)
    session.info.setdefault(WRITTEN_KEY, []).append(SimpleNamespace(**values))


def _changes_by_workspace(rbac: RBACProtocol, session: Session, pending: list[dict[str, Any]],
                          ) -> dict[int | None, list[dict[str, Any]]]:
    """Describe each net change once, under every workspace whose trail records it."""
    by_ws: dict[int | None, list[dict[str, Any]]] = {}
    with session.no_autoflush:
        for p in pending:
            obj, op = p["obj"], p["op"]
            kind, resource = kind_of(obj)
            after = None if op == "deleted" else snapshot(obj)
            before = p["before"]
            target = label(kind, obj, after or before or {})
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
                    "action": change_action(kind, op, before, after), "resource": resource,
                    "target": target, "before": before, "after": after, "changed": changed,
                    "actor": p["actor"], "reason": p.get("reason")})
    return by_ws


def _described_event(explicit: list[Any], ws: int | None) -> Any:
    """The event the code wrote about this workspace's change itself, if any.

    Exports, refusals, shared-record events, approval steps and sign-in and
    security events (:data:`.sentences.SECURITY_EVENTS`, whose ``detail`` has
    keys of its own) describe something else: a permission change committed
    with them gets an event of its own (an approved change: the requester's,
    beside the approver's ``approval.executed``).
    """
    return next((e for e in explicit if e.workspace_id == ws
                 and e.action not in ("export", "access.denied")
                 and e.action not in SECURITY_EVENTS
                 and not e.action.startswith(("shared.", "approval."))), None)


def _complete_described(described: Any, changes: list[dict[str, Any]],
                        reason: str | None = None) -> None:
    """Add the changes seen at flush (who-could replays them) and the change's reason
    to an event the code described."""
    summary = [{k: c[k] for k in ("kind", "key", "op", "action", "resource", "target",
                                  "changed", "before", "after")} for c in changes]
    described.detail = {**(described.detail or {}), "changes": summary,
                        **({"reason": reason} if reason else {})}
    described.resource = described.resource or changes[0]["resource"]


def _summary_event(ws: int | None, changes: list[dict[str, Any]],
                   reason: str | None = None) -> dict[str, Any]:
    """The column values of one event for a workspace's changes, named by the most
    significant (:data:`PRIORITY`)."""
    ranked = sorted(changes, key=lambda c: (PRIORITY.index(c["action"])
                                            if c["action"] in PRIORITY else len(PRIORITY)))
    main = ranked[0]
    return dict(
        workspace_id=ws, at=utcnow(), actor_user_id=main["actor"][0],
        actor_membership_id=main["actor"][1], action=main["action"],
        resource=main["resource"],
        target=main["target"] + (f" (+{len(changes) - 1} more)" if len(changes) > 1 else ""),
        before={c["target"]: c["before"] for c in changes if c["before"] is not None} or None,
        after={c["target"]: c["after"] for c in changes if c["after"] is not None} or None,
        detail={"changes": [{k: c[k] for k in ("kind", "key", "op", "action", "resource",
                                               "target", "changed")}
                            for c in changes], **({"reason": reason} if reason else {})},
        ip=client_ip())


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
