"""The reason of a permission change: read it, require it where the workspace says so.

A workspace whose review schedule has ``require_reason`` set refuses a
permission change that carries no reason (:func:`..context.current_reason`)
with a :class:`~..errors.ValidationError` naming ``reason``. The check runs
where the change's audit event is written (``before_commit``), so every path
that commits a permission change (a page, the API, the CLI, Flask-Admin, a
script) meets it, and the refused transaction writes nothing.

What counts as a permission change here: roles, grants, field rules and
segregation-of-duties pairs; role assignments of a member who has joined
(an invitation's assignments give nothing until it is accepted, and the
invitee who accepts changes nobody's rights; a membership created with its
first roles, by a sign-up or an adoption, is joining); deactivating,
reactivating or removing a member; changing the plan. Creating a
workspace, joining it and profile edits do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import has_app_context, has_request_context
from sqlalchemy.orm import Session

from ..access_cache import PolicyCache, bumped_versions, forget_bumped_versions, has_changed_rules
from ..config import setting
from ..context import current_reason
from ..errors import ValidationError
from ..identity import request_state
from ..loader import BYPASS
from ..proxies import current_flask_app

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: Kinds whose every change is a permission change.
ALWAYS = frozenset({"role", "grant", "field_rule", "sod"})


def _counts(session: Session, rbac: RBACProtocol, change: dict[str, Any],
            joining: set[Any]) -> bool:
    """Whether ``change`` changes someone's rights in the sense of the reason rule.

    ``joining``: memberships created in the same transaction, whose first
    roles come with them (an invitation, a sign-up, an adoption).
    """
    kind, op = change["kind"], change["op"]
    values = change["after"] or change["before"] or {}
    if kind in ALWAYS:
        return True
    if kind == "assignment":
        if values.get("membership_id") in joining:
            return False
        member = session.get(rbac.models.Membership, values.get("membership_id"),
                             execution_options=BYPASS)
        return member is None or member.status != "pending"
    if kind == "workspace":  # the plan decides which modules anyone reaches
        return op == "changed" and "plan" in (change["changed"] or ())
    if kind == "member":
        if op == "deleted":
            return (change["before"] or {}).get("status") != "pending"
        statuses = {(change["before"] or {}).get("status"), (change["after"] or {}).get("status")}
        return op == "changed" and "inactive" in statuses
    return False


#: ``session.info`` key: the alert settings read with the reason rule at this commit,
#: ``(transaction, {workspace id: (time zone, settings row as a mapping or None)})``.
ALERT_SETTINGS_KEY = "rbac_commit_alert_settings"
#: The reason rule's statement. It reads the workspace's alert settings and time zone
#: too: the alert rules evaluate the event this commit writes right after it is written
#: (:mod:`..alerts.engine`), so a permission change reads its workspace's settings once.
_RULES_SQL = ("SELECT w.timezone AS w_timezone, r.require_reason AS r_require_reason, "
              "{columns} FROM {w} w LEFT OUTER JOIN {r} r ON r.workspace_id = w.id "
              "LEFT OUTER JOIN {s} s ON s.workspace_id = w.id WHERE w.id = :workspace_id")
_statements: dict[tuple[str, ...], sa.TextClause] = {}


def _rules_statement(models: Any) -> sa.TextClause:
    tables = (models.Workspace.__table__, models.ReviewSchedule.__table__,
              models.AlertSettings.__table__)
    key = tuple(t.name for t in tables)
    stmt = _statements.get(key)
    if stmt is None:
        columns = ", ".join(f"s.{c.name} AS s_{c.name}" for c in tables[2].columns)
        stmt = sa.text(_RULES_SQL.format(columns=columns, w=key[0], r=key[1], s=key[2]))
        _statements[key] = stmt
    return stmt


def required(session: Session, rbac: RBACProtocol, workspace_id: int | None, *,
             keep: bool = False) -> bool:
    """Whether the workspace requires a reason for permission changes.

    ``keep``: keep the workspace's alert settings, read by the same
    statement, for this transaction's next flush (:func:`alert_settings_read`),
    and take the rules from the workspace's kept copy for the request's
    ``policy_version`` when there is one (:func:`_kept_version`).
    """
    models = rbac.models
    if workspace_id is None or models.ReviewSchedule is None:
        return False
    version = _kept_version(session, workspace_id) if keep else None
    cache = _rules_cache() if version is not None else None
    rules = cache.get_rules(workspace_id, version) if cache is not None else None
    if rules is None:
        # On the session's connection: a plain statement, past the ORM's execute events.
        row = session.connection().execute(_rules_statement(models),
                                           {"workspace_id": workspace_id}).first()
        if row is None:
            return False
        values = row._mapping
        settings = ({name[2:]: value for name, value in values.items() if name.startswith("s_")}
                    if values["s_id"] is not None else None)
        rules = (bool(values["r_require_reason"]), values["w_timezone"], settings)
        if cache is not None:
            cache.put_rules(workspace_id, version, rules)  # type: ignore[arg-type]
    if keep:
        _keep(session, workspace_id, rules[1], rules[2])
    return bool(rules[0])


def _kept_version(session: Session, workspace_id: int) -> int | None:
    """The ``policy_version`` whose kept rules this permission change may use, or None
    (read them, keep nothing).

    The version is the one the request's Access was loaded at, before this
    transaction bumped it: every committed write of the rules bumps it
    (:func:`..guard.collect_policy_changes`), so a request that starts after
    that commit meets a new version. None outside a request, for another
    workspace than the Access's, for an Access read from uncommitted policy
    changes, in a session that changed the workspace's rules itself
    (committed or not: its Access still names the version before them), and
    unless the transaction's bump of the workspace left the Access's version: the
    bump holds the row, so a commit of another worker since the request started
    (a reason now required) shows as a version past the Access's, and the rules
    are read again in this transaction, before its commit.
    """
    if not has_request_context():
        return None
    state = request_state()
    access = state.real_access or state.access
    if (access is None or access.workspace_id != workspace_id or not access.cacheable
            or has_changed_rules(session, workspace_id)):
        return None
    # The transaction's bump holds the workspace's row: the version it left is the last
    # committed one. Another worker's commit since the request started (a reason now
    # required) moved it past the Access's version: read the rules in this transaction.
    bumped = bumped_versions(session).get(workspace_id)
    if bumped is None or bumped[0] - bumped[1] != access.policy_version:
        return None
    return access.policy_version


def _rules_cache() -> PolicyCache | None:
    """The app's per-version cache (each worker's own), None outside an app."""
    state = current_flask_app().extensions.get("rbac") if has_app_context() else None
    return getattr(state, "policies", None)


def _keep(session: Session, workspace_id: int, timezone: Any, settings: Any) -> None:
    tx = session.get_transaction()
    kept = session.info.get(ALERT_SETTINGS_KEY)
    if kept is None or kept[0] is not tx:
        kept = (tx, {})
        session.info[ALERT_SETTINGS_KEY] = kept
    kept[1][workspace_id] = (timezone, settings)


def alert_settings_read(session: Session) -> dict[int, tuple[Any, Any]]:
    """The alert settings :func:`required` read since the last flush in this transaction,
    by workspace: ``{id: (time zone, settings mapping or None)}`` (and forget them).

    The alert rules take them for the commit's event (or the flush that follows), in
    which nothing has changed them since they were read.
    """
    kept = session.info.pop(ALERT_SETTINGS_KEY, None)
    if kept is None or kept[0] is not session.get_transaction():
        return {}
    return kept[1]


def carry_rules(session: Session) -> None:
    """After a commit that bumped ``policy_version``: keep each workspace's kept rules for
    the version the commit left, unless the session changed them.

    A bump holds the workspace's row until the commit, so the transaction's
    bumps of it are the only changes between the version it started from and
    the one it left, and the rules kept for the first hold for the second.
    Most permission changes thus find their rules kept for the version the
    previous change left. A nested transaction's commit waits for the root's.
    """
    if session.in_nested_transaction():
        return
    bumps = bumped_versions(session)
    cache = _rules_cache() if bumps else None
    if cache is None:
        return
    for workspace_id, (version, count) in bumps.items():
        rules = cache.get_rules(workspace_id, version - count)
        if rules is not None and not has_changed_rules(session, workspace_id):
            cache.put_rules(workspace_id, version, rules)


def forget_carried(session: Session, previous: Any) -> None:
    """After a savepoint's rollback: trust no version the transaction's bumps wrote."""
    if previous.nested:
        forget_bumped_versions(session)


def reason_for(session: Session, rbac: RBACProtocol, workspace_id: int | None,
               changes: list[dict[str, Any]], described: Any = None) -> str | None:
    """The reason to store on the workspace's event; refuse a missing one it requires.

    A reason the code wrote on the event it described itself
    (``rbac.audit(..., reason=...)``, as a certification revoke does) counts.
    """
    reason = current_reason() or next((c["reason"] for c in changes if c.get("reason")), None)
    if reason is None and described is not None:
        given = (described.detail or {}).get("reason")
        reason = given.strip() or None if isinstance(given, str) else None
    if reason is not None:
        limit = int(setting("RBAC_CHANGE_REASON_MAX"))
        if len(reason) > limit:
            raise ValidationError(f"the reason is longer than {limit} characters", field="reason")
        return reason
    joining = {c["key"] for c in changes if c["kind"] == "member" and c["op"] == "created"}
    if (any(_counts(session, rbac, c, joining) for c in changes)
            and required(session, rbac, workspace_id, keep=True)):
        raise ValidationError("This workspace requires a reason for every permission change: "
                              "say why in the reason field.", field="reason")
    return None
