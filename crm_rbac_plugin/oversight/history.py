"""'Who could see deal #42 on date D?', answered from the audit trail.

Approach: start from the policy as it is now (memberships, departments,
manager links, roles, grants, field rules, role assignments and the workspace's plan) and
*undo* every audited change made after D, newest first: a created object is
removed, a changed or deleted one gets back its ``before`` values (each
permission-changing transaction's event holds them, see :mod:`..audit`).
Then each member's access as of D is built from those rows by the very
function that builds live access (:func:`~..resolve.build_access`: time
windows, inheritance, field rules, the member's visibility level, team and
department members), and the ordinary :func:`~..policy.decide` answers for
the record. At "now" the replay therefore answers as ``can()`` does.

Members of other workspaces are answered too when a sharing agreement from
this workspace was in force at D: the agreement and its permissions are
rewound the same way (its changes are in both workspaces' trails), then the
receiving workspace's own policy as of D.

:func:`who_can` answers the simpler question "who can export deals?" now,
from each member's live access, with the path that grants it (assigned
role, the ancestor it is inherited from, scope and condition).

Limits: history only goes back to when auditing began (before the first
event the answer assumes nothing changed; a warning says so); the record
itself is judged as it is now (its owner or stage may have been different
on D).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from ..conditions import describe as describe_clauses
from ..config import setting
from ..loader import BYPASS, _as_column_type, shared_clauses
from ..models import utcnow
from ..policy import Access, Share, decide
from ..registry import Resource
from ..resolve import MembershipRow, build_access, plan_modules
from ..user_keys import user_pk_column

if TYPE_CHECKING:
    from ..interface import RBACProtocol


@dataclass
class Answer:
    """One member's answer: could they, as of the instant asked about?"""

    membership_id: int
    user: str
    roles: tuple[str, ...]
    allowed: bool
    reason: str
    workspace: str = ""  # set for members of a workspace the record was shared with


@dataclass
class WhoCould:
    at: dt.datetime
    resource: str
    record_id: int
    action: str
    answers: list[Answer]
    warnings: list[str]

    @property
    def allowed(self) -> list[Answer]:
        return [a for a in self.answers if a.allowed]


def _rows(rbac: RBACProtocol, table: Any, *where: Any) -> list[dict[str, Any]]:
    result = rbac.db.session.execute(sa.select(table).where(*where), execution_options=BYPASS)
    return [dict(r._mapping) for r in result]


def _instant(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value))


def _row_changes(detail: Any) -> list[dict[str, Any]]:
    """The row changes an audit event holds for the replay, newest last.

    A permission change keeps ``detail["changes"]`` as a list of
    ``{kind, key, op, before, target, ...}``. Other events keep other shapes
    under the same key: a security-policy change ``{field: [old, new]}``, a
    shared write entries without a ``kind``. Those change no row the replay
    rewinds (the security policy gates sign-in, sessions and addresses, not
    who may act on a record), so only the dict entries of a list are kept,
    and :func:`_undo` skips those without a known kind.
    """
    changes = detail.get("changes") if isinstance(detail, dict) else None
    if not isinstance(changes, list):
        return []
    return [change for change in changes if isinstance(change, dict)]


def _undo(state: dict[str, dict[Any, dict[str, Any]]], ev: Any, user_column: Any) -> None:
    """Rewind ``state`` past one audit event: a created row goes, another gets back its
    ``before`` values."""
    for change in reversed(_row_changes(ev.detail)):
        kind, key, op = change.get("kind"), change.get("key"), change.get("op")
        if kind not in state or key is None:
            continue
        if op == "created":
            state[kind].pop(key, None)
            continue
        before = change.get("before") or (ev.before or {}).get(change.get("target"))
        if before is not None and kind == "member":
            # JSON holds a UUID user key as text; the live rows hold the key's type.
            before = {**before, "user_id": _as_column_type(user_column, before.get("user_id"))}
        if before is not None:
            state[kind][key] = before


