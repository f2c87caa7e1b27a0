"""The JSON API: roles, assignments and members' effective access.

The same service functions as the settings pages (:mod:`..roles`), so the same
rules; this module only authenticates, parses and validates JSON, and turns
the service's exceptions into JSON errors::

    {"error": "validation_error", "message": "unknown scope 'galaxy' ...",
     "field": "permissions[0].scope"}

with 400 (bad input of any kind, never a 500), 401 (no or bad credentials),
403 (refused), 404 (unknown id, or an id of another workspace) and 413 (body
over ``RBAC_API_MAX_BODY``).

Authentication: ``Authorization: Bearer <token>`` (a personal API token,
:mod:`..tokens`), acting in the token's workspace with its member's access;
or the browser session, whose state-changing requests must then carry the
CSRF token in an ``X-CSRFToken`` header. The blueprint is exempt from
Flask-WTF's global check so token requests need none.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_input_stream

from .. import audit, inputs, queries, roles, sharing
from ..config import setting
from ..errors import PermissionDenied, UnknownResource, ValidationError
from ..identity import request_state, signed_in_user
from ..policy import Access
from ..proxies import current_rbac
from ..registry import SCOPES
from .openapi import openapi_document

bp = Blueprint("rbac_api", __name__)

#: Methods that change state: refused without a CSRF token on session requests.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ROLE_KEYS = frozenset({"name", "description", "parent_id", "permissions", "scopes",
                       "field_rules"})
CLONE_KEYS = frozenset({"name", "description"})
ASSIGN_KEYS = frozenset({"role_id", "starts_at", "expires_at"})
AGREEMENT_KEYS = frozenset({"workspace", "permissions", "notes", "expires_at"})


class ApiError(Exception):
    """A refusal answered as ``{"error", "message", "field"}`` with ``status``."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field


def register(app: Flask) -> None:
    """Mount the API under ``RBAC_API_URL_PREFIX`` (None: not at all).

    The blueprint is exempted from Flask-WTF's CSRFProtect, which would refuse
    token requests; :func:`_authenticate` checks session requests itself. If
    CSRFProtect is set up after this extension, the exemption is made on the
    first request instead (before CSRFProtect's own hook runs).
    """
    prefix = setting("RBAC_API_URL_PREFIX", app)
    if prefix is None:
        return
    app.register_blueprint(bp, url_prefix=prefix)
    if not _exempt_from_csrf(app):
        app.before_request(_exempt_late)


def _exempt_from_csrf(app: Flask) -> bool:
    csrf = app.extensions.get("csrf")
    if csrf is None:
        return False
    csrf.exempt(bp)  # a set: repeating it is harmless
    return True


def _exempt_late() -> None:
    """Exempt the API once a CSRFProtect set up after this extension exists."""
    _exempt_from_csrf(current_app)  # type: ignore[arg-type]


# -- errors -----------------------------------------------------------------------


def _error(status: int, error: str, message: str, field: str | None = None) -> Any:
    response = jsonify(error=error, message=message, field=field)
    response.status_code = status
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    current_rbac.db.session.rollback()
    return _error(exc.status, exc.error, exc.message, exc.field)


@bp.errorhandler(ValidationError)
def _validation_error(exc: ValidationError) -> Any:
    current_rbac.db.session.rollback()
    return _error(exc.status, "conflict" if exc.status == 409 else "validation_error",
                  exc.message, exc.field)


@bp.errorhandler(PermissionDenied)
def _permission_denied(exc: PermissionDenied) -> Any:
    current_rbac.db.session.rollback()
    return _error(403, "forbidden", exc.message, exc.field)


def _out_of_range(exc: Exception) -> Any:
    current_rbac.db.session.rollback()
    return _error(400, "validation_error", inputs.OUT_OF_RANGE_MESSAGE)


for _exc in inputs.OUT_OF_RANGE:
    bp.register_error_handler(_exc, _out_of_range)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    names = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 413: "payload_too_large"}
    status = exc.code or 500
    current_rbac.db.session.rollback()
    return _error(status, names.get(status, "http_error"), exc.description or exc.name)


def _forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def _not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"No {what} with that id in this workspace.")


def _bad(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "validation_error", message, field)


# -- authentication and request checks --------------------------------------------------


