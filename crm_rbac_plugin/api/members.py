"""API endpoints for members: their roles, role assignments and effective access, their
status (deactivate, reactivate) and API tokens, and the workspace's audit trail.

Every change goes through the team and roles services, which hold the rules
the settings pages apply (who may reach whom, the last Owner, one's own
account), so a client of the API can do exactly what the pages let it do.
"""

from __future__ import annotations

from typing import Any

from flask import jsonify, request, url_for
from flask.typing import ResponseReturnValue

from .. import audit, inputs, queries, roles, team
from ..policy import Access
from ..proxies import current_rbac
from .blueprint import (
    active_access,
    bad,
    bp,
    check_keys,
    created,
    forbidden,
    id_of,
    instant,
    json_body,
    not_found,
    require,
    step_up,
)

ASSIGN_KEYS = frozenset({"role_id", "starts_at", "expires_at", "condition"})


def _assignment_json(mr: Any) -> dict[str, Any]:
    return {"id": mr.id, "role_id": mr.role_id, "role": mr.role.name,
            "starts_at": queries.iso(mr.starts_at), "expires_at": queries.iso(mr.expires_at),
            "status": queries.assignment_status(mr), "condition": mr.access_condition}


def _member_json(membership: Any, picture_url: str | None = None) -> dict[str, Any]:
    """A member as the API shows them; ``picture_url`` from :func:`..team.picture_urls`
    (None: no picture the caller may see, so a client shows the initials)."""
    user = membership.user
    return {"id": membership.id, "user_id": membership.user_id, "name": membership.display_name,
            "email": getattr(user, "email", None), "status": membership.status,
            "picture_url": picture_url,
            "department": membership.department.name if membership.department else None,
            "roles": [_assignment_json(mr) for mr in
                      sorted(membership.member_roles, key=lambda mr: mr.id)]}


def _membership_or_404(access: Access, membership_id: int) -> Any:
    membership = queries.membership_in(current_rbac, access.workspace_id, membership_id)
    if membership is None:
        raise not_found("member")
    return membership


def _member_readable(membership_id: int) -> tuple[Access, Any]:
    """A member's data is readable with ``members.view``, and always by themselves."""
    access = active_access()
    if membership_id != access.membership_id:
        access = require("members.view")
    return access, _membership_or_404(access, membership_id)


@bp.get("/members")
def list_members() -> ResponseReturnValue:
    access = require("members.view")
    memberships = queries.workspace_memberships(current_rbac, access.workspace_id)
    pictures = team.picture_urls(current_rbac, access, memberships,
                                 endpoint=team.API_PICTURE_ENDPOINT)
    return jsonify(members=[_member_json(m, pictures.get(m.id)) for m in memberships])


@bp.get("/members/<int:membership_id>/picture")
def member_picture(membership_id: int) -> ResponseReturnValue:
    """The member's profile picture (the bytes), to a member of the same workspace.

    No such member, one of another workspace, an inactive one and one
    without a picture are the same 404: the answer tells nothing more.
    """
    rbac = current_rbac
    picture = team.shown_picture(rbac, active_access(), membership_id)
    if picture is None:
        raise not_found("picture")
    return team.send_picture(picture)


@bp.get("/members/<int:membership_id>/roles")
def member_roles(membership_id: int) -> ResponseReturnValue:
    _, membership = _member_readable(membership_id)
    return jsonify(roles=_member_json(membership)["roles"])


@bp.post("/members/<int:membership_id>/roles")
def assign_role(membership_id: int) -> ResponseReturnValue:
    access = require("members.edit")
    membership = _membership_or_404(access, membership_id)
    step_up()
    body = json_body()
    check_keys(body, ASSIGN_KEYS)
    if "role_id" not in body:
        raise bad("role_id is required", "role_id")
    role = queries.role_in(current_rbac, access.workspace_id, id_of(body["role_id"], "role_id"))
    if role is None:
        raise bad(f"no role {body['role_id']} in this workspace", "role_id")
    rbac = current_rbac
    mr = roles.assign_role(rbac, access, membership, role, starts_at=instant(body, "starts_at"),
                           expires_at=instant(body, "expires_at"),
                           condition=body.get("condition"))
    rbac.db.session.commit()
    return created(_assignment_json(mr), url_for(".member_roles", membership_id=membership.id))


