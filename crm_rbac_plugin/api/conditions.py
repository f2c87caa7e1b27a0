"""API endpoints for conditional and group roles.

- ``PATCH /members/<id>/roles/<assignment id>`` ``{"condition": {...}}``: when one
  assignment is in force (``members.edit``; the escalation rules of giving it);
- ``PUT /roles/<id>/condition`` ``{"condition": {...}}``: when a role is in force
  for every holder (``roles.edit``);
- ``GET|POST /departments/<id>/roles`` and ``DELETE /departments/<id>/roles/<role id>``:
  the roles a department gives its members (``members.view`` / ``members.edit``).

Every change needs a recent MFA check from a member MFA protects
(:func:`.blueprint.step_up`), as the pages' ``require_recent_mfa`` and every
other role change of the API do.

A condition is ``{"weekdays": [...], "start": "HH:MM", "end": "HH:MM",
"networks": [...]}`` (see :mod:`..role_conditions`); ``null`` or ``{}`` removes
it. A bad one is a 400 naming the key; nothing is saved.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import jsonify, url_for
from flask.typing import ResponseReturnValue

from .. import queries, roles
from ..policy import Access
from ..proxies import current_rbac
from .blueprint import bad, bp, check_keys, created, id_of, json_body, not_found, require, step_up

CONDITION_KEYS = frozenset({"condition"})
DEPARTMENT_ROLE_KEYS = frozenset({"role_id", "condition"})


def department_role_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "department_id": row.department_id, "role_id": row.role_id,
            "role": row.role.name, "condition": row.access_condition}


def _department_or_404(access: Access, dept_id: int) -> Any:
    D = current_rbac.models.Department
    found = current_rbac.db.session.scalar(
        sa.select(D).where(D.id == dept_id, D.workspace_id == access.workspace_id))
    if found is None:
        raise not_found("department")
    return found


def _condition(body: dict[str, Any]) -> Any:
    if "condition" not in body:
        raise bad("condition is required (null removes it)", "condition")
    return body["condition"]


@bp.patch("/members/<int:membership_id>/roles/<int:member_role_id>")
def update_assignment(membership_id: int, member_role_id: int) -> ResponseReturnValue:
    """Replace the condition of one role assignment."""
    access = require("members.edit")
    membership = queries.membership_in(current_rbac, access.workspace_id, membership_id)
    mr = next((mr for mr in getattr(membership, "member_roles", ())
               if mr.id == member_role_id), None)
    if mr is None:
        raise not_found("role assignment")
    step_up()
    body = json_body()
    check_keys(body, CONDITION_KEYS)
    roles.set_assignment_condition(current_rbac, access, mr, _condition(body))
    current_rbac.db.session.commit()
    return jsonify(id=mr.id, role_id=mr.role_id, role=mr.role.name,
                   condition=mr.access_condition)


@bp.put("/roles/<int:role_id>/condition")
def update_role_condition(role_id: int) -> ResponseReturnValue:
    """Replace the condition under which a role is in force for all its holders."""
    access = require("roles.edit")
    role = queries.role_in(current_rbac, access.workspace_id, role_id)
    if role is None:
        raise not_found("role")
    step_up()
    body = json_body()
    check_keys(body, CONDITION_KEYS)
    roles.set_role_condition(current_rbac, access, role, _condition(body))
    current_rbac.db.session.commit()
    return jsonify(id=role.id, name=role.name, condition=role.access_condition)


@bp.get("/departments/<int:dept_id>/roles")
def list_department_roles(dept_id: int) -> ResponseReturnValue:
    """The roles a department gives its members."""
    access = require("members.view")
    dept = _department_or_404(access, dept_id)
    return jsonify(roles=[department_role_json(r)
                          for r in roles.department_roles(current_rbac, dept)])


@bp.post("/departments/<int:dept_id>/roles")
def give_department_role(dept_id: int) -> ResponseReturnValue:
    """Give a role to every member of a department while they belong to it."""
    access = require("members.edit")
    dept = _department_or_404(access, dept_id)
    step_up()
    body = json_body()
    check_keys(body, DEPARTMENT_ROLE_KEYS)
    if "role_id" not in body:
        raise bad("role_id is required", "role_id")
    role = queries.role_in(current_rbac, access.workspace_id, id_of(body["role_id"], "role_id"))
    if role is None:
        raise bad(f"no role {body['role_id']} in this workspace", "role_id")
    row = roles.give_department_role(current_rbac, access, dept, role,
                                     condition=body.get("condition"))
    current_rbac.db.session.commit()
    return created(department_role_json(row),
                   url_for(".list_department_roles", dept_id=dept.id))


@bp.delete("/departments/<int:dept_id>/roles/<int:role_id>")
def remove_department_role(dept_id: int, role_id: int) -> ResponseReturnValue:
    """Take a role away from a department; its members lose it at once."""
    access = require("members.edit")
    dept = _department_or_404(access, dept_id)
    row = next((r for r in roles.department_roles(current_rbac, dept)
                if r.role_id == role_id), None)
    if row is None:
        raise not_found("department role")
    step_up()
    roles.remove_department_role(current_rbac, access, row)
    current_rbac.db.session.commit()
    return "", 204
