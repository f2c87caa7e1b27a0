"""Evaluate the alert rules where audit events are flushed, with counters, not scans.

Where: a ``before_flush`` listener on the app's session sees every new
:class:`AuditEvent` whatever wrote it (pages, API, CLI, Flask-Admin, the
permission-change summaries, sign-ins, and refusals, which
:func:`..audit.write_denied` stores through a session of the same class), and
every deleted record of a registered resource (record deletions are not audit
events; they are counted from the same flush). The summary event of a
permission change, which the audit trail inserts at commit with a plain
statement (no flush of its own), comes from ``session.info`` to a
``before_commit`` listener installed after the trail's, and is evaluated
there, before the commit's flush writes the alerts it raised. Events the
audit trail completes with their changes at commit are read again then, for
the privilege rule only.

Cost: reading pages pays nothing. An audited write pays one query for the
workspace's thresholds, plus one upsert per counter a rule adds to (an export,
a refusal, a flush with deletions, activity outside business hours), plus a
seen-address upsert per sign-in. The counters (:mod:`.rules`) are rows keyed
by (workspace, member, rule, window start), incremented by one
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` on SQLite and PostgreSQL;
nothing counts rows of the audit trail. The statement that first takes a
window to its threshold stores a random ``mark`` and reads it back, so each
(rule, member, window) raises exactly one alert, concurrent writers included
(PostgreSQL serialises the upserts of one row).

Failure: a rule's error is not swallowed. It runs inside the user's flush,
where a failed statement has already aborted the PostgreSQL transaction
(only a savepoint per flush, paid by every write, could save it), and an
error that let the write through unobserved would let whoever can trigger it
act unwatched. So the rules are kept small, read no untrusted structure
without checking it, and are tested on both backends.

The :data:`..signals.alert_raised` signal is sent after the flush that wrote
the alert (it then has an id), inside the transaction: a receiver writes its
rows into ``object_session(alert)``, and a rollback drops them with the alert.
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app, has_app_context, has_request_context
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import signals
from ..audit.events import COMPLETING_KEY, WRITTEN_KEY, actor, jsonable
from ..audit.reasons import alert_settings_read, carry_rules, forget_carried
from ..config import setting
from ..context import current_override
from ..identity import request_state
from ..loader import BYPASS
from ..models import utcnow
from ..policy import Access
from ..policy_rows import holds_role_now
from ..roles import PRIVILEGED_KEYS, is_privileged
from ..roles.reach import reached
from . import rules
from .rules import Count
from .thresholds import Thresholds, from_row, thresholds_for

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: Session key: alerts added by this flush, announced once it has written them.
RAISED_KEY = "rbac_alerts_raised"


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Listen on the app's session: evaluate before each flush, announce after it."""
    event.listen(db_session, "before_flush", lambda s, c, i: evaluate(rbac, s))
    # After the audit trail's own (installed first): the summary events it inserted.
    event.listen(db_session, "before_commit", lambda s: evaluate_written(rbac, s))
    event.listen(db_session, "after_flush_postexec", lambda s, c: _announce(rbac, s))
    event.listen(db_session, "after_rollback", _forget)
    event.listen(db_session, "after_soft_rollback", lambda s, p: _forget(s))
    # The reason rule and alert settings a permission change used, kept for the next version.
    event.listen(db_session, "after_commit", carry_rules)
    event.listen(db_session, "after_soft_rollback", forget_carried)


def _forget(session: Session) -> None:
    session.info.pop(RAISED_KEY, None)
    session.info.pop(WRITTEN_KEY, None)