@bp.delete("/members/<int:membership_id>/roles/<int:member_role_id>")
def remove_role(membership_id: int, member_role_id: int) -> ResponseReturnValue:
    access = require("members.edit")
    membership = _membership_or_404(access, membership_id)
    mr = next((mr for mr in membership.member_roles if mr.id == member_role_id), None)
    if mr is None:
        raise not_found("role assignment")
    step_up()
    rbac = current_rbac
    roles.remove_role(rbac, access, mr)
    rbac.db.session.commit()
    return "", 204


@bp.get("/members/<int:membership_id>/access")
def member_access(membership_id: int) -> ResponseReturnValue:
    """The member's effective permissions, each with the roles it comes from."""
    access, membership = _member_readable(membership_id)
    rbac = current_rbac
    member_access = rbac.access_for(membership)
    matrix = queries.effective_matrix(rbac, membership, member_access)
    picture = team.picture_urls(rbac, access, [membership],
                                endpoint=team.API_PICTURE_ENDPOINT).get(membership.id)
    return jsonify(
        member=_member_json(membership, picture),
        is_owner=bool(member_access and member_access.is_owner),
        roles=list(member_access.roles) if member_access else [],
        permissions={cell.permission: cell.to_json()
                     for rows in matrix.values() for row in rows for cell in row.cells})


@bp.post("/members/<int:membership_id>/<any(deactivate, reactivate):verb>")
def change_status(membership_id: int, verb: str) -> ResponseReturnValue:
    """Deactivate or reactivate a member, as the member's settings page does (members.edit,
    and the reach of :func:`..team.deactivate`); answers the member."""
    access = require("members.edit")
    membership = _membership_or_404(access, membership_id)
    rbac = current_rbac
    (team.deactivate if verb == "deactivate" else team.reactivate)(rbac, access, membership)
    rbac.db.session.commit()
    return jsonify(_member_json(membership))


def _token_json(token: Any) -> dict[str, Any]:
    """A token as the member's page lists it: never its secret."""
    return {"id": token.id, "name": token.name, "prefix": token.prefix,
            "created_at": queries.iso(token.created_at),
            "last_used_at": queries.iso(token.last_used_at),
            "expires_at": queries.iso(token.expires_at),
            "revoked_at": queries.iso(token.revoked_at)}


def _manageable(membership_id: int) -> tuple[Access, Any]:
    """The member whose tokens the caller manages: whoever may deactivate them may
    (:func:`..team.may_change_status`; one's own tokens are on one's own page)."""
    access = require("members.edit")
    membership = _membership_or_404(access, membership_id)
    if not team.may_change_status(current_rbac, access, membership):
        raise forbidden("You may not manage this member's API tokens.")
    return access, membership


@bp.get("/members/<int:membership_id>/tokens")
def member_tokens(membership_id: int) -> ResponseReturnValue:
    """A member's API tokens, newest first, revoked ones included."""
    access, membership = _manageable(membership_id)
    return jsonify(tokens=[_token_json(t) for t in team.manageable_tokens(
        current_rbac, access, membership)])


@bp.post("/members/<int:membership_id>/tokens/<int:token_id>/revoke")
def revoke_member_token(membership_id: int, token_id: int) -> ResponseReturnValue:
    """Revoke one of a member's API tokens (:func:`..team.revoke_member_token`); a token
    of another member is a 404. Revoking a revoked token changes nothing."""
    access, membership = _manageable(membership_id)
    rbac = current_rbac
    token = next((t for t in queries.member_tokens(rbac, membership.id) if t.id == token_id),
                 None)
    if token is None:
        raise not_found("token")
    team.revoke_member_token(rbac, access, membership, token)
    rbac.db.session.commit()
    return jsonify(_token_json(token))


@bp.get("/audit")
def audit_events() -> ResponseReturnValue:
    """The workspace's audit trail, newest first, filtered like the audit page (settings.view)."""
    access = require("settings.view")
    try:
        filters = audit.parse_filters(request.args)
    except ValueError as exc:
        raise bad(str(exc), str(exc).partition(":")[0]) from None
    per_page = inputs.whole_number(request.args, "per_page", 50, 1, 200)
    page = inputs.whole_number(request.args, "page", 1, 1, inputs.MAX_ID // per_page)
    rbac = current_rbac
    result = rbac.db.paginate(audit.events_query(rbac, access.workspace_id, filters),
                              page=page, per_page=per_page, error_out=False)
    events = audit.as_read_by(rbac, access, result.items)  # what this reader may learn
    return jsonify(items=[audit.event_json(ev) for ev in events], page=page,
                   per_page=per_page, total=result.total)
