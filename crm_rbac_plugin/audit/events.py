"""Write audit events: :func:`record` for one event, :func:`record_export` for an
export, :func:`purge_before` for retention; and the session keys the listeners share."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from flask import has_request_context, request

from ..context import SYSTEM, current_override
from ..errors import PermissionDenied
from ..identity import client_ip, request_state, signed_in_user
from ..models import utcnow
from ..policy import Access

if TYPE_CHECKING:
    from ..interface import RBACProtocol


TABLE = "rbac_audit_event"
PENDING_KEY = "rbac_audit_pending"
RETENTION_KEY = "rbac_audit_retention"
EXPLICIT_KEY = "rbac_audit_explicit"
COMPLETING_KEY = "rbac_audit_completing"
SHARED_KEY = "rbac_audit_shared"
#: ``session.info`` key: the summary events the commit inserted with a plain statement
#: (never in ``session.new``), for the alert rules, which take them in the same commit.
WRITTEN_KEY = "rbac_audit_written"
#: Execution options that let a DELETE of audit events through (retention, or a
#: demo database being wiped); nothing else may delete them.
RETENTION = {RETENTION_KEY: True}


class AuditImmutable(PermissionDenied):
    """Raised when something tries to change or delete an audit event."""


#: Types JSON holds as they are (exact types: a subclass may be a date or a decimal).
_AS_IS = frozenset({str, int, float, bool, type(None)})


def jsonable(value: Any) -> Any:
    """Return ``value`` as JSON can hold it: instants in ISO form, decimals and UUIDs
    (a host's user key may be one) as text."""
    if type(value) in _AS_IS:
        return value
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    return value


#: The column attribute keys of each mapped class :func:`snapshot` has met.
_column_keys: WeakKeyDictionary[type, tuple[str, ...]] = WeakKeyDictionary()


def snapshot(obj: Any, values: Any = None) -> dict[str, Any]:
    """Return the column values of ``obj`` (or of ``values``, a namespace) as JSON."""
    source = values if values is not None else obj
    cls = type(obj)
    keys = _column_keys.get(cls)
    if keys is None:
        keys = _column_keys[cls] = tuple(a.key for a in sa.inspect(cls).column_attrs)
    return {key: jsonable(getattr(source, key, None)) for key in keys}


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


def real_or_acting() -> Access | None:
    """The real member while viewing as another, else the acting one (resolved ones only)."""
    state = request_state()
    return state.real_access or state.access


#: Actions (by prefix) whose events carry the client's user agent in
#: ``detail.user_agent``: the account's own events, read by whoever
#: investigates a sign-in or a refusal ("which browser was that?").
WITH_USER_AGENT = ("auth.", "session.", "access.ip_refused", "access.device_refused",
                   "security_policy.")
USER_AGENT_MAX = 300


def record(rbac: RBACProtocol, action: str, *, workspace_id: int | None = None, resource: str = "",
           target: str = "", before: Any = None, after: Any = None,
           actor_ids: tuple[Any, int | None] | None = None, **detail: Any) -> Any:
    """Add an audit event to the session (the caller commits) and return it.

    The workspace and actor default to the current member's.
    """
    user_id, membership_id = actor_ids if actor_ids is not None else actor(rbac)
    if (action.startswith(WITH_USER_AGENT) and "user_agent" not in detail
            and has_request_context() and request.user_agent.string):
        detail["user_agent"] = request.user_agent.string[:USER_AGENT_MAX]
    if workspace_id is None:
        ctx = current_override()
        access = ctx if isinstance(ctx, Access) else (
            real_or_acting() if has_request_context() else None)
        workspace_id = access.workspace_id if access is not None else None
    ev = rbac.models.AuditEvent(workspace_id=workspace_id, at=utcnow(), actor_user_id=user_id,
                         actor_membership_id=membership_id, action=action, resource=resource,
                         target=target, before=jsonable(before), after=jsonable(after),
                         detail=jsonable(detail) or None, ip=client_ip())
    rbac.db.session.add(ev)
    rbac.db.session.info.setdefault(EXPLICIT_KEY, []).append(ev)
    return ev


def record_export(rbac: RBACProtocol, resource: str, rows_by_workspace: dict[Any, int], *,
                  target: str, **detail: Any) -> None:
    """Audit an export: one event in the member's workspace, and one in each workspace
    whose shared records it included (the caller commits)."""
    ctx = current_override()
    if ctx is None and has_request_context():
        ctx = real_or_acting()
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


def purge_before(rbac: RBACProtocol, cutoff: dt.datetime, workspace_id: int | None = None) -> int:
    """Delete audit events older than ``cutoff`` (retention); the only deletion allowed."""
    A = rbac.models.AuditEvent
    stmt = sa.delete(A).where(A.at < cutoff)
    if workspace_id is not None:
        stmt = stmt.where(A.workspace_id == workspace_id)
    result = rbac.db.session.execute(stmt, execution_options={RETENTION_KEY: True,
                                                              "synchronize_session": False})
    return int(result.rowcount or 0)
