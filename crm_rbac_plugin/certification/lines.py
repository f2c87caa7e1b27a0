"""A certification run's lines: which members it lists, with the roles held now that
list them and where each role comes from, kept current while the run is open.

A line names every role that makes its member privileged (or, for a run
over a resource, lets them view it) and is held now (started and not expired,
whatever its weekday, hour or network condition says): the member's own
assignments (``source: "direct"``) and the roles their department gives
them (``source: "department"``, with the department's name), inherited
grants counted. A decision is about the line the reviewer saw, so:

* :func:`line_changes` says how a member's line differs from what is stored
  ("gained Sales Admin (via department Sales); lost Deals lead");
* :func:`pending_changes` lists what the run does not show yet: a member
  listed since the run started, a changed undecided line, a role given after
  a decision;
* :func:`refresh_run` brings an open run's lines up to date: an undecided
  line takes the roles in force now (it is reviewed as it now reads), a
  member decided before gaining a role gets a new line for their roles, and
  a member privileged since the run started gets a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..oversight import viewas
from ..oversight.history import who_can
from ..roles import effective_specs, is_privileged, member_group_roles
from ..roles.invariants import assignments_in_force
from ..security.sessions import ADMIN_RESOURCES
from ..security.sessions import is_privileged as is_privileged_access

if TYPE_CHECKING:
    from ..interface import RBACProtocol

Key = tuple[str, int | None, int | None]


def _makes_privileged(role: Any) -> bool:
    return is_privileged(role) or any(
        s.effect == "allow" and s.action == "manage" and s.resource in ADMIN_RESOURCES
        for s in effective_specs(role))


def _grants_resource(role: Any, resource: str) -> bool:
    return bool(role.is_owner) or any(s.effect == "allow" and s.resource == resource
                                      for s in effective_specs(role))


def _entries(rbac: RBACProtocol, membership: Any, test: Any) -> list[dict[str, Any]]:
    """The member's roles in force now passing ``test``: direct ones, then the department's."""
    out: list[dict[str, Any]] = [
        {"source": "direct", "member_role_id": mr.id, "role_id": mr.role_id,
         "role": mr.role.name} for mr in assignments_in_force(membership) if test(mr.role)]
    out += [{"source": "department", "department_role_id": dr.id, "role_id": dr.role_id,
             "role": dr.role.name, "department_id": dr.department_id,
             "department": dr.department.name}
            for dr in member_group_roles(rbac, membership) if test(dr.role)]
    return out


def key_of(entry: dict[str, Any]) -> Key:
    """What identifies a line's role: its source, its assignment and its role."""
    if entry.get("source") == "department":
        return "department", entry.get("department_role_id"), entry.get("role_id")
    return "direct", entry.get("member_role_id"), entry.get("role_id")


def label(entry: dict[str, Any]) -> str:
    """``Sales Admin`` or ``Sales Admin (via department Sales)``."""
    if entry.get("source") == "department":
        return f"{entry.get('role')} (via department {entry.get('department')})"
    return str(entry.get("role"))


def line_changes(stored: list[dict[str, Any]], current: list[dict[str, Any]], *,
                 gained_only: bool = False) -> str:
    """How ``current`` differs from ``stored``, in words ("" when it does not)."""
    old, new = {key_of(e) for e in stored or []}, {key_of(e) for e in current}
    gained = [label(e) for e in current if key_of(e) not in old]
    lost = [] if gained_only else [label(e) for e in stored or [] if key_of(e) not in new]
    parts = ([f"gained {', '.join(gained)}"] if gained else []) + (
        [f"lost {', '.join(lost)}"] if lost else [])
    return "; ".join(parts)


def candidates(rbac: RBACProtocol, workspace_id: int, resource: str = "") -> list[dict[str, Any]]:
    """The members a run lists now: ``{membership, why, roles}``, in membership order.

    A member is privileged by the roles they hold, whatever each role's condition
    says at this instant and from this address: a condition limits when and
    where a role applies, never whether its holder is reviewed, so the run
    does not depend on the hour or on the reviewer's network.
    """
    m = rbac.models
    members = rbac.db.session.scalars(sa.select(m.Membership).where(
        m.Membership.workspace_id == workspace_id, m.Membership.status == "active")
        .order_by(m.Membership.id)).all()
    with_access = set()
    if resource:
        with_access = {p.membership_id for p in who_can(rbac, workspace_id, resource,
                                                         "view").allowed}
    out = []
    for membership in members:
        why, roles = [], _entries(rbac, membership, _makes_privileged)
        if roles or is_privileged_access(rbac.access_for(membership)):
            why.append("privileged")
        if membership.id in with_access:
            why.append("resource")
            roles += [r for r in _entries(rbac, membership,
                                          lambda role: _grants_resource(role, resource))
                      if r not in roles]
        if why:
            out.append({"membership": membership, "why": why, "roles": roles})
    return out


@dataclass
class Change:
    """One way a run's lines differ from the roles in force: ``item`` None is a new line."""

    membership: Any
    item: Any
    line: dict[str, Any] | None
    words: str

    @property
    def roles(self) -> list[dict[str, Any]]:
        return self.line["roles"] if self.line is not None else []


def _latest_items(run: Any) -> dict[int, Any]:
    latest: dict[int, Any] = {}
    for item in sorted(run.items, key=lambda i: i.id or 0):
        latest[item.membership_id] = item
    return latest


def pending_changes(rbac: RBACProtocol, run: Any) -> list[Change]:
    """What ``run`` does not show yet of the roles in force now (empty for a closed run)."""
    if run.status != "open":
        return []
    current = {c["membership"].id: c for c in candidates(rbac, run.workspace_id, run.resource)}
    latest = _latest_items(run)
    out = []
    for membership_id, item in latest.items():
        line = current.get(membership_id)
        words = line_changes(item.roles, line["roles"] if line else [],
                             gained_only=item.decision is not None)
        if words:
            out.append(Change(line["membership"] if line else None, item, line,
                              f"{item.member_name} {words}"))
    for membership_id, line in current.items():
        if membership_id not in latest:
            names = ", ".join(label(e) for e in line["roles"]) or "no listed role"
            out.append(Change(line["membership"], None, line,
                              f"{line['membership'].display_name} is listed now ({names})"))
    return out


def pending_words(rbac: RBACProtocol, run: Any) -> list[str]:
    """:func:`pending_changes` in words, as the run page, the API and the CLI show them."""
    return [change.words for change in pending_changes(rbac, run)]


def refresh_run(rbac: RBACProtocol, run: Any) -> list[str]:
    """Bring an open run's lines up to date (:func:`pending_changes`); what changed, in words.

    An undecided line takes the roles in force now; a decided member who
    gained a role, and a member listed since the run started, get a new,
    undecided line. The caller (:func:`.runs.refresh`, which checks the
    reviewer and audits) commits. Viewing as a member writes nothing, so the
    lines are left as they are then (decisions are refused then too).
    """
    if viewas.active():
        return []
    changes = pending_changes(rbac, run)
    for change in changes:
        if change.item is not None and change.item.decision is None:
            change.item.roles = change.roles
            if change.line is not None:
                change.item.why = ",".join(change.line["why"])
            continue
        membership = change.membership
        run.items.append(rbac.models.CertificationItem(
            membership_id=membership.id, member_name=membership.display_name,
            why=",".join(change.line["why"]) if change.line else "", roles=change.roles,
            decided_by_name="", outcome="", reason=""))
    if changes:
        rbac.db.session.flush()
    return [c.words for c in changes]