def _limit_body(limit: int) -> None:
    """Cap this request's body at ``limit`` bytes: reading past it is a 413.

    Flask 3.1 lets a request set its own ``max_content_length``. On Flask 3.0
    that property is read-only, so the body stream, which Werkzeug opens once
    and caches on the request, is opened here with the same cap (a chunked
    body carries no ``Content-Length`` to check up front).
    """
    try:
        request.max_content_length = limit
    except AttributeError:  # Flask 3.0
        req = request._get_current_object()  # type: ignore[attr-defined]
        if "stream" not in req.__dict__:
            req.__dict__["stream"] = get_input_stream(req.environ, max_content_length=limit)


@bp.before_request
def _authenticate() -> None:
    """Limit the body, find who is asking, and check CSRF for session writes."""
    if request.endpoint == "rbac_api.openapi":
        return
    limit = setting("RBAC_API_MAX_BODY")
    _limit_body(limit)
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large",
                       f"The request body is larger than {limit} bytes.")
    rbac = current_rbac
    if "Authorization" in request.headers:
        if not request_state().token_auth:
            # The host may not have registered rbac.load_user_from_request with
            # Flask-Login (or a session user was loaded first): the token decides.
            user = rbac.load_user_from_request(request)
            if user is None:
                raise ApiError(401, "unauthorized",
                               "The API token is invalid, expired or revoked.")
            # load_user_from_request made the token's user the request's user
            # (identity.signed_in_user); no session cookie is written, so a
            # token never becomes a browser session.
            request_state().reset()
    elif signed_in_user() is None:
        raise ApiError(401, "unauthorized",
                       "Authenticate with 'Authorization: Bearer <token>' or a session.")
    elif request.method in UNSAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
        from flask_wtf.csrf import validate_csrf
        from wtforms.validators import ValidationError as CSRFInvalid

        header = request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
        try:
            validate_csrf(header)
        except CSRFInvalid as exc:
            raise ApiError(400, "csrf_failed",
                           f"{exc.args[0] if exc.args else 'Bad CSRF token.'} Send the page's "
                           "CSRF token in an X-CSRFToken header, or use an API token.") from None


def _access() -> Access:
    access = current_rbac.current_access()
    if access is None or not access.active:
        raise _forbidden("You are not an active member of this workspace.")
    return access


def _require(permission: str) -> Access:
    """The current member's access, if they may ``permission``; else a 403."""
    rbac = current_rbac
    access = _access()
    resource, _, action = permission.rpartition(".")
    decision = rbac.decide(access, action, resource)
    if not decision:
        rbac.signal_denied(access, action, resource, None, decision.reason)
        raise _forbidden(decision.reason)
    return access


def _json_body() -> dict[str, Any]:
    """The request's JSON object (refusing anything else with a 400)."""
    raw = request.get_data(cache=True)
    if not raw:
        raise ApiError(400, "bad_request", "The request needs a JSON object body.")

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw, parse_constant=refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_request", f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "bad_request", "The body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    inputs.check_text(body)
    return body


def _check_keys(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _bad(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}",
                   unknown[0])


