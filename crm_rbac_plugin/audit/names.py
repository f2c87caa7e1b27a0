"""Name what audit events point at: members, roles, departments, workspaces, agreements.

Events store ids (they outlive the rows they name); a page reads them by
name. :func:`load_names` loads, in a few queries, everything one workspace's
trail can point at, and :class:`Names` answers with a name or a neutral
phrase when the row is gone ("a former member", "a deleted role").

What a reader is told about another workspace stays what the agreement
between the two already shows: the other workspace's name, never its
members'. An actor from another workspace (a receiving member who exported
or edited shared records) is "a member of <workspace>".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..loader import BYPASS

if TYPE_CHECKING:
    from ..interface import RBACProtocol

FORMER_MEMBER = "a former member"
DELETED_ROLE = "a deleted role"
DELETED_WORKSPACE = "a deleted workspace"
SYSTEM = "the system"


@dataclass
class Names:
    """Names of the rows one workspace's trail points at, by id."""

    workspace_id: int
    members: dict[int, str] = field(default_factory=dict)
    roles: dict[int, str] = field(default_factory=dict)
    departments: dict[int, str] = field(default_factory=dict)
    workspaces: dict[int, str] = field(default_factory=dict)
    #: agreement id -> (granting workspace id, receiving workspace id, shared resources)
    agreements: dict[int, tuple[int, int, tuple[str, ...]]] = field(default_factory=dict)
    #: membership id of another workspace -> that workspace's id
    foreign_members: dict[int, int] = field(default_factory=dict)
    #: the workspace's members by user key (as text: a host's key may be a UUID)
    users: dict[str, str] = field(default_factory=dict)
    #: the workspace's time zone, in which access conditions are read
    timezone: str = "UTC"

    def member(self, ident: Any) -> str:
        return self.members.get(_int(ident), FORMER_MEMBER)  # type: ignore[arg-type]

    def role(self, ident: Any) -> str:
        return self.roles.get(_int(ident), DELETED_ROLE)  # type: ignore[arg-type]

    def department(self, ident: Any) -> str:
        if ident is None:
            return "no department"
        return self.departments.get(_int(ident), "a deleted department")  # type: ignore[arg-type]

    def user(self, ident: Any) -> str:
        """The member of this workspace who is user ``ident`` (an event's user key)."""
        return self.users.get(str(ident), FORMER_MEMBER) if ident is not None else SYSTEM

    def workspace(self, ident: Any) -> str:
        return self.workspaces.get(_int(ident), DELETED_WORKSPACE)  # type: ignore[arg-type]

    def actor(self, membership_id: Any, user_id: Any) -> str:
        """Who acted: a member's name, "a member of <workspace>", or the system."""
        if membership_id is None:
            return SYSTEM if user_id is None else FORMER_MEMBER
        if membership_id in self.members:
            return self.members[membership_id]
        other = self.foreign_members.get(membership_id)
        if other is not None:
            return f"a member of {self.workspace(other)}"
        return FORMER_MEMBER

    def agreement(self, ident: Any, values: dict[str, Any] | None = None) -> str:
        """``Sharing agreement Acme Sales → Beta Education (leads, deals)``."""
        values = values or {}
        known = self.agreements.get(_int(ident))  # type: ignore[arg-type]
        granting = values.get("granting_workspace_id", known[0] if known else None)
        receiving = values.get("receiving_workspace_id", known[1] if known else None)
        text = f"Sharing agreement {self.workspace(granting)} → {self.workspace(receiving)}"
        if known and known[2]:
            text += f" ({', '.join(known[2])})"
        return text


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def load_names(rbac: RBACProtocol, workspace_id: int, events: Iterable[Any] = ()) -> Names:
    """Load the names ``workspace_id``'s trail (and ``events``' actors) can point at."""
    m = rbac.models
    session = rbac.db.session
    names = Names(workspace_id)
    M = m.Membership
    for membership in session.scalars(sa.select(M).where(M.workspace_id == workspace_id),
                                      execution_options=BYPASS):
        names.members[membership.id] = membership.display_name
        names.users[str(membership.user_id)] = membership.display_name
    R, D = m.Role, m.Department
    names.roles = dict(session.execute(sa.select(R.id, R.name).where(
        R.workspace_id == workspace_id), execution_options=BYPASS).tuples().all())
    names.departments = dict(session.execute(sa.select(D.id, D.name).where(
        D.workspace_id == workspace_id), execution_options=BYPASS).tuples().all())
    SA, SP = m.SharingAgreement, m.SharingPermission
    rows = session.execute(sa.select(SA.id, SA.granting_workspace_id, SA.receiving_workspace_id)
                           .where(sa.or_(SA.granting_workspace_id == workspace_id,
                                         SA.receiving_workspace_id == workspace_id)),
                           execution_options=BYPASS).tuples().all()
    shared: dict[int, set[str]] = {}
    for agreement_id, resource in session.execute(
            sa.select(SP.agreement_id, SP.resource).where(SP.agreement_id.in_(
                [r[0] for r in rows] or [-1])), execution_options=BYPASS).tuples():
        shared.setdefault(agreement_id, set()).add(resource)
    names.agreements = {a: (g, r, tuple(sorted(shared.get(a, ()))) ) for a, g, r in rows}
    actors = {ev.actor_membership_id for ev in events} - set(names.members) - {None}
    if actors:
        names.foreign_members = dict(session.execute(sa.select(M.id, M.workspace_id).where(
            M.id.in_(actors)), execution_options=BYPASS).tuples().all())
    wanted = {workspace_id, *names.foreign_members.values()}
    wanted.update(x for a in rows for x in a[1:])
    wanted.update(_int((ev.detail or {}).get(k)) for ev in events
                  for k in ("receiving_workspace_id", "granting_workspace_id"))
    W = m.Workspace
    names.timezone = session.scalar(sa.select(W.timezone).where(W.id == workspace_id),
                                    execution_options=BYPASS) or "UTC"
    names.workspaces = dict(session.execute(sa.select(W.id, W.name).where(
        W.id.in_([w for w in wanted if w is not None])), execution_options=BYPASS).tuples().all())
    return names