class Evaluation:
    """One flush's evaluation: its session, and each workspace's thresholds read once."""

    def __init__(self, rbac: RBACProtocol, session: Session,
                 read: dict[int, tuple[Any, Any]] | None = None) -> None:
        self.rbac, self.session, self.m = rbac, session, rbac.models
        self._limits: dict[int, Thresholds] = {}
        #: Settings read at this commit by the audit trail's reason rule, by workspace.
        self._read = read or {}

    def limits(self, workspace_id: int) -> Thresholds:
        if workspace_id not in self._limits:
            if workspace_id in self._read:
                timezone, settings = self._read[workspace_id]
                self._limits[workspace_id] = from_row(settings, timezone)
            else:
                self._limits[workspace_id] = thresholds_for(self.rbac, workspace_id, self.session)
        return self._limits[workspace_id]

    def count(self, c: Count, detail: dict[str, Any]) -> None:
        """Add to ``c``'s counter; raise its alert if this statement reached the threshold."""
        if bump(self.session, self.m.AlertCounter.__table__, c):
            self.raise_alert(c.rule, c.workspace_id, c.membership_id, c.summary,
                             {**detail, "window_start": c.window_start,
                              "threshold": c.threshold})

    def raise_alert(self, rule: str, workspace_id: int, membership_id: int | None, summary: str,
                    detail: dict[str, Any], severity: str | None = None) -> Any:
        """Add an open alert; the flush writes it and :func:`_announce` sends the signal."""
        who = member_label(self.rbac, self.session, membership_id)
        alert = self.m.Alert(workspace_id=workspace_id, rule=rule,
                             severity=severity or rules.SEVERITY[rule], status="open",
                             membership_id=membership_id, summary=f"{who} {summary}"[:300],
                             detail=jsonable(detail), created_at=utcnow())
        self.session.add(alert)
        self.session.info.setdefault(RAISED_KEY, []).append(alert)
        return alert


def evaluate_written(rbac: RBACProtocol, session: Session) -> None:
    """Run the event rules on the summary events the audit trail's commit inserted with
    a plain statement (never in a flush), before the commit's flush writes the alerts."""
    written = session.info.pop(WRITTEN_KEY, None)
    if not written or not has_app_context() or not setting("RBAC_ALERTS"):
        return
    ev_ctx = Evaluation(rbac, session, alert_settings_read(session))
    with session.no_autoflush:
        for ev in sorted(written, key=lambda e: e.at or dt.datetime.min):
            _event_rules(ev_ctx, ev)


def evaluate(rbac: RBACProtocol, session: Session) -> None:
    """Run every rule on what this flush writes (see the module's docstring)."""
    written = session.info.pop(WRITTEN_KEY, None)
    if not has_app_context() or not setting("RBAC_ALERTS"):
        return
    A = rbac.models.AuditEvent
    completing = session.info.get(COMPLETING_KEY, ())
    # Summary events inserted by a commit whose own listener has not run yet (a
    # listener between the two flushed): evaluated here, once.
    events = [o for o in session.new if isinstance(o, A)] + (written or [])
    completed = [o for o in session.dirty
                 if isinstance(o, A) and any(o is c for c in completing)]
    deleted = _deleted_records(rbac, session)
    # Taken by this flush, used or not: a later flush may follow a change of the settings.
    read = alert_settings_read(session)
    if not (events or completed or deleted):
        return
    ev_ctx = Evaluation(rbac, session, read)
    with session.no_autoflush:
        for ev in sorted(events, key=lambda e: e.at or dt.datetime.min):
            _event_rules(ev_ctx, ev)
        for ev in completed:
            _privilege(ev_ctx, ev)
        if deleted:
            _deletions(ev_ctx, deleted)


def _event_rules(ctx: Evaluation, ev: Any) -> None:
    if ev.workspace_id is None:
        return
    if ev.actor_membership_id is not None and ev.at is not None:
        limits = ctx.limits(ev.workspace_id)
        for c in rules.counts_for_event(ev, limits):
            ctx.count(c, {"action": ev.action, "target": ev.target})
        if ev.action == "auth.login" and ev.ip:
            _sign_in(ctx, ev, limits)
    _privilege(ctx, ev)


# -- counters ----------------------------------------------------------------------------

#: The counter upsert, the same SQL on SQLite (3.35+) and PostgreSQL. Written as
#: text because SQLAlchemy cannot cache a compiled ``on_conflict_do_update`` with
#: ``excluded`` ("no key"): the construct would be compiled on every audited write.
BUMP_SQL = (
    "INSERT INTO {t} (workspace_id, membership_id, rule, window_start, count, mark) "
    "VALUES (:workspace_id, :membership_id, :rule, :window_start, :amount, :first_mark) "
    "ON CONFLICT (workspace_id, membership_id, rule, window_start) DO UPDATE SET "
    "count = {t}.count + excluded.count, "
    "mark = CASE WHEN {t}.mark IS NULL AND {t}.count + excluded.count >= :threshold "
    "THEN :token ELSE {t}.mark END "
    "RETURNING mark")


