"""API endpoints for roles: list, read, create, edit, clone, delete, compare, and the
roles granting a permission."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import jsonify, request, url_for
from flask.typing import ResponseReturnValue

from .. import queries, roles
from ..errors import UnknownResource
from ..inputs import is_digits
from ..policy import Access
from ..proxies import current_rbac
from ..registry import SCOPES
from .blueprint import (
    bad,
    bp,
    check_keys,
    created,
    id_list,
    id_of,
    json_body,
    not_found,
    require,
    step_up,
    string,
)

ROLE_KEYS = frozenset({"name", "description", "parent_id", "permissions", "scopes",
                       "field_rules", "sign_in", "api_access"})
CLONE_KEYS = frozenset({"name", "description"})


def _role_json(role: Any, member_count: int | None = None) -> dict[str, Any]:
    rbac = current_rbac
    effective = {f"{res}.{action}": spec.scope
                 for res, cells in roles.matrix(rbac, role).items()
                 for action, spec in cells.items()}
    return {
        "id": role.id, "name": role.name, "description": role.description or "",
        "key": role.key, "builtin": bool(role.builtin), "is_owner": bool(role.is_owner),
        "parent_id": role.parent_id, "sign_in": bool(role.sign_in),
        "api_access": bool(role.api_access),
        "member_count": member_count if member_count is not None else
        queries.member_counts(rbac, role.workspace_id).get(role.id, 0),
        "permissions": [spec.to_json() for spec in roles.specs_of(role)],
        "effective_permissions": effective,
        "field_rules": queries.field_rules_of(role),
    }


def _role_or_404(access: Access, role_id: int) -> Any:
    role = queries.role_in(current_rbac, access.workspace_id, role_id)
    if role is None:
        raise not_found("role")
    return role


def _role_changes(body: Mapping[str, Any], access: Access, *, create: bool) -> dict[str, Any]:
    """Validate a role body into keyword arguments of create_role/update_role."""
    rbac = current_rbac
    check_keys(body, ROLE_KEYS)
    out: dict[str, Any] = {}
    name = string(body, "name", required=create)
    if name is not None:
        out["name"] = name
    description = string(body, "description", nullable=True)
    if "description" in body:
        out["description"] = description or ""
    if "parent_id" in body:
        parent_id = body["parent_id"]
        if parent_id is None:
            out["parent"] = None
        else:
            parent = queries.role_in(rbac, access.workspace_id, id_of(parent_id, "parent_id"))
            if parent is None:
                raise bad(f"no role {parent_id} in this workspace", "parent_id")
            out["parent"] = parent
    scopes = body.get("scopes")
    if scopes is not None:
        if "permissions" not in body:
            raise bad("scopes apply to the permissions list; send both", "scopes")
        if not isinstance(scopes, dict):
            raise bad("scopes must be an object such as {\"leads\": \"own\"}", "scopes")
        for resource, scope in scopes.items():
            if resource not in rbac.registry:
                raise bad(f"unknown resource {resource!r}", f"scopes.{resource}")
            if scope not in SCOPES:
                raise bad(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}",
                           f"scopes.{resource}")
    if "permissions" in body:
        if not isinstance(body["permissions"], list):
            # parse_grants accepts any iterable, and would read an object's keys.
            raise bad("permissions must be a list such as [\"leads.view\"]", "permissions")
        out["grants"] = roles.parse_grants(rbac, body["permissions"], scopes)
    elif create:
        out["grants"] = []
    if "field_rules" in body:
        rules = body["field_rules"]
        if not isinstance(rules, dict):
            raise bad("field_rules must be an object such as {\"deals\": {\"amount\": "
                       "\"hidden\"}}", "field_rules")
        for resource, fields in rules.items():
            if not isinstance(fields, dict) or not all(
                    isinstance(mode, str) for mode in fields.values()):
                raise bad("each resource maps field names to \"hidden\" or \"readonly\"",
                           f"field_rules.{resource}")
        out["field_rules"] = rules
    for flag in ("sign_in", "api_access"):
        if flag in body:
            if not isinstance(body[flag], bool):
                raise bad(f"{flag} must be true or false", flag)
            out[flag] = body[flag]
    return out


@bp.get("/roles")
def list_roles() -> ResponseReturnValue:
    access = require("roles.view")
    rbac = current_rbac
    counts = queries.member_counts(rbac, access.workspace_id)
    return jsonify(roles=[_role_json(r, counts.get(r.id, 0))
                          for r in queries.workspace_roles(rbac, access.workspace_id)])


@bp.post("/roles")
def create_role() -> ResponseReturnValue:
    access = require("roles.create")
    step_up()
    body = json_body()
    rbac = current_rbac
    changes = _role_changes(body, access, create=True)
    role = roles.create_role(rbac, access, name=changes["name"],
                             description=changes.get("description", ""),
                             grants=changes["grants"], parent=changes.get("parent"),
                             field_rules=changes.get("field_rules"),
                             sign_in=changes.get("sign_in", True),
                             api_access=changes.get("api_access", True))
    rbac.db.session.commit()
    return created(_role_json(role), url_for(".get_role", role_id=role.id))


@bp.get("/roles/<int:role_id>")
def get_role(role_id: int) -> ResponseReturnValue:
    access = require("roles.view")
    return jsonify(_role_json(_role_or_404(access, role_id)))


@bp.patch("/roles/<int:role_id>")
def update_role(role_id: int) -> ResponseReturnValue:
    access = require("roles.edit")
    role = _role_or_404(access, role_id)
    step_up()
    changes = _role_changes(json_body(), access, create=False)
    rbac = current_rbac
    roles.update_role(rbac, access, role, **changes)
    rbac.db.session.commit()
    return jsonify(_role_json(role))


@bp.delete("/roles/<int:role_id>")
def delete_role(role_id: int) -> ResponseReturnValue:
    access = require("roles.delete")
    role = _role_or_404(access, role_id)
    step_up()
    move_to = None
    if "move_to" in request.args:
        raw = request.args["move_to"]
        if not is_digits(raw):
            raise bad("move_to must be a role id", "move_to")
        move_to = queries.role_in(current_rbac, access.workspace_id, int(raw))
        if move_to is None:
            raise bad(f"no role {raw} in this workspace", "move_to")
    rbac = current_rbac
    roles.delete_role(rbac, access, role, move_to=move_to)
    rbac.db.session.commit()
    return "", 204


@bp.post("/roles/<int:role_id>/clone")
def clone_role(role_id: int) -> ResponseReturnValue:
    access = require("roles.create")
    source = _role_or_404(access, role_id)
    step_up()
    body = json_body()
    check_keys(body, CLONE_KEYS)
    name = string(body, "name", required=True)
    description = string(body, "description", nullable=True)
    rbac = current_rbac
    role = roles.clone_role(rbac, access, source, name or "", description)
    rbac.db.session.commit()
    return created(_role_json(role), url_for(".get_role", role_id=role.id))


@bp.get("/roles/compare")
def compare_roles() -> ResponseReturnValue:
    access = require("roles.view")
    ids = id_list("ids")
    if len(ids) < 2:
        raise bad("give at least two role ids, e.g. ?ids=1,2", "ids")
    chosen = [_role_or_404(access, i) for i in ids]
    filter_text = request.args.get("filter", "").strip()
    if len(filter_text) > 100:
        raise bad("the filter is longer than 100 characters", "filter")
    rows = roles.compare(current_rbac, chosen, filter_text)
    return jsonify(roles=[{"id": r.id, "name": r.name} for r in chosen], filter=filter_text,
                   rows=rows)


@bp.get("/roles/granting")
def roles_granting() -> ResponseReturnValue:
    access = require("roles.view")
    permission = request.args.get("permission", "").strip()
    if not permission:
        raise bad("give a permission such as ?permission=deals.export", "permission")
    try:
        found = roles.roles_granting(current_rbac, access.workspace_id, permission)
    except UnknownResource as exc:
        raise bad(f"{exc} (write resource.action)", "permission") from None
    return jsonify(permission=permission,
                   roles=[{"id": r.id, "name": r.name, "builtin": bool(r.builtin)}
                          for r in found])
