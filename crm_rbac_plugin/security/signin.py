"""Roles that let their members sign in (``Role.sign_in``, "Administrate Login") and use
the JSON API (``Role.api_access``, "API Access: Limit API endpoint access").

A role lets its members sign in unless an Owner or Admin turns that off
(the role editor's "Members with this role may sign in", the API's
``sign_in``). A member whose roles assigned and in force all have it off
uses the workspace through API tokens only, as an integration's account
does; a role they inherit from does not lift it. An Owner always may.

* **Sessions:** every request of a browser session in that workspace is
  refused with a 403 naming why, but signing out and switching workspace
  (:data:`ALWAYS_REACHABLE`): the rule holds on the next request after a
  role changes, as any permission does, because it is part of the member's
  :class:`~..policy.Access` (``sign_in``), read with the rest of the policy.
* **The sign-in form:** a host asks :meth:`.auth.SignInGuard.open_workspaces`
  for the workspaces the account may sign in to, refuses an account with
  none as it refuses a wrong password (a message of its own would tell
  whoever guesses it that the password is right), and starts in one of
  them. A host that does not ask still gets the refusal of every page.
* **API tokens** are not sessions: they keep working.

API access is the same rule the other way round: a role lets its members
use API tokens unless it is turned off (the role editor's "No API access",
the API's ``api_access``). A member whose roles assigned and in force all
have it off uses the workspace through a browser session only: every
request made with one of their tokens is refused with
``403 {"error": "api_access_denied"}`` (:func:`refuse_token`), on the next
request after a role changes. An Owner always may.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import jsonify

from ..loader import BYPASS
from ..policy import Decision

if TYPE_CHECKING:
    from ..identity import Visit
    from ..interface import RBACProtocol

__all__ = ["ALWAYS_REACHABLE", "API_MESSAGE", "MESSAGE", "open_workspaces", "refuse_session",
           "refuse_token"]

#: What a session refused here may still do: sign out and move to another workspace.
ALWAYS_REACHABLE = frozenset({"rbac_settings.switch_workspace"})

MESSAGE = ("Your roles in this workspace do not let you sign in: it is used through API "
           "tokens only. Switch to another workspace, or ask an Owner or Admin.")


def refuse_session(rbac: RBACProtocol, endpoint: str, facts: Visit) -> Any:
    """The refusal of a session request in a workspace whose roles do not let the
    member sign in, or None. Viewing as another member, the viewer's own roles decide."""
    if facts.state.token_auth or endpoint in ALWAYS_REACHABLE \
            or endpoint in facts.settings.exempt_endpoints:
        return None
    access = rbac.current_access()
    real = facts.state.real_access or access
    if real is None or real.sign_in:
        return None
    return rbac.refusal(Decision(False, MESSAGE), 403)


API_MESSAGE = ("Your roles in this workspace do not let you use the API: sign in with a "
               "browser instead, or ask an Owner or Admin.")


def refuse_token(rbac: RBACProtocol) -> Any:
    """The refusal of an API token's request in a workspace whose roles do not let the
    member use the API, or None."""
    access = rbac.current_access()
    if access is None or access.api_access:
        return None
    response = jsonify(error="api_access_denied", message=API_MESSAGE)
    response.status_code = 403
    return response


def open_workspaces(rbac: RBACProtocol, user: Any) -> list[int]:
    """The ids of the live workspaces where ``user`` is an active member whose roles
    let them sign in, by membership id (the first is where a sign-in starts)."""
    M, W = rbac.models.Membership, rbac.models.Workspace
    ids = rbac.db.session.execute(
        sa.select(M.id, M.workspace_id).join(W, W.id == M.workspace_id)
        .where(M.user_id == rbac.user_pk(user), M.status == "active", W.deleted_at.is_(None))
        .order_by(M.id), execution_options=BYPASS).all()
    out = []
    for membership_id, workspace_id in ids:
        access = rbac.access_for(membership_id)
        if access is not None and access.sign_in:
            out.append(workspace_id)
    return out


def deactivated_everywhere(rbac: RBACProtocol, user: Any) -> bool:
    """Whether ``user`` was deactivated in their workspaces, is active in none and is
    invited to none: such an account signs in nowhere, and a session it still holds
    acts for it nowhere either (it creates no workspace).

    An account with no membership at all, or Pending ones only, is not
    (an invited account has no password until it accepts).
    """
    M = rbac.models.Membership
    statuses = set(rbac.db.session.scalars(
        sa.select(M.status).where(M.user_id == rbac.user_pk(user)), execution_options=BYPASS))
    return "inactive" in statuses and not statuses & {"active", "pending"}