def bump(session: Session, table: sa.Table, c: Count) -> bool:
    """Add ``c.amount`` to its counter row in one upsert; True when this statement took
    the window to its threshold first (the one time its alert is raised)."""
    token = secrets.randbits(62) + 1
    stmt = sa.text(BUMP_SQL.format(t=table.name)).bindparams(
        sa.bindparam("window_start", type_=sa.DateTime()),
        sa.bindparam("first_mark", type_=sa.BigInteger()),
        sa.bindparam("token", type_=sa.BigInteger()),
        sa.bindparam("amount", type_=sa.BigInteger()),
        sa.bindparam("threshold", type_=sa.BigInteger()))
    # On the session's connection: a plain statement, past the ORM's execute events.
    mark = session.connection().execute(stmt, {
        "workspace_id": c.workspace_id, "membership_id": c.membership_id, "rule": c.rule,
        "window_start": c.window_start, "amount": c.amount, "threshold": c.threshold,
        "token": token, "first_mark": token if c.amount >= c.threshold else None,
    }).scalar_one()
    return mark == token


def prune(rbac: RBACProtocol, before: dt.datetime) -> int:
    """Delete counters whose window started before ``before`` (the caller commits)."""
    C = rbac.models.AlertCounter
    result = rbac.db.session.execute(sa.delete(C).where(C.window_start < before))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# -- sign-in from a new address ------------------------------------------------------------

def _sign_in(ctx: Evaluation, ev: Any, limits: Thresholds) -> None:
    """Note the address; alert if the member signed in before but not from it lately."""
    T = ctx.m.AlertSeenAddress.__table__
    col, member, ip, at = T.c, ev.actor_membership_id, str(ev.ip)[:64], ev.at
    insert = (postgresql.insert if ctx.session.get_bind().dialect.name == "postgresql"
              else sqlite.insert)
    stmt = insert(T).values(membership_id=member, ip=ip, first_seen_at=at, last_seen_at=at,
                            previous_seen_at=None)
    stmt = stmt.on_conflict_do_update(
        index_elements=[col.membership_id, col.ip],
        set_={"previous_seen_at": col.last_seen_at, "last_seen_at": at},
    ).returning(col.previous_seen_at)
    previous = ctx.session.execute(stmt).scalar_one()
    if previous is not None and previous >= at - dt.timedelta(days=limits.new_address_days):
        return
    if previous is None and ctx.session.execute(
            sa.select(col.id).where(col.membership_id == member, col.ip != ip).limit(1)
    ).first() is None:
        return  # the member's first sign-in: nothing to compare with yet
    ctx.raise_alert("new_address", ev.workspace_id, member,
                    f"signed in from {ip}, not seen for them in the last "
                    f"{limits.new_address_days} days",
                    {"ip": ip, "previously_seen_at": previous, "action": ev.action})


# -- privilege increases ---------------------------------------------------------------------