def policy_as_of(rbac: RBACProtocol, workspace_id: int, at: dt.datetime
                 ) -> tuple[dict[str, dict[Any, dict[str, Any]]], list[str]]:
    """Return the workspace's policy rows as of ``at``, by kind and key, and warnings."""
    m = rbac.models
    Mt, Rt = m.Membership.__table__, m.Role.__table__
    state: dict[str, dict[Any, dict[str, Any]]] = {
        "workspace": {r["id"]: r for r in _rows(rbac, m.Workspace.__table__,
                                                 m.Workspace.__table__.c.id == workspace_id)},
        "department": {r["id"]: r for r in _rows(rbac, m.Department.__table__,
                                                  m.Department.__table__.c.workspace_id
                                                  == workspace_id)},
        "member": {r["id"]: r for r in _rows(rbac, Mt, Mt.c.workspace_id == workspace_id)},
        "role": {r["id"]: r for r in _rows(rbac, Rt, Rt.c.workspace_id == workspace_id)},
    }
    SAt, SPt = m.SharingAgreement.__table__, m.SharingPermission.__table__
    state["agreement"] = {r["id"]: r for r in _rows(rbac, SAt,
                                                     SAt.c.granting_workspace_id == workspace_id)}
    state["agreement_permission"] = {r["id"]: r for r in _rows(
        rbac, SPt, SPt.c.agreement_id.in_(list(state["agreement"])))}
    role_ids = list(state["role"])
    member_ids = list(state["member"])
    Gt, MRt, At = m.Grant.__table__, m.MemberRole.__table__, m.ManagerAssignment.__table__
    state["grant"] = {r["id"]: r for r in _rows(rbac, Gt, Gt.c.role_id.in_(role_ids))}
    FRt = m.FieldRule.__table__
    state["field_rule"] = {r["id"]: r for r in _rows(rbac, FRt, FRt.c.role_id.in_(role_ids))}
    state["assignment"] = {r["id"]: r for r in _rows(rbac, MRt,
                                                      MRt.c.membership_id.in_(member_ids))}
    DRt = m.DepartmentRole.__table__
    state["department_role"] = {r["id"]: r for r in _rows(rbac, DRt,
                                                           DRt.c.workspace_id == workspace_id)}
    state["manager"] = {f"{r['manager_id']}:{r['member_id']}": r
                        for r in _rows(rbac, At, At.c.manager_id.in_(member_ids))}
    A = rbac.models.AuditEvent
    events = rbac.db.session.scalars(
        sa.select(A).where(A.workspace_id == workspace_id, A.at > at).order_by(A.id.desc()))
    for ev in events:
        _undo(state, ev, Mt.c.user_id)
    warnings = []
    first = rbac.db.session.scalar(sa.select(sa.func.min(A.at)).where(
        A.workspace_id == workspace_id))
    if first is None or first > at:
        warnings.append("The audit trail starts after this instant "
                        f"({first.isoformat(' ', 'minutes') + ' UTC' if first else 'no events'}): "
                        "changes before it are unknown, so the answer assumes none.")
    return state, warnings


