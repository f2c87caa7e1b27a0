"""The conditional and group roles' part of the OpenAPI description (see :mod:`.openapi`)."""

from __future__ import annotations

import copy
from typing import Any

from ..role_conditions import DAY_NAMES
from .openapi import (
    BAD_INPUT,
    ID,
    MEMBER_ID,
    NOT_FOUND,
    ROLE_ID,
    STEP_UP,
    _error,
    _json,
    _op,
    _path_id,
    _ref,
)

TIME = {"type": "string", "pattern": "^[0-2][0-9]:[0-5][0-9]$", "examples": ["09:00"]}
CONDITION: dict[str, Any] = {
    "type": ["object", "null"], "additionalProperties": False,
    "description": "When the role is in force: on these weekdays, from start (inclusive) to "
                   "end (exclusive) in the workspace's time zone, from these networks. null "
                   "or {}: always. A window ending before it starts, a bad weekday or a "
                   "malformed network is a 400 naming the key.",
    "properties": {
        "weekdays": {"type": "array", "items": {"type": "string", "enum": list(DAY_NAMES)}},
        "start": TIME, "end": TIME,
        "networks": {"type": "array", "items": {"type": "string"},
                     "examples": [["10.0.0.0/8", "2001:db8::/32"]]}},
}
_CONDITION_BODY = {"type": "object", "required": ["condition"], "additionalProperties": False,
                   "properties": {"condition": CONDITION, "reason": {"type": "string"}}}
DEPARTMENT_ID = _path_id("dept_id", "department")
_CONFLICT = {"409": _error("Giving this role needs approval in this workspace; give it to "
                           "members one by one. `error` is `conflict`.")}

SCHEMAS: dict[str, Any] = {
    "AccessCondition": CONDITION,
    "DepartmentRole": {"type": "object", "properties": {
        "id": ID, "department_id": ID, "role_id": ID, "role": {"type": "string"},
        "condition": CONDITION}},
}

PATHS: dict[str, Any] = {
    "/members/{membership_id}/roles/{member_role_id}": {"patch": _op(
        "Replace the condition of one role assignment (members.edit; the rules of giving "
        "the role apply).",
        {"200": _json(_ref("Assignment"), "The assignment.")}, tag="members",
        body=_CONDITION_BODY,
        parameters=[MEMBER_ID, _path_id("member_role_id", "role assignment")],
        errors=(NOT_FOUND, BAD_INPUT, STEP_UP))},
    "/roles/{role_id}/condition": {"put": _op(
        "Replace the condition under which a role is in force for all its holders "
        "(roles.edit; never the Owner or Admin role).",
        {"200": _json({"type": "object", "properties": {
            "id": ID, "name": {"type": "string"}, "condition": CONDITION}}, "The role.")},
        tag="roles", body=_CONDITION_BODY, parameters=[ROLE_ID],
        errors=(NOT_FOUND, BAD_INPUT))},
    "/departments/{dept_id}/roles": {
        "get": _op("The roles a department gives its members (members.view).",
                   {"200": _json({"type": "object", "properties": {"roles": {
                       "type": "array", "items": _ref("DepartmentRole")}}}, "The roles.")},
                   tag="members", parameters=[DEPARTMENT_ID], errors=(NOT_FOUND,)),
        "post": _op("Give a role to every member of a department while they belong to it "
                    "(members.edit; never the Owner role; Admin only by an Owner; never wider "
                    "than the actor; segregation of duties applies to every member).",
                    {"201": _json(_ref("DepartmentRole"), "The department's role.")},
                    tag="members", parameters=[DEPARTMENT_ID],
                    body={"type": "object", "required": ["role_id"],
                          "additionalProperties": False,
                          "properties": {"role_id": ID, "condition": CONDITION,
                                         "reason": {"type": "string"}}},
                    errors=(NOT_FOUND, BAD_INPUT, STEP_UP, _CONFLICT)),
    },
    "/departments/{dept_id}/roles/{role_id}": {"delete": _op(
        "Take a role away from a department; its members lose it at once (members.edit).",
        {"204": {"description": "Removed."}}, tag="members",
        parameters=[DEPARTMENT_ID, ROLE_ID], errors=(NOT_FOUND, STEP_UP))},
}


def with_conditions(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the condition and department-role endpoints, and ``condition`` on
    assignments."""
    for path, ops in copy.deepcopy(PATHS).items():
        doc["paths"].setdefault(path, {}).update(ops)
    schemas = doc["components"]["schemas"]
    schemas.update(copy.deepcopy(SCHEMAS))
    for name in ("Assignment", "AssignmentInput"):
        if name in schemas:
            schemas[name]["properties"]["condition"] = copy.deepcopy(CONDITION)
    return doc
