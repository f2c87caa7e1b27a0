"""The workspace switch: ``POST <settings prefix>/workspace``.

The route writes ``session[RBAC_SESSION_KEY]``, the workspace the user acts
in, and only to a workspace where the user is an active member (anything
else is a 403 that leaves the session alone), so the session never names a
workspace the user could not pick. The form carries a CSRF token: a
cross-site POST must not move a user into another workspace, where their
next write would land. A session that has idled or lived longer than the
target workspace allows ends instead (:func:`..security.enforce.check_switch`).
Single-tenant mode has nothing to switch: 404.
The ``workspace_switcher`` macro (``rbac/macros/workspace_switcher.html``)
renders the forms that post here.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request

from .. import workspaces
from ..config import setting
from ..decorators import login_required
from ..identity import set_workspace, signed_in_user
from ..pages import ConfirmForm, not_found
from ..policy import Decision
from ..proxies import current_rbac
from ..security import enforce
from ..urls import safe_next
from .blueprint import bp


@bp.post("/workspace")
@login_required
def switch_workspace() -> Any:
    """Make another workspace current, if the user is an active member there."""
    if setting("RBAC_SINGLE_TENANT"):
        return not_found()
    rbac = current_rbac
    if not ConfirmForm().validate_on_submit():
        return rbac.refusal(Decision(False, "The form expired; reload the page and try again."),
                            400)
    wanted = request.form.get("workspace_id", type=int)
    target = next((ws for ws in workspaces.switchable(rbac, signed_in_user())
                   if ws.id == wanted), None)
    if target is None:
        return rbac.refusal(Decision(False, "You are not an active member of that workspace."),
                            403)
    ended = enforce.check_switch(rbac, target.id)
    if ended is not None:
        return ended
    set_workspace(target.id)
    flash(f"Switched to {target.name}.", "success")
    # The page the user was on belongs to the old workspace: go where the form says.
    return redirect(safe_next(request.form.get("next"), request.script_root + "/"))
