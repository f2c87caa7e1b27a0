"""Forms are bound to the workspace they were rendered in.

The session decides the workspace of every write: a form opened in one
workspace and submitted after the user switched workspace (in another tab)
would write its record into the other workspace, whose members the first
never meant to show it to. So every form that carries a CSRF token also
carries the workspace it was rendered for (:func:`field`, added by the
shared ``csrf`` and ``form_start`` macros, next to the token), and the
plugin's request pass (:func:`refuse_stale_form`) refuses a session write
whose form names another workspace than the current one with a 409 naming
both, before the view runs: nothing is written.

A request without the field (the JSON API, a form of a host that does not
use the macros) is not judged here; the workspace switch itself carries none,
so a stale tab can always switch.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template, request
from markupsafe import Markup

from . import identity, workspaces
from .interface import RBACProtocol

#: The form field naming the workspace a form was rendered in.
FIELD = "rbac_workspace"

#: Methods that never write: their forms are not judged.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def field(rbac: RBACProtocol) -> Markup:
    """The hidden input naming the current workspace (nothing outside one)."""
    workspace_id = identity.current_workspace_id(rbac)
    if workspace_id is None:
        return Markup("")
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, workspace_id)


def refuse_stale_form(rbac: RBACProtocol) -> Response | None:
    """A 409 for a write whose form was rendered in another workspace than the current one."""
    if request.method in SAFE_METHODS or FIELD not in request.form:
        return None
    current = identity.current_workspace_id(rbac)
    posted = request.form.get(FIELD, "")
    if current is None or posted == str(current):
        return None
    form_ws = _workspace_name(rbac, posted)
    current_ws = _workspace_name(rbac, str(current)) or "another workspace"
    message = (f"This page belongs to {form_ws or 'another workspace'}, but you have since "
               f"switched to {current_ws}: nothing was saved. Switch back, or reload the page "
               f"to fill it in for {current_ws}.")
    if request.accept_mimetypes.best == "application/json" or request.is_json:
        response = jsonify(error="workspace_changed", message=message, field=FIELD)
    else:
        response = Response(render_template("rbac/stale_form.html", message=message))
    response.status_code = 409
    return response


def _workspace_name(rbac: RBACProtocol, posted: str) -> str | None:
    """The name of a workspace the user belongs to, by the id a form posted (None otherwise).

    Only the user's own workspaces are named: a forged id learns nothing.
    """
    if not posted.isdigit() or len(posted) > 18:
        return None
    mine: Any = {str(ws.id): ws.name
                 for ws in workspaces.switchable(rbac, identity.signed_in_user())}
    return mine.get(posted)
