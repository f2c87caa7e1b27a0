"""The OpenAPI 3.1 description of the JSON API, written by hand.

Kept next to the views and checked by a test that every route of the
blueprint (path and method) is described here.
"""

from __future__ import annotations

import copy
from typing import Any

from ..conditions import OPERATORS
from ..registry import SCOPES
from .openapi_security import SECURITY_POLICY_FIELDS


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


ID = {"type": "integer", "minimum": 1}
INSTANT = {"type": ["string", "null"], "format": "date-time",
           "description": "ISO 8601; a time without offset is taken as UTC."}

SCHEMAS: dict[str, Any] = {
    "AuditEvent": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "workspace_id": {"type": ["integer", "null"]},
            "at": {"type": "string", "format": "date-time"},
            # The host user's primary key: an integer or a string (a UUID).
            "actor_user_id": {"type": ["integer", "string", "null"]},
            "actor_membership_id": {"type": ["integer", "null"]},
            "action": {"type": "string"}, "resource": {"type": "string"},
            "target": {"type": "string"}, "before": {}, "after": {}, "detail": {},
            "ip": {"type": ["string", "null"]},
        },
    },
    "SharedPermission": {
        "type": "object", "required": ["resource", "action"], "additionalProperties": False,
        "properties": {
            "resource": {"type": "string", "examples": ["clients"]},
            "action": {"type": "string", "examples": ["view"],
                       "description": "Any action of the resource except create and manage; "
                                      "each shared action needs view shared too."},
            "condition": {"type": ["array", "null"], "items": _ref("Clause")},
        },
    },
    "AgreementInput": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "workspace": {"type": ["string", "integer"],
                          "description": "The receiving workspace's slug or id (create only)."},
            "permissions": {"type": "array", "minItems": 1, "items": {"oneOf": [
                {"type": "string", "pattern": r"^[\w-]+\.[\w-]+$",
                 "examples": ["clients.view"]}, _ref("SharedPermission")]}},
            "notes": {"type": ["string", "null"], "maxLength": 2000},
            "expires_at": INSTANT,
        },
    },
    "Agreement": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "granting_workspace": {"type": "object"},
            "receiving_workspace": {"type": "object"},
            "status": {"type": "string",
                       "enum": ["pending", "active", "declined", "left", "revoked"]},
            "state": {"type": "string", "description": "status, or expired"},
            "notes": {"type": "string"}, "expires_at": INSTANT, "created_at": INSTANT,
            "decided_at": INSTANT,
            "permissions": {"type": "array", "items": _ref("SharedPermission")},
        },
    },
    "Error": {
        "type": "object", "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "examples": ["validation_error", "forbidden", "conflict"]},
            "message": {"type": "string"},
            "field": {"type": ["string", "null"],
                      "description": "The input at fault, e.g. permissions[0].scope."},
        },
    },
    "Clause": {
        "type": "object", "required": ["field"], "additionalProperties": False,
        "properties": {"field": {"type": "string"},
                       "op": {"type": "string", "enum": list(OPERATORS), "default": "eq"},
                       "value": {}},
    },
    "Grant": {
        "type": "object", "required": ["resource", "action"], "additionalProperties": False,
        "properties": {
            "resource": {"type": "string", "examples": ["deals"]},
            "action": {"type": "string", "examples": ["view"]},
            "scope": {"type": "string", "enum": list(SCOPES), "default": "all"},
            "effect": {"type": "string", "enum": ["allow", "deny"], "default": "allow"},
            "condition": {"type": ["array", "null"], "items": _ref("Clause")},
        },
    },
    "PermissionInput": {
        "oneOf": [{"type": "string", "pattern": r"^[\w-]+\.[\w-]+$",
                   "description": "resource.action, scoped by `scopes` (default all)",
                   "examples": ["leads.view"]},
                  _ref("Grant")],
    },
    "FieldRules": {
        "type": "object", "examples": [{"deals": {"amount": "hidden"}}],
        "additionalProperties": {"type": "object", "additionalProperties": {
            "type": "string", "enum": ["hidden", "readonly"]}},
    },
    "RoleInput": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 80},
            "description": {"type": ["string", "null"]},
            "parent_id": {"type": ["integer", "null"]},
            "permissions": {"type": "array", "items": _ref("PermissionInput")},
            "scopes": {"type": "object", "additionalProperties": {
                "type": "string", "enum": list(SCOPES)},
                "description": "Scope per resource for the string permissions."},
            "field_rules": _ref("FieldRules"),
            "sign_in": {"type": "boolean", "default": True, "description": "false: API tokens only."},
            "api_access": {"type": "boolean", "default": True,
                           "description": "false: no API tokens (a browser session only)."},
        },
    },
    "Role": {
        "type": "object", "properties": {
            "id": ID, "name": {"type": "string"}, "description": {"type": "string"},
            "key": {"type": ["string", "null"]}, "builtin": {"type": "boolean"},
            "is_owner": {"type": "boolean"}, "parent_id": {"type": ["integer", "null"]},
            "sign_in": {"type": "boolean"}, "api_access": {"type": "boolean"},
            "member_count": {"type": "integer"},
            "permissions": {"type": "array", "items": _ref("Grant"),
                            "description": "The role's own grants."},
            "effective_permissions": {"type": "object",
                                      "additionalProperties": {"type": "string"},
                                      "description": "Allowed permission -> widest scope, "
                                                     "inherited grants included."},
            "field_rules": _ref("FieldRules"),
        },
    },
    "RoleList": {"type": "object", "properties": {
        "roles": {"type": "array", "items": _ref("Role")}}},
    "Comparison": {
        "type": "object",
        "properties": {
            "roles": {"type": "array", "items": {"type": "object", "properties": {
                "id": ID, "name": {"type": "string"}}}},
            "filter": {"type": "string"},
            "rows": {"type": "array", "items": {"type": "object", "properties": {
                "permission": {"type": "string"},
                "cells": {"type": "array", "items": {"type": ["string", "null"]}},
                "differs": {"type": "boolean"}}}},
        },
    },
    "Granting": {
        "type": "object",
        "properties": {"permission": {"type": "string"},
                       "roles": {"type": "array", "items": {"type": "object", "properties": {
                           "id": ID, "name": {"type": "string"},
                           "builtin": {"type": "boolean"}}}}},
    },
    "Assignment": {
        "type": "object",
        "properties": {"id": ID, "role_id": ID, "role": {"type": "string"},
                       "starts_at": INSTANT, "expires_at": INSTANT,
                       "status": {"type": "string", "enum": ["active", "scheduled", "expired"]}},
    },
    "AssignmentInput": {
        "type": "object", "required": ["role_id"], "additionalProperties": False,
        "properties": {"role_id": ID, "starts_at": INSTANT, "expires_at": INSTANT},
    },
    "AssignmentList": {"type": "object", "properties": {
        "roles": {"type": "array", "items": _ref("Assignment")}}},
    "Member": {
        "type": "object",
        "properties": {"id": ID, "user_id": {"type": ["integer", "string"]}, "name": {"type": "string"},
                       "email": {"type": ["string", "null"]},
                       "status": {"type": "string", "enum": ["pending", "active", "inactive"]},
                       "department": {"type": ["string", "null"]},
                       "roles": {"type": "array", "items": _ref("Assignment")}},
    },
    "MemberList": {"type": "object", "properties": {
        "members": {"type": "array", "items": _ref("Member")}}},
    "AccessCell": {
        "type": "object",
        "properties": {"allowed": {"type": "boolean"}, "scope": {"type": ["string", "null"]},
                       "roles": {"type": "array", "items": {"type": "string"},
                                 "description": "Roles granting it; '(inherited)' when held "
                                                "through a child role."},
                       "denied_by": {"type": "array", "items": {"type": "string"}},
                       "reason": {"type": "string"}},
    },
    "SecurityPolicy": {
        "type": "object",
        "properties": {
            "workspace_id": ID, "saved": {"type": "boolean", "description": "False: defaults."},
            "policy": {"type": "object", "properties": SECURITY_POLICY_FIELDS},
            "changes": {"type": "object", "description": "PATCH only: {field: [old, new]}."},
        },
    },
    "MemberAccess": {
        "type": "object",
        "properties": {"member": _ref("Member"), "is_owner": {"type": "boolean"},
                       "roles": {"type": "array", "items": {"type": "string"}},
                       "permissions": {"type": "object",
                                       "additionalProperties": _ref("AccessCell")}},
    },
}