def _string(body: Mapping[str, Any], key: str, *, required: bool = False,
            nullable: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise _bad(f"{key} is required", key)
        if key in body and not nullable:
            raise _bad(f"{key} must be a string", key)
        return None
    if not isinstance(value, str):
        raise _bad(f"{key} must be a string", key)
    return value


def _id(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= inputs.MAX_ID:
        raise _bad(f"{field} must be an integer id", field)
    return value


def _instant(body: Mapping[str, Any], key: str) -> dt.datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{key} must be an ISO 8601 string such as 2030-01-31T09:00:00Z", key)
    return queries.parse_utc(value, key)


# -- serialisation ----------------------------------------------------------------


def _role_json(role: Any, member_count: int | None = None) -> dict[str, Any]:
    rbac = current_rbac
    effective = {f"{res}.{action}": spec.scope
                 for res, cells in roles.matrix(rbac, role).items()
                 for action, spec in cells.items()}
    return {
        "id": role.id, "name": role.name, "description": role.description or "",
        "key": role.key, "builtin": bool(role.builtin), "is_owner": bool(role.is_owner),
        "parent_id": role.parent_id,
        "member_count": member_count if member_count is not None else
        queries.member_counts(rbac, role.workspace_id).get(role.id, 0),
        "permissions": [spec.to_json() for spec in roles.specs_of(role)],
        "effective_permissions": effective,
        "field_rules": queries.field_rules_of(role),
    }


def _assignment_json(mr: Any) -> dict[str, Any]:
    return {"id": mr.id, "role_id": mr.role_id, "role": mr.role.name,
            "starts_at": queries.iso(mr.starts_at), "expires_at": queries.iso(mr.expires_at),
            "status": queries.assignment_status(mr)}


def _member_json(membership: Any) -> dict[str, Any]:
    user = membership.user
    return {"id": membership.id, "user_id": membership.user_id, "name": membership.display_name,
            "email": getattr(user, "email", None), "status": membership.status,
            "department": membership.department.name if membership.department else None,
            "roles": [_assignment_json(mr) for mr in
                      sorted(membership.member_roles, key=lambda mr: mr.id)]}


def _role_or_404(access: Access, role_id: int) -> Any:
    role = queries.role_in(current_rbac, access.workspace_id, role_id)
    if role is None:
        raise _not_found("role")
    return role


def _membership_or_404(access: Access, membership_id: int) -> Any:
    membership = queries.membership_in(current_rbac, access.workspace_id, membership_id)
    if membership is None:
        raise _not_found("member")
    return membership


def _created(payload: dict[str, Any], location: str) -> ResponseReturnValue:
    return jsonify(payload), 201, {"Location": location}


# -- role input ---------------------------------------------------------------------


def _role_changes(body: Mapping[str, Any], access: Access, *, create: bool) -> dict[str, Any]:
    """Validate a role body into keyword arguments of create_role/update_role."""
    rbac = current_rbac
    _check_keys(body, ROLE_KEYS)
    out: dict[str, Any] = {}
    name = _string(body, "name", required=create)
    if name is not None:
        out["name"] = name
    description = _string(body, "description", nullable=True)
    if "description" in body:
        out["description"] = description or ""
    if "parent_id" in body:
        parent_id = body["parent_id"]
        if parent_id is None:
            out["parent"] = None
        else:
            parent = queries.role_in(rbac, access.workspace_id, _id(parent_id, "parent_id"))
            if parent is None:
                raise _bad(f"no role {parent_id} in this workspace", "parent_id")
            out["parent"] = parent
    scopes = body.get("scopes")
    if scopes is not None:
        if "permissions" not in body:
            raise _bad("scopes apply to the permissions list; send both", "scopes")
        if not isinstance(scopes, dict):
            raise _bad("scopes must be an object such as {\"leads\": \"own\"}", "scopes")
        for resource, scope in scopes.items():
            if resource not in rbac.registry:
                raise _bad(f"unknown resource {resource!r}", f"scopes.{resource}")
            if scope not in SCOPES:
                raise _bad(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}",
                           f"scopes.{resource}")
    if "permissions" in body:
        if not isinstance(body["permissions"], list):
            # parse_grants accepts any iterable, and would read an object's keys.
            raise _bad("permissions must be a list such as [\"leads.view\"]", "permissions")
        out["grants"] = roles.parse_grants(rbac, body["permissions"], scopes)
    elif create:
        out["grants"] = []
    if "field_rules" in body:
        rules = body["field_rules"]
        if not isinstance(rules, dict):
            raise _bad("field_rules must be an object such as {\"deals\": {\"amount\": "
                       "\"hidden\"}}", "field_rules")
        for resource, fields in rules.items():
            if not isinstance(fields, dict) or not all(
                    isinstance(mode, str) for mode in fields.values()):
                raise _bad("each resource maps field names to \"hidden\" or \"readonly\"",
                           f"field_rules.{resource}")
        out["field_rules"] = rules
    return out


# -- roles ---------------------------------------------------------------------------


@bp.get("/roles")
def list_roles() -> ResponseReturnValue:
    access = _require("roles.view")
    rbac = current_rbac
    counts = queries.member_counts(rbac, access.workspace_id)
    return jsonify(roles=[_role_json(r, counts.get(r.id, 0))
                          for r in queries.workspace_roles(rbac, access.workspace_id)])


@bp.post("/roles")
def create_role() -> ResponseReturnValue:
    access = _require("roles.create")
    body = _json_body()
    rbac = current_rbac
    changes = _role_changes(body, access, create=True)
    role = roles.create_role(rbac, access, name=changes["name"],
                             description=changes.get("description", ""),
                             grants=changes["grants"], parent=changes.get("parent"),
                             field_rules=changes.get("field_rules"))
    rbac.db.session.commit()
    return _created(_role_json(role), url_for(".get_role", role_id=role.id))


@bp.get("/roles/<int:role_id>")
def get_role(role_id: int) -> ResponseReturnValue:
    access = _require("roles.view")
    return jsonify(_role_json(_role_or_404(access, role_id)))


@bp.patch("/roles/<int:role_id>")
def update_role(role_id: int) -> ResponseReturnValue:
    access = _require("roles.edit")
    role = _role_or_404(access, role_id)
    changes = _role_changes(_json_body(), access, create=False)
    rbac = current_rbac
    roles.update_role(rbac, access, role, **changes)
    rbac.db.session.commit()
    return jsonify(_role_json(role))


@bp.delete("/roles/<int:role_id>")
def delete_role(role_id: int) -> ResponseReturnValue:
    access = _require("roles.delete")
    role = _role_or_404(access, role_id)
    move_to = None
    if "move_to" in request.args:
        raw = request.args["move_to"]
        if not raw.isdigit():
            raise _bad("move_to must be a role id", "move_to")
        move_to = queries.role_in(current_rbac, access.workspace_id, int(raw))
        if move_to is None:
            raise _bad(f"no role {raw} in this workspace", "move_to")
    rbac = current_rbac
    roles.delete_role(rbac, access, role, move_to=move_to)
    rbac.db.session.commit()
    return "", 204


@bp.post("/roles/<int:role_id>/clone")
def clone_role(role_id: int) -> ResponseReturnValue:
    access = _require("roles.create")
    source = _role_or_404(access, role_id)
    body = _json_body()
    _check_keys(body, CLONE_KEYS)
    name = _string(body, "name", required=True)
    description = _string(body, "description", nullable=True)
    rbac = current_rbac
    role = roles.clone_role(rbac, access, source, name or "", description)
    rbac.db.session.commit()
    return _created(_role_json(role), url_for(".get_role", role_id=role.id))


def _id_list(field: str) -> list[int]:
    """Ids given as ``?ids=1,2`` or ``?ids=1&ids=2``, without repeats."""
    parts = [p.strip() for chunk in request.args.getlist(field) for p in chunk.split(",")
             if p.strip()]
    if not all(p.isdigit() for p in parts):
        raise _bad(f"{field} must be role ids separated by commas", field)
    return list(dict.fromkeys(int(p) for p in parts))


@bp.get("/roles/compare")
def compare_roles() -> ResponseReturnValue:
    access = _require("roles.view")
    ids = _id_list("ids")
    if len(ids) < 2:
        raise _bad("give at least two role ids, e.g. ?ids=1,2", "ids")
    chosen = [_role_or_404(access, i) for i in ids]
    filter_text = request.args.get("filter", "").strip()
    if len(filter_text) > 100:
        raise _bad("the filter is longer than 100 characters", "filter")
    rows = roles.compare(current_rbac, chosen, filter_text)
    return jsonify(roles=[{"id": r.id, "name": r.name} for r in chosen], filter=filter_text,
                   rows=rows)


@bp.get("/roles/granting")
def roles_granting() -> ResponseReturnValue:
    access = _require("roles.view")
    permission = request.args.get("permission", "").strip()
    if not permission:
        raise _bad("give a permission such as ?permission=deals.export", "permission")
    try:
        found = roles.roles_granting(current_rbac, access.workspace_id, permission)
    except UnknownResource as exc:
        raise _bad(f"{exc} (write resource.action)", "permission") from None
    return jsonify(permission=permission,
                   roles=[{"id": r.id, "name": r.name, "builtin": bool(r.builtin)}
                          for r in found])


# -- members ---------------------------------------------------------------------------


def _member_readable(membership_id: int) -> tuple[Access, Any]:
    """A member's data is readable with ``members.view``, and always by themselves."""
    access = _access()
    if membership_id != access.membership_id:
        access = _require("members.view")
    return access, _membership_or_404(access, membership_id)


@bp.get("/members")
def list_members() -> ResponseReturnValue:
    access = _require("members.view")
    return jsonify(members=[_member_json(m) for m in
                            queries.workspace_memberships(current_rbac, access.workspace_id)])


@bp.get("/members/<int:membership_id>/roles")
def member_roles(membership_id: int) -> ResponseReturnValue:
    _, membership = _member_readable(membership_id)
    return jsonify(roles=_member_json(membership)["roles"])


@bp.post("/members/<int:membership_id>/roles")
def assign_role(membership_id: int) -> ResponseReturnValue:
    access = _require("members.edit")
    membership = _membership_or_404(access, membership_id)
    body = _json_body()
    _check_keys(body, ASSIGN_KEYS)
    if "role_id" not in body:
        raise _bad("role_id is required", "role_id")
    role = queries.role_in(current_rbac, access.workspace_id, _id(body["role_id"], "role_id"))
    if role is None:
        raise _bad(f"no role {body['role_id']} in this workspace", "role_id")
    rbac = current_rbac
    mr = roles.assign_role(rbac, access, membership, role, starts_at=_instant(body, "starts_at"),
                           expires_at=_instant(body, "expires_at"))
    rbac.db.session.commit()
    return _created(_assignment_json(mr), url_for(".member_roles", membership_id=membership.id))


@bp.delete("/members/<int:membership_id>/roles/<int:member_role_id>")
def remove_role(membership_id: int, member_role_id: int) -> ResponseReturnValue:
    access = _require("members.edit")
    membership = _membership_or_404(access, membership_id)
    mr = next((mr for mr in membership.member_roles if mr.id == member_role_id), None)
    if mr is None:
        raise _not_found("role assignment")
    rbac = current_rbac
    roles.remove_role(rbac, access, mr)
    rbac.db.session.commit()
    return "", 204


@bp.get("/members/<int:membership_id>/access")
def member_access(membership_id: int) -> ResponseReturnValue:
    """The member's effective permissions, each with the roles it comes from."""
    _, membership = _member_readable(membership_id)
    rbac = current_rbac
    member_access = rbac.access_for(membership)
    matrix = queries.effective_matrix(rbac, membership, member_access)
    return jsonify(
        member=_member_json(membership),
        is_owner=bool(member_access and member_access.is_owner),
        roles=list(member_access.roles) if member_access else [],
        permissions={cell.permission: cell.to_json()
                     for rows in matrix.values() for row in rows for cell in row.cells})


# -- description -----------------------------------------------------------------------------


@bp.get("/audit")
def audit_events() -> ResponseReturnValue:
    """The workspace's audit trail, newest first, filtered like the audit page (settings.view)."""
    access = _require("settings.view")
    try:
        filters = audit.parse_filters(request.args)
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 50))
    except ValueError as exc:
        raise _bad(str(exc)) from None
    if page < 1 or not 1 <= per_page <= 200:
        raise _bad("page must be >= 1 and per_page between 1 and 200")
    rbac = current_rbac
    result = rbac.db.paginate(audit.events_query(rbac, access.workspace_id, filters),
                              page=page, per_page=per_page, error_out=False)
    return jsonify(items=[audit.event_json(ev) for ev in result.items], page=page,
                   per_page=per_page, total=result.total)