def _privilege(ctx: Evaluation, ev: Any) -> None:
    """A privileged role given (high), or a grant widened on a role someone holds (medium)."""
    if ev.workspace_id is None:
        return
    changes = rules.changes_of(ev)
    if not changes:
        return
    m, session = ctx.m, ctx.session
    for member_id, role_id in rules.assigned_role_ids(changes):
        role = session.get(m.Role, role_id, execution_options=BYPASS)
        if role is not None and is_privileged(role):
            ctx.raise_alert("privilege", ev.workspace_id, member_id,
                            f"was given the privileged role {role.name}",
                            {"role_id": role_id, "role": role.name,
                             "by_membership_id": ev.actor_membership_id, "action": ev.action})
    for dept_id, role_id in rules.department_roles_given(changes):
        role = session.get(m.Role, role_id, execution_options=BYPASS)
        dept = session.get(m.Department, dept_id, execution_options=BYPASS)
        if role is not None and is_privileged(role):
            ctx.raise_alert("privilege", ev.workspace_id, ev.actor_membership_id,
                            f"gave the privileged role {role.name} to the department "
                            f"{getattr(dept, 'name', dept_id)}, whose members hold it",
                            {"role_id": role_id, "role": role.name, "department_id": dept_id,
                             "action": ev.action})
    widened: dict[int, list[str]] = {}
    for role_id, what in rules.widened_grants(changes):
        widened.setdefault(role_id, []).append(what)
    for role_id, parent_id in rules.reparented_roles(changes):
        parent = session.get(m.Role, parent_id, execution_options=BYPASS)
        widened.setdefault(role_id, []).append(
            f"inherits {getattr(parent, 'name', parent_id)}")
    for role_id, what in widened.items():
        role = session.get(m.Role, role_id, execution_options=BYPASS)
        with session.no_autoflush:
            if role is None or not reached(ctx.rbac, role):
                continue
        ctx.raise_alert("privilege", ev.workspace_id, ev.actor_membership_id,
                        f"widened the role {role.name}, which members hold: {', '.join(what)}",
                        {"role_id": role_id, "role": role.name, "grants": what,
                         "action": ev.action}, severity="medium")


# -- mass deletion ---------------------------------------------------------------------------

def _acting() -> Access | None:
    ctx = current_override()
    if isinstance(ctx, Access):
        return ctx
    if has_request_context():
        state = request_state()
        return state.real_access or state.access
    return None


def _deleted_records(rbac: RBACProtocol, session: Session) -> int:
    """How many records of registered resources this flush deletes."""
    if not session.deleted:
        return 0
    return sum(1 for obj in session.deleted if rbac.registry.for_model(type(obj)) is not None)


def _deletions(ctx: Evaluation, rows: int) -> None:
    access = _acting()
    if access is None or access.membership_id is None:
        return  # the system context (scripts, retention) is nobody's mass deletion
    _user, member = actor(ctx.rbac)
    member = member if member is not None else access.membership_id
    c = rules.deletion_count(access.workspace_id, member, utcnow(), rows,
                             ctx.limits(access.workspace_id))
    ctx.count(c, {"rows_in_this_change": rows})


# -- announcing --------------------------------------------------------------------------------

def member_label(rbac: RBACProtocol, session: Session, membership_id: int | None) -> str:
    """A member as an alert names them: their account's address, else their number."""
    if membership_id is None:
        return "Someone"
    membership = session.get(rbac.models.Membership, membership_id, execution_options=BYPASS)
    user = getattr(membership, "user", None)
    return str(getattr(user, "email", None) or f"Member #{membership_id}")


def owners_and_admins(rbac: RBACProtocol, session: Session, workspace_id: int) -> list[int]:
    """Active memberships of ``workspace_id`` holding the Owner or Admin role now, their
    own or through their department.

    An assignment that starts later or has ended gives no right to the alerts
    page, so it brings none of its mail either.
    """
    m = rbac.models
    R, M = m.Role, m.Membership
    privileged = sa.or_(R.is_owner, sa.and_(R.builtin, R.key.in_(PRIVILEGED_KEYS)))
    stmt = (sa.select(M.id)
            .where(M.workspace_id == workspace_id, M.status == "active",
                   holds_role_now(m, privileged, utcnow()))
            .order_by(M.id))
    return list(session.scalars(stmt, execution_options=BYPASS))


def alert_link(alert: Any) -> str:
    """The path of the Alerts page, at the alert."""
    prefix = setting("RBAC_SETTINGS_URL_PREFIX") or ""
    return f"{prefix}/alerts?status=open#alert-{alert.id}"


def _announce(rbac: RBACProtocol, session: Session) -> None:
    """Send :data:`..signals.alert_raised` for each alert the flush wrote."""
    raised = session.info.pop(RAISED_KEY, None)
    if not raised or not has_app_context():
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    recipients = {ws: owners_and_admins(rbac, session, ws)
                  for ws in {a.workspace_id for a in raised}}
    for alert in raised:
        signals.alert_raised.send(app, workspace_id=alert.workspace_id,
                                  recipients=recipients[alert.workspace_id],
                                  summary=alert.summary, link=alert_link(alert), alert=alert,
                                  severity=alert.severity)