COMMON_ERRORS = {
    "401": _error("No credentials, or an invalid, expired or revoked token."),
    "403": _error("Refused: missing permission, or a rule that keeps roles safe."),
}
NOT_FOUND = {"404": _error("No such id in the workspace (ids of other workspaces included).")}
BAD_INPUT = {
    "400": _error("Invalid input: malformed JSON, wrong type, unknown key, resource, action, "
                  "scope, field or operator; `field` names the input at fault."),
    "413": _error("The body is larger than RBAC_API_MAX_BODY (64 KiB by default)."),
}
STEP_UP = {
    "403": _error("Refused: missing permission, a rule that keeps roles safe, or "
                  "`mfa_step_up_required`: role and ownership changes of an account "
                  "protected by two-factor authentication are made from a signed-in session "
                  "that passed a recent check (the workspace's step_up_minutes); a bearer "
                  "token never has."),
}
RULE_CONFLICT = {
    "409": _error("The change would leave a member no role in force now (expired and "
                  "not-yet-started assignments do not count); `error` is `conflict`."),
}


def _path_id(name: str, what: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID,
            "description": f"Id of the {what} in the current workspace."}


ROLE_ID = _path_id("role_id", "role")
MEMBER_ID = _path_id("membership_id", "membership")
AGREEMENT_ID = {"name": "agreement_id", "in": "path", "required": True, "schema": ID,
                "description": "Id of an agreement this workspace grants or receives."}