class HistoricPolicySource:
    """A :class:`~..resolve.PolicySource` over the rows :func:`policy_as_of` rewound.

    Rows are handed to :func:`~..resolve.build_access` exactly as the database
    would return them, so the replay applies every rule of the live policy
    (time windows, inheritance, field rules, visibility level, team and
    department members) with no copy of it. Sharing is left to the caller:
    :func:`who_could` adds the one agreement it replays.
    """

    def __init__(self, state: dict[str, dict[Any, dict[str, Any]]]) -> None:
        self.state = state

    def roles(self, membership_id: int, workspace_id: int) -> list[Any]:
        assigned: dict[int, list[dict[str, Any]]] = {}
        for a in self.state["assignment"].values():
            if a["membership_id"] == membership_id:
                assigned.setdefault(a["role_id"], []).append(a)
        member = self.state["member"].get(membership_id) or {}
        dept = member.get("department_id")
        departments = self.state.get("department", {})
        for d in self.state.get("department_role", {}).values():
            if dept is not None and d["department_id"] == dept:
                assigned.setdefault(d["role_id"], []).append(
                    {**d, "via": (departments.get(dept) or {}).get("name", f"#{dept}")})
        zone = (self.state["workspace"].get(workspace_id) or {}).get("timezone")
        out = []
        for role in self.state["role"].values():
            if role.get("workspace_id") != workspace_id:
                continue
            base = {"id": role["id"], "name": role["name"], "parent_id": role.get("parent_id"),
                    "is_owner": bool(role.get("is_owner")),
                    "role_condition": role.get("access_condition"), "timezone": zone}
            for a in assigned.get(role["id"], [None]):  # type: ignore[list-item]
                a = a or {}
                out.append(SimpleNamespace(
                    **base, assigned=role["id"] if a else None,
                    starts_at=_instant(a.get("starts_at")),
                    expires_at=_instant(a.get("expires_at")),
                    condition=a.get("access_condition"), via=a.get("via")))
        return out

    def grants(self, role_ids: list[int]) -> list[Any]:
        wanted = set(role_ids)
        return [SimpleNamespace(**{k: g.get(k) for k in _GRANT_FIELDS})
                for g in sorted(self.state["grant"].values(), key=lambda g: g["id"])
                if g["role_id"] in wanted]

    def field_rules(self, role_ids: list[int]) -> list[Any]:
        wanted = set(role_ids)
        return [SimpleNamespace(**{k: f.get(k) for k in _FIELD_RULE_FIELDS})
                for f in self.state["field_rule"].values() if f["role_id"] in wanted]

    def colleagues(self, membership_id: int, workspace_id: int,
                   department_id: int | None) -> list[tuple[int, str]]:
        members = self.state["member"]
        team = [(members[link["member_id"]]["user_id"], "team")
                for link in self.state["manager"].values()
                if link["manager_id"] == membership_id and link["member_id"] in members]
        dept = [(m["user_id"], "department") for m in members.values()
                if department_id is not None and m.get("workspace_id") == workspace_id
                and m.get("department_id") == department_id]
        return team + dept

    def shares(self, workspace_id: int, now: dt.datetime
               ) -> tuple[tuple[Share, ...], dt.datetime | None]:
        return (), None


_GRANT_FIELDS = ("id", "role_id", "resource", "action", "scope", "effect", "condition")
_FIELD_RULE_FIELDS = ("role_id", "resource", "field", "mode")


def access_as_of(rbac: RBACProtocol, state: dict[str, dict[Any, dict[str, Any]]], member: dict[str, Any],
                 at: dt.datetime) -> Access:
    """Build one member's :class:`Access` as of ``at`` from historical rows.

    The same :func:`~..resolve.build_access` as live decisions, fed with the
    rewound rows; it is never cached.
    """
    workspace = state["workspace"].get(member["workspace_id"], {})
    row = MembershipRow(member["id"], member["workspace_id"], member["user_id"],
                        member.get("status") or "", member.get("department_id"),
                        member.get("visibility"), workspace.get("plan") or "",
                        workspace.get("policy_version") or 0)
    return build_access(HistoricPolicySource(state), rbac.registry, current_app.config, row,
                        at, cacheable=False)


def _record(rbac: RBACProtocol, res: Resource, record_id: int) -> Any:
    """The record ``record_id`` of ``res`` in any workspace, or None."""
    if res.model is None:
        raise LookupError(f"{res.name} has no records")
    with rbac.system():
        return rbac.db.session.get(res.model, record_id)


def record_seen_by(rbac: RBACProtocol, asker: Access, res: Resource, record_id: int) -> Any:
    """The record ``record_id`` of ``res`` if ``asker`` may view it, else LookupError.

    An answer about a record (who may act on it, and why) tells of its
    existence and of the values its conditions read, so it is given only on
    a record the asker sees themselves: one of their workspace in their
    scope, or one shared with it. Not found and not visible read the same.
    An asker from whom a field of the resource is hidden gets no answer about
    a record either: whether another member's condition (``stage in (won,
    lost)``, ``amount > 100000``) matches it would tell the hidden value.
    """
    record = _record(rbac, res, record_id)
    if record is None or not rbac.can("view", res.name, record, access=asker):
        raise LookupError(f"No {res.name} record #{record_id} in this workspace.")
    hidden = asker.hidden(res.name)
    if hidden:
        raise LookupError(
            f"{', '.join(sorted(hidden))} of {res.name} {'is' if len(hidden) == 1 else 'are'} "
            "hidden from you, and a condition over it would tell its value on a record: "
            "ask about the resource, without a record.")
    return record