# -- sharing agreements -----------------------------------------------------------------


def _agreement_or_404(access: Access, agreement_id: int) -> Any:
    agreement = sharing.agreement_in(current_rbac, access.workspace_id, agreement_id)
    if agreement is None:
        raise _not_found("sharing agreement")
    return agreement


def _agreement_changes(body: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    _check_keys(body, AGREEMENT_KEYS if create else AGREEMENT_KEYS - {"workspace"})
    changes: dict[str, Any] = {}
    if create:
        ref = body.get("workspace")
        if ref is None:
            raise _bad("workspace is required (the receiving workspace's slug or id)",
                       "workspace")
        if isinstance(ref, bool) or not isinstance(ref, (str, int)):
            raise _bad("workspace must be a slug or an id", "workspace")
        changes["workspace"] = ref
        if "permissions" not in body:
            raise _bad("permissions is required", "permissions")
    if "permissions" in body:
        changes["permissions"] = body["permissions"]
    if "notes" in body:
        changes["notes"] = _string(body, "notes", nullable=True) or ""
    if "expires_at" in body:
        changes["expires_at"] = _instant(body, "expires_at")
    return changes


@bp.get("/sharing")
def list_agreements() -> ResponseReturnValue:
    access = _require("settings.view")
    rbac = current_rbac
    return jsonify(
        shared_by_you=[sharing.to_json(a) for a in
                       sharing.agreements(rbac, access.workspace_id, "granting")],
        shared_with_you=[sharing.to_json(a) for a in
                         sharing.agreements(rbac, access.workspace_id, "receiving")])


@bp.post("/sharing")
def create_agreement() -> ResponseReturnValue:
    access = _require("settings.manage")
    changes = _agreement_changes(_json_body(), create=True)
    rbac = current_rbac
    agreement = sharing.create_agreement(rbac, access, **changes)
    rbac.db.session.commit()
    return _created(sharing.to_json(agreement),
                    url_for(".get_agreement", agreement_id=agreement.id))


@bp.get("/sharing/<int:agreement_id>")
def get_agreement(agreement_id: int) -> ResponseReturnValue:
    access = _require("settings.view")
    return jsonify(sharing.to_json(_agreement_or_404(access, agreement_id)))


@bp.patch("/sharing/<int:agreement_id>")
def update_agreement(agreement_id: int) -> ResponseReturnValue:
    access = _require("settings.manage")
    agreement = _agreement_or_404(access, agreement_id)
    changes = _agreement_changes(_json_body(), create=False)
    rbac = current_rbac
    sharing.update_agreement(rbac, access, agreement, **changes)
    rbac.db.session.commit()
    return jsonify(sharing.to_json(agreement))


@bp.post("/sharing/<int:agreement_id>/<any(revoke, accept, decline, leave):verb>")
def end_agreement(agreement_id: int, verb: str) -> ResponseReturnValue:
    """revoke (granting side), accept, decline or leave (receiving side)."""
    access = _require("settings.manage")
    agreement = _agreement_or_404(access, agreement_id)
    rbac = current_rbac
    sharing.ACTIONS[verb](rbac, access, agreement)
    rbac.db.session.commit()
    return jsonify(sharing.to_json(agreement))


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 description of this API (public: it holds no data)."""
    prefix = setting("RBAC_API_URL_PREFIX")
    return jsonify(openapi_document(request.script_root + prefix))



# -- records: read-only access to protected data, filtered and redacted ---------------


def _record_json(resource: str, record: Any, access: Access) -> dict[str, Any]:
    """A record's columns without the fields hidden from the member."""
    out = {}
    for key, value in current_rbac.redact(resource, record, access=access).items():
        if isinstance(value, (dt.date, dt.datetime)):
            value = value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value)
        out[key] = value
    return out


