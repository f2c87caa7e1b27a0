"""The choices of record forms' selects: client, deal and owner.

A select offers only what the member may pick, so that a pick from the
list is never refused when saved:

* **Records** (a client, a deal) come from the member's filtered query *and*
  the current workspace (:func:`own_workspace`): a record another workspace
  shares with theirs is visible, but a record of theirs can never point at
  it (the plugin's flush guard refuses a link across workspaces), so it is
  not offered.
* **Owners** are the active members of the workspace the member may give a
  new record to: those inside the scopes of the member's ``view`` and
  ``create`` grants (their team for a team scope). A member who may manage
  the record they edit may hand it to anyone (the flush guard lets managers
  reassign), so an edit offers every active member.

A value outside the choices is refused at the field (the owner select's
message names the rule that limits it) before anything is written.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_login import current_user
from wtforms import SelectChoice

from ..extensions import db
from ..models import Client, User
from ..rbac_setup import rbac

#: The wording of a refused pick when no rule is known (outside a member's request).
NOT_OFFERED = "Not a valid choice: pick one of the members listed."


def own_workspace(model: Any) -> Any:
    """The criterion keeping ``model``'s rows of the current workspace only (none outside one).

    The query filter adds what the member may see; this removes what another
    workspace shares with theirs, which no record of theirs may reference.
    """
    access = rbac.current_access()
    return model.workspace_id == (access.workspace_id if access is not None else None)


def client_choices(record: Any, hidden: frozenset[str] | set[str]) -> list[SelectChoice]:
    """Clients of the workspace the member can see, plus the record's current one.

    ``hidden``: the client fields hidden from the member; a hidden name is shown as the id.
    """
    if "name" in hidden:
        rows = [(cid, f"Client #{cid}") for cid in db.session.scalars(
            sa.select(Client.id).where(own_workspace(Client)).order_by(Client.id))]
    else:
        rows = list(db.session.execute(sa.select(Client.id, Client.name)
                                       .where(own_workspace(Client)).order_by(Client.name)))
    choices = [SelectChoice("", "— No client —"),
               *(SelectChoice(str(cid), name) for cid, name in rows)]
    current = getattr(record, "client_id", None)
    if current is not None and current not in {cid for cid, _ in rows}:
        choices.append(SelectChoice(str(current), "Current client (not visible to you)"))
    return choices


def assignable(resource: str) -> tuple[frozenset[Any] | None, str]:
    """The user ids the member may give a new ``resource`` record to (None: anyone), and why.

    The union of the scopes of the member's allow rules for ``create``,
    intersected with the same for ``view`` (creating needs both). Conditions
    and denies on other fields are left to the flush guard. The reason names
    the rules, for a refused pick.
    """
    access = rbac.current_access()
    if access is None:
        return frozenset(), NOT_OFFERED
    if access.is_owner:
        return None, ""
    reach: frozenset[Any] | None = None
    described: list[str] = []
    for action in ("view", "create"):
        allows, _ = access.rules_for(resource, action)
        users: set[Any] = set()
        for rule in allows:
            described.append(rule.describe())
            for scope in access.scopes_for(rule):
                if scope == "all":
                    return None, ""
                users |= _scope_users(access, scope)
        reach = frozenset(users) if reach is None else reach & users
    why = (f"You may give {resource} records only to members within your scope "
           f"({'; '.join(dict.fromkeys(described))}).")
    return reach or frozenset(), why


def _scope_users(access: Any, scope: str) -> set[Any]:
    if scope == "team":
        return {access.user_id, *access.team_user_ids}
    if scope == "department":
        return {access.user_id, *access.department_user_ids}
    return {access.user_id}


def owner_choices(resource: str, record: Any) -> tuple[list[SelectChoice], str]:
    """The active members the member may make owner of ``record`` (new when None), and the
    reason a member is not offered."""
    access = rbac.current_access()
    m = rbac.models
    rows = db.session.execute(
        sa.select(User.id, User.name)
        .join(m.Membership, m.Membership.user_id == User.id)
        .where(m.Membership.workspace_id == (access.workspace_id if access else None),
               m.Membership.status == "active")
        .order_by(User.name)).all()
    reach, why = (None, "") if record is not None else assignable(resource)
    choices = [SelectChoice(str(uid), name) for uid, name in rows
               if reach is None or uid in reach]
    if record is not None:
        if record.owner_id is None:
            choices.insert(0, SelectChoice("", "Unassigned"))
        elif record.owner_id not in {uid for uid, _ in rows}:
            choices.append(SelectChoice(str(record.owner_id),
                                        f"{record.owner} (no longer a member)"))
    return choices, why or NOT_OFFERED


def default_owner(choices: list[SelectChoice]) -> int | None:
    """The signed-in member when they are among ``choices``, else nobody preselected."""
    return current_user.id if str(current_user.id) in {c.value for c in choices} else None