def _op(summary: str, responses: dict[str, Any], *, tag: str, body: Any = None,
        parameters: list[dict[str, Any]] | None = None, errors: tuple[dict[str, Any], ...] = (),
        ) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "tags": [tag], "responses": dict(responses)}
    for extra in (COMMON_ERRORS, *errors):
        op["responses"].update(extra)
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if parameters:
        op["parameters"] = parameters
    return op


#: How the records endpoints write column values (see :mod:`.values`).
RECORD_VALUES = ("Column values: Decimal as a string, Enum by value (by name when the value "
                 "is not a string, finite number or boolean), UUID as a string, dates and "
                 "times in ISO 8601, intervals in seconds, bytes in base64, JSON as stored, "
                 "NaN and infinities as strings; any other type as its text unless the host "
                 "registers @rbac.field_serializer.")
RESOURCE = {"name": "resource", "in": "path", "required": True,
            "schema": {"type": "string"}, "description": "A protected resource, e.g. leads."}

PATHS: dict[str, Any] = {
    "/roles": {
        "get": _op("List the workspace's roles (roles.view).",
                   {"200": _json(_ref("RoleList"), "The roles.")}, tag="roles"),
        "post": _op("Create a role (roles.create; never wider than the caller).",
                    {"201": _json(_ref("Role"), "The new role.")}, tag="roles",
                    body={**_ref("RoleInput"), "required": ["name"]}, errors=(BAD_INPUT, STEP_UP)),
    },
    "/roles/{role_id}": {
        "get": _op("Get a role (roles.view).", {"200": _json(_ref("Role"), "The role.")},
                   tag="roles", parameters=[ROLE_ID], errors=(NOT_FOUND,)),
        "patch": _op("Change a role: only the keys sent (roles.edit). `permissions` "
                     "replaces the whole matrix.",
                     {"200": _json(_ref("Role"), "The changed role.")}, tag="roles",
                     body=_ref("RoleInput"), parameters=[ROLE_ID],
                     errors=(NOT_FOUND, BAD_INPUT, STEP_UP)),
        "delete": _op("Delete a role (roles.delete), moving its members to `move_to`.",
                      {"204": {"description": "Deleted."}}, tag="roles",
                      parameters=[ROLE_ID, {
                          "name": "move_to", "in": "query", "required": False, "schema": ID,
                          "description": "Give the role's members this role first."}],
                      errors=(NOT_FOUND, BAD_INPUT, RULE_CONFLICT, STEP_UP)),
    },
    "/roles/{role_id}/clone": {
        "post": _op("Create a custom role from a copy of this one, inherited grants and field "
                    "rules included (roles.create).",
                    {"201": _json(_ref("Role"), "The copy.")}, tag="roles",
                    body={"type": "object", "required": ["name"], "additionalProperties": False,
                          "properties": {"name": {"type": "string"},
                                         "description": {"type": ["string", "null"]}}},
                    parameters=[ROLE_ID], errors=(NOT_FOUND, BAD_INPUT, STEP_UP)),
    },
    "/roles/compare": {
        "get": _op("Compare two or more roles, one row per permission (roles.view).",
                   {"200": _json(_ref("Comparison"), "The comparison.")}, tag="roles",
                   parameters=[
                       {"name": "ids", "in": "query", "required": True,
                        "schema": {"type": "string", "examples": ["1,2"]},
                        "description": "Role ids, separated by commas."},
                       {"name": "filter", "in": "query", "required": False,
                        "schema": {"type": "string", "maxLength": 100},
                        "description": "Keep permissions containing this text."}],
                   errors=(NOT_FOUND, BAD_INPUT)),
    },
    "/roles/granting": {
        "get": _op("Roles that grant a permission, directly or inherited (roles.view).",
                   {"200": _json(_ref("Granting"), "The roles.")}, tag="roles",
                   parameters=[{"name": "permission", "in": "query", "required": True,
                                "schema": {"type": "string", "examples": ["deals.export"]}}],
                   errors=(BAD_INPUT,)),
    },
    "/members": {
        "get": _op("List the workspace's members and their roles (members.view).",
                   {"200": _json(_ref("MemberList"), "The members.")}, tag="members"),
    },
    "/members/{membership_id}/roles": {
        "get": _op("A member's role assignments (members.view, or oneself).",
                   {"200": _json(_ref("AssignmentList"), "The assignments.")}, tag="members",
                   parameters=[MEMBER_ID], errors=(NOT_FOUND,)),
        "post": _op("Give a member a role, optionally between two instants (members.edit; "
                    "only an Owner gives Owner or Admin; never one's own roles; "
                    "segregation of duties applies).",
                    {"201": _json(_ref("Assignment"), "The assignment.")}, tag="members",
                    body=_ref("AssignmentInput"), parameters=[MEMBER_ID],
                    errors=(NOT_FOUND, BAD_INPUT, STEP_UP)),
    },
    "/members/{membership_id}/roles/{member_role_id}": {
        "delete": _op("Take a role assignment away (members.edit; the last Owner and a "
                      "member's last role in force stay).",
                      {"204": {"description": "Removed."}}, tag="members",
                      parameters=[MEMBER_ID, _path_id("member_role_id", "role assignment")],
                      errors=(NOT_FOUND, BAD_INPUT, RULE_CONFLICT, STEP_UP)),
    },
    "/members/{membership_id}/access": {
        "get": _op("A member's effective permissions and the roles each comes from "
                   "(members.view, or oneself).",
                   {"200": _json(_ref("MemberAccess"), "The effective access.")},
                   tag="members", parameters=[MEMBER_ID], errors=(NOT_FOUND,)),
    },
    "/records/{resource}": {
        "get": _op("One page of the records of a resource the member may view, without the "
                   "fields hidden from them (resource.view). " + RECORD_VALUES,
                   {"200": _json({"type": "object", "properties": {
                       "items": {"type": "array", "items": {"type": "object"}},
                       "page": {"type": "integer"}, "per_page": {"type": "integer"}}},
                       "The page.")}, tag="records",
                   parameters=[RESOURCE,
                               {"name": "page", "in": "query", "schema": {"type": "integer",
                                                                          "minimum": 1}},
                               {"name": "per_page", "in": "query",
                                "schema": {"type": "integer", "minimum": 1, "maximum": 100}}],
                   errors=(NOT_FOUND, BAD_INPUT)),
    },
    "/records/{resource}/{record_id}": {
        "get": _op("One record the member may view, without hidden fields; any other id "
                   "is a 404. " + RECORD_VALUES,
                   {"200": _json({"type": "object"}, "The record.")}, tag="records",
                   parameters=[RESOURCE, {"name": "record_id", "in": "path", "required": True,
                                          "schema": {"type": "string"},
                                          "description": "The record's key, as its model "
                                                         "types it (integer, UUID, text)."}],
                   errors=(NOT_FOUND,)),
    },
    "/audit": {
        "get": _op("The workspace's audit trail, newest first (settings.view): permission "
                   "changes with before/after values, refused attempts, exports, view-as.",
                   {"200": _json({"type": "object", "properties": {
                       "items": {"type": "array", "items": _ref("AuditEvent")},
                       "page": {"type": "integer"}, "per_page": {"type": "integer"},
                       "total": {"type": "integer"}}}, "One page of events.")},
                   tag="audit",
                   parameters=[
                       {"name": "actor", "in": "query", "schema": ID,
                        "description": "Membership id of the actor."},
                       {"name": "action", "in": "query", "schema": {"type": "string"},
                        "description": "e.g. role.created, access.denied, export, "
                                       "auth.failed; or group:security for every sign-in "
                                       "and security event"},
                       {"name": "resource", "in": "query", "schema": {"type": "string"}},
                       {"name": "from", "in": "query",
                        "schema": {"type": "string", "format": "date"},
                        "description": "From this date or instant (UTC)."},
                       {"name": "to", "in": "query",
                        "schema": {"type": "string", "format": "date"},
                        "description": "Until this date (inclusive) or instant (UTC)."},
                       {"name": "page", "in": "query", "schema": {"type": "integer",
                                                                  "minimum": 1}},
                       {"name": "per_page", "in": "query",
                        "schema": {"type": "integer", "minimum": 1, "maximum": 200}}],
                   errors=(BAD_INPUT,)),
    },
    "/sharing": {
        "get": _op("Sharing agreements of the workspace: shared by you and shared with you "
                   "(settings.view).",
                   {"200": _json({"type": "object", "properties": {
                       "shared_by_you": {"type": "array", "items": _ref("Agreement")},
                       "shared_with_you": {"type": "array", "items": _ref("Agreement")}}},
                       "Both lists.")}, tag="sharing"),
        "post": _op("Offer another workspace access to this workspace's records "
                    "(settings.manage; never more than the caller holds workspace-wide). "
                    "The agreement is pending until the receiving workspace accepts it.",
                    {"201": _json(_ref("Agreement"), "The new agreement.")}, tag="sharing",
                    body={**_ref("AgreementInput"), "required": ["workspace", "permissions"]},
                    errors=(BAD_INPUT,)),
    },
    "/sharing/{agreement_id}": {
        "get": _op("One agreement this workspace is a side of (settings.view).",
                   {"200": _json(_ref("Agreement"), "The agreement.")}, tag="sharing",
                   parameters=[AGREEMENT_ID], errors=(NOT_FOUND,)),
        "patch": _op("Change an open agreement: permissions, notes, expiry (granting side, "
                     "settings.manage).",
                     {"200": _json(_ref("Agreement"), "The agreement.")}, tag="sharing",
                     parameters=[AGREEMENT_ID], body=_ref("AgreementInput"),
                     errors=(NOT_FOUND, BAD_INPUT)),
    },
    "/sharing/{agreement_id}/{verb}": {
        "post": _op("revoke (granting side), accept or decline a pending agreement, or leave "
                    "an active one (receiving side); settings.manage.",
                    {"200": _json(_ref("Agreement"), "The agreement.")}, tag="sharing",
                    parameters=[AGREEMENT_ID,
                                {"name": "verb", "in": "path", "required": True,
                                 "schema": {"type": "string", "enum": [
                                     "revoke", "accept", "decline", "leave"]}}],
                    errors=(NOT_FOUND, BAD_INPUT)),
    },
    "/security-policy": {
        "get": _op("The workspace's security policy: MFA, sessions, IP allowlist, allowed "
                   "devices, password rules (Owners, and settings.manage).",
                   {"200": _json(_ref("SecurityPolicy"), "The policy.")}, tag="security"),
        "patch": _op("Change the keys sent (Owners only; needs a recent MFA check of an "
                     "enrolled Owner). A save that changes nothing writes no audit event.",
                     {"200": _json(_ref("SecurityPolicy"), "The saved policy and its changes.")},
                     tag="security",
                     body={"type": "object", "additionalProperties": False,
                           "properties": SECURITY_POLICY_FIELDS},
                     errors=(BAD_INPUT, {"409": _error(
                         "The change would lock the caller out: an allowlist without their "
                         "address (ip_allowlist), their session's device type refused "
                         "(allowed_devices), or MFA required of them before they enrolled "
                         "(mfa); `error` is `conflict`.")})),
    },
    "/openapi.json": {
        "get": {"summary": "This description.", "tags": ["meta"], "security": [],
                "responses": {"200": {"description": "The OpenAPI document.",
                                      "content": {"application/json": {"schema": {
                                          "type": "object"}}}}}},
    },
}


def openapi_document(server_url: str) -> dict[str, Any]:
    """Return the OpenAPI 3.1 document for the API mounted at ``server_url``."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "crm_rbac_plugin API",
            "version": "1",
            "description": (
                "Roles, role assignments and effective access of one workspace. "
                "Authenticate with a personal API token (`Authorization: Bearer <token>`, "
                "created on the settings page \"API tokens\"): the request acts in the "
                "token's workspace with exactly its member's access. A browser session works "
                "too; its POST, PATCH and DELETE requests need the CSRF token in an "
                "`X-CSRFToken` header. Errors are `{error, message, field}`."),
        },
        "servers": [{"url": server_url}],
        "tags": [{"name": "roles"}, {"name": "members"}, {"name": "records"},
                 {"name": "audit"}, {"name": "sharing"}, {"name": "security"},
                 {"name": "meta"}],
        "security": [{"bearerAuth": []}, {"sessionCookie": []}],
        "paths": copy.deepcopy(PATHS),
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "A personal API token (crmrbac_...)."},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session",
                                  "description": "The browser session; writes also need "
                                                 "an X-CSRFToken header."},
            },
        },
    }
