"""API endpoints of the workspace lifecycle (:mod:`..lifecycle`).

- ``POST /workspaces`` ``{"name"}``: any signed-in user creates a workspace
  and becomes its Owner (201).
- ``POST /workspaces/restore`` ``{"workspace_id"}``: an Owner of a deleted
  workspace restores it within its grace period (404 for anyone else, 409
  once the grace period is over).
- Both act for the account, outside any one workspace, so they need a
  signed-in session: a bearer token acts as its member in its workspace
  only and gets 403 ``session_required``.
- ``POST /workspace/transfer`` ``{"membership_id", "password"}``: the Owner
  makes an active member the Owner and becomes an Admin. An account with
  two-factor authentication confirms with a recent MFA check of its
  signed-in session instead of the password, so a bearer token alone never
  transfers it (403 ``field: "mfa"``).
- ``DELETE /workspace`` ``{"confirm"}``: the Owner deletes the current
  workspace by sending its exact name, from a session that passed a recent
  MFA check when the Owner is enrolled or must be (:func:`.blueprint.step_up`:
  a bearer token of such an Owner gets 403 ``mfa_step_up_required``).
- ``GET /workspace/export``: the Owner's full export (a zip of JSON and CSV).

Refusals are the service's: 400 naming the field, 403, 404, 409; nothing changes.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask.typing import ResponseReturnValue

from .. import lifecycle
from ..identity import request_state, signed_in_user
from ..proxies import current_rbac
from ..security import stepup
from .blueprint import ApiError, bp, check_keys, created, integers, json_body, step_up, string


def _workspace_json(ws: Any) -> dict[str, Any]:
    return {"id": ws.id, "name": ws.name, "slug": ws.slug, "plan": ws.plan,
            "deleted_at": ws.deleted_at.isoformat() + "Z" if ws.deleted_at else None,
            "purge_after": ws.purge_after.isoformat() + "Z" if ws.purge_after else None}


def _refuse_token(what: str) -> None:
    """Refuse a bearer token an action of the account, outside the token's workspace."""
    if request_state().token_auth:
        raise ApiError(403, "session_required",
                       f"An API token acts only in its own workspace: {what} needs a "
                       "signed-in session.")


@bp.post("/workspaces")
def create_workspace() -> ResponseReturnValue:
    """Create a workspace; the caller becomes its Owner."""
    _refuse_token("creating a workspace")
    body = json_body()
    check_keys(body, frozenset({"name"}))
    ws = lifecycle.create_for_user(current_rbac, signed_in_user(), body.get("name"))
    current_rbac.db.session.commit()
    return created(_workspace_json(ws), f"/workspaces/{ws.id}")


@bp.post("/workspaces/restore")
def restore_workspace() -> ResponseReturnValue:
    """Restore a deleted workspace the caller owns."""
    _refuse_token("restoring a workspace")
    body = json_body()
    check_keys(body, frozenset({"workspace_id"}))
    integers(body, ("workspace_id",))
    ws_id = body.get("workspace_id")
    if lifecycle.owner_membership(current_rbac, signed_in_user(), ws_id) is None:
        raise ApiError(404, "not_found", "No deleted workspace of yours has that id.",
                       "workspace_id")
    ws = lifecycle.restore_workspace(current_rbac, signed_in_user(), ws_id)
    current_rbac.db.session.commit()
    return jsonify(_workspace_json(ws))


@bp.post("/workspace/transfer")
def transfer_ownership() -> ResponseReturnValue:
    """Make another active member the Owner; the caller becomes an Admin."""
    body = json_body()
    check_keys(body, frozenset({"membership_id", "password"}))
    integers(body, ("membership_id",))
    password = string(body, "password")
    state = stepup.mfa_state()
    enrolled = bool(state and state.enrolled)
    fresh = bool(state and not request_state().token_auth and state.fresh())
    target = lifecycle.transfer_ownership(
        current_rbac, current_rbac.current_access(), body.get("membership_id"),
        user=signed_in_user(), password=password, mfa_enrolled=enrolled, mfa_fresh=fresh)
    current_rbac.db.session.commit()
    return jsonify(owner_membership_id=target.id, owner=target.display_name)


@bp.delete("/workspace")
def delete_workspace() -> ResponseReturnValue:
    """Delete the current workspace, restorable by its Owners during the grace period."""
    body = json_body()
    check_keys(body, frozenset({"confirm"}))
    access = current_rbac.current_access()
    if access is not None and access.is_owner:  # anyone else is refused by the service
        step_up("the deletion of a workspace")
    ws = lifecycle.delete_workspace(current_rbac, access, body.get("confirm"))
    current_rbac.db.session.commit()
    return jsonify(_workspace_json(ws))


@bp.get("/workspace/export")
def export_workspace() -> ResponseReturnValue:
    """The current workspace's full export, a zip (Owners only)."""
    name, data = lifecycle.export_zip(current_rbac, current_rbac.current_access())
    current_rbac.db.session.commit()
    return Response(data, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