def _model_resource(resource: str) -> Any:
    rbac = current_rbac
    if resource not in rbac.registry or rbac.registry.get(resource).model is None:
        raise ApiError(404, "not_found", f"No resource named {resource!r}.")
    return rbac.registry.get(resource)


@bp.get("/records/<resource>")
def list_records(resource: str) -> ResponseReturnValue:
    """One page of the records the member may view (``?page=``, ``?per_page=`` ≤ 100)."""
    res = _model_resource(resource)
    access = _require(f"{resource}.view")
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        raise _bad("page and per_page must be integers", "page") from None
    if page < 1 or not 1 <= per_page <= 100:
        raise _bad("page starts at 1 and per_page is between 1 and 100", "per_page")
    pk = sa.inspect(res.model).primary_key[0]
    rows = current_rbac.db.session.scalars(
        sa.select(res.model).order_by(pk).limit(per_page).offset((page - 1) * per_page)).all()
    return jsonify(items=[_record_json(resource, r, access) for r in rows], page=page,
                   per_page=per_page)


@bp.get("/records/<resource>/<int:record_id>")
def get_record(resource: str, record_id: int) -> ResponseReturnValue:
    """One record the member may view; any other id is a 404 (no existence leak)."""
    res = _model_resource(resource)
    access = _require(f"{resource}.view")
    pk = sa.inspect(res.model).primary_key[0]
    record = current_rbac.db.session.execute(
        sa.select(res.model).where(pk == record_id)).scalar_one_or_none()
    if record is None:
        raise _not_found(f"{resource} record")
    return jsonify(_record_json(resource, record, access))