def who_could(rbac: RBACProtocol, workspace_id: int, resource: str, record_id: int, at: dt.datetime,
              action: str = "view", *, asker: Access | None = None) -> WhoCould:
    """Return, for every member as of ``at``, whether they could ``action`` the record.

    With ``asker``, the record must be one they may view (:func:`record_seen_by`).
    """
    res = rbac.registry.check_action(resource, action)
    record = (record_seen_by(rbac, asker, res, record_id) if asker is not None
              else _record(rbac, res, record_id))
    if record is None or res.workspace_of(record, workspace_id) != workspace_id:
        raise LookupError(f"no {resource} record #{record_id} in this workspace")
    state, warnings = policy_as_of(rbac, workspace_id, at)
    loader = rbac.parent_loader(rbac.db.session)
    answers = _answers(rbac, state, at, action, resource, record, loader)
    # Workspaces the record's workspace shared with at that instant (their own policy then).
    for share, name in _shares_as_of(rbac, state, workspace_id, at):
        theirs, more = policy_as_of(rbac, share.workspace_id, at)
        warnings += [w for w in more if w not in warnings]
        granted = Share(share.agreement_id, workspace_id,
                        str(state["workspace"][workspace_id].get("name", "")),
                        share.permissions, share.modules)
        answers += _answers(rbac, theirs, at, action, resource, record, loader,
                            share=granted, workspace=name)
    return WhoCould(at, resource, record_id, action, answers, warnings)


def _shown_name(user: Any, member: dict[str, Any]) -> str:
    """A member's name, or the invited address while pending (as Membership.display_name)."""
    if user is None:
        return f"user #{member['user_id']}"
    return str(user.email if member.get("status") == "pending" else user)


def _answers(rbac: RBACProtocol, state: dict[str, dict[Any, dict[str, Any]]], at: dt.datetime,
             action: str, resource: str, record: Any, loader: Any, *,
             share: Share | None = None, workspace: str = "") -> list[Answer]:
    pk = user_pk_column(rbac)
    users = {rbac.user_pk(u): u for u in rbac.db.session.scalars(
        sa.select(rbac.user_model).where(pk.in_(
            [m["user_id"] for m in state["member"].values()])))}
    answers = []
    for member in sorted(state["member"].values(), key=lambda m: m["id"]):
        created = _instant(member.get("created_at"))
        if created is not None and created > at:
            continue  # not yet a member then
        if share is not None and member.get("status") == "pending":
            continue  # someone another workspace invited: not its member, nor the asker's business
        access = access_as_of(rbac, state, member, at)
        if share is not None:
            access = access.derive(shares=(share,))
        decision = decide(access, rbac.registry, action, resource, record, loader)
        answers.append(Answer(member["id"], _shown_name(users.get(member["user_id"]), member),
                              access.roles, decision.allowed, decision.reason, workspace))
    return answers


def _shares_as_of(rbac: RBACProtocol, state: dict[str, dict[Any, dict[str, Any]]], workspace_id: int,
                  at: dt.datetime) -> list[tuple[Share, str]]:
    """Agreements from ``workspace_id`` in force at ``at``, as the receiver's Share
    (its ``workspace_id`` is the receiving workspace here), with the receiver's name."""
    granting_plan = state["workspace"].get(workspace_id, {}).get("plan", "")
    modules = plan_modules(setting("RBAC_PLANS"), granting_plan)
    out = []
    for agreement in state["agreement"].values():
        expires = _instant(agreement.get("expires_at"))
        if agreement.get("status") != "active" or (expires is not None and expires <= at):
            continue
        permissions: dict[tuple[str, str], tuple[Any, ...]] = {}
        for perm in state["agreement_permission"].values():
            if perm["agreement_id"] != agreement["id"]:
                continue
            clauses = shared_clauses(rbac.registry, perm["resource"], perm.get("condition"))
            if clauses is not None:
                permissions[(perm["resource"], perm["action"])] = clauses
        receiving = agreement["receiving_workspace_id"]
        ws = rbac.db.session.get(rbac.models.Workspace, receiving)
        out.append((Share(agreement["id"], receiving, "", permissions, modules),
                    ws.name if ws is not None else f"workspace #{receiving}"))
    return out


# -- who can, now ---------------------------------------------------------------------------


@dataclass
class Path:
    """How one member may (or may not) do an action now: role, inheritance, scope."""

    membership_id: int
    member: str
    status: str
    allowed: bool
    role: str = ""  # the assigned role through which it is granted
    inherited_from: str = ""  # the ancestor role holding the grant, when not ``role``
    scope: str = ""
    condition: str = ""
    reason: str = ""

    @property
    def text(self) -> str:
        """``Sales Rep → inherited from Member → team records where stage = 'new'``."""
        if not self.allowed:
            return self.reason
        parts = [self.role or "Owner"]
        if self.inherited_from:
            parts.append(f"inherited from {self.inherited_from}")
        if self.scope:
            parts.append(f"{self.scope} records" + (f" where {self.condition}"
                                                     if self.condition else ""))
        return " → ".join(parts)


@dataclass
class WhoCan:
    """Who can do ``action`` on ``resource`` now, and which agreements share it."""

    resource: str
    action: str
    paths: list[Path]
    #: Workspaces an agreement in force lets do it too (their members' own roles decide).
    shared_with: list[str]

    @property
    def allowed(self) -> list[Path]:
        return [p for p in self.paths if p.allowed]


def _granting_role(membership: Any, rule_role: str, parents: dict[str, str | None]) -> str:
    """The member's assigned role whose chain holds ``rule_role`` (itself or an ancestor)."""
    for mr in sorted(membership.member_roles, key=lambda mr: mr.id):
        name: str | None = mr.role.name
        while name is not None:
            if name == rule_role:
                return str(mr.role.name)
            name = parents.get(name)
    return rule_role


def who_can(rbac: RBACProtocol, workspace_id: int, resource: str, action: str) -> WhoCan:
    """Answer "who can export deals?" now, for every member of the workspace.

    Each member's live access decides (the same resource-level question as
    menus and buttons: may they do it on at least some records); an allowed
    answer carries its path: the assigned role, the ancestor it is inherited
    from, the scope and the condition. Workspaces an agreement in force
    shares the action with are listed by name only: their members are
    another workspace's to name.
    """
    res = rbac.registry.check_action(resource, action)
    m = rbac.models
    roles = list(rbac.db.session.scalars(sa.select(m.Role).where(m.Role.workspace_id
                                                                  == workspace_id)))
    by_id = {r.id: r.name for r in roles}
    parents = {r.name: by_id.get(r.parent_id) for r in roles}
    paths = []
    memberships = rbac.db.session.scalars(sa.select(m.Membership).where(
        m.Membership.workspace_id == workspace_id).order_by(m.Membership.id))
    for membership in memberships:
        access = rbac.access_for(membership)
        decision = rbac.decide(access, action, res.name)
        path = Path(membership.id, membership.display_name, membership.status,
                    decision.allowed, reason=decision.reason)
        rule = decision.rule
        if decision.allowed and access is not None and access.is_owner:
            path.role = next((mr.role.name for mr in membership.member_roles
                              if mr.role.is_owner), "Owner")
            path.scope = "all"
        elif decision.allowed and rule is not None:
            path.role = _granting_role(membership, rule.role, parents)
            path.inherited_from = rule.role if path.role != rule.role else ""
            path.scope = ", ".join(access.scopes_for(rule))
            path.condition = conditions_text(rule)
        paths.append(path)
    return WhoCan(res.name, action, paths, _shared_with(rbac, workspace_id, res.name, action))


def conditions_text(rule: Any) -> str:
    return describe_clauses(rule.conditions) if rule.conditions else ""


def _shared_with(rbac: RBACProtocol, workspace_id: int, resource: str, action: str) -> list[str]:
    """Names of the workspaces an active, unexpired agreement shares ``action`` with."""
    SA, SP, W = (rbac.models.SharingAgreement, rbac.models.SharingPermission,
                 rbac.models.Workspace)
    now = utcnow()
    wanted = {action, "view"}
    rows = rbac.db.session.execute(
        sa.select(W.name, SP.action).join(SA, SA.receiving_workspace_id == W.id)
        .join(SP, SP.agreement_id == SA.id)
        .where(SA.granting_workspace_id == workspace_id, SA.status == "active",
               sa.or_(SA.expires_at.is_(None), SA.expires_at > now),
               SP.resource == resource, SP.action.in_(wanted)),
        execution_options=BYPASS).tuples().all()
    actions: dict[str, set[str]] = {}
    for name, shared in rows:
        actions.setdefault(name, set()).add(shared)
    return sorted(name for name, shared in actions.items() if wanted <= shared)
