"""The OpenAPI description of the workspace lifecycle endpoints (:mod:`.workspaces`).

Kept apart from :mod:`.openapi` and merged into its document by
:func:`extend`; the same test checks that every route is described.
"""

from __future__ import annotations

import copy
from typing import Any

from .openapi import BAD_INPUT, NOT_FOUND, _error, _json, _op, _ref

CONFLICT = {"409": _error("The workspace is deleted already, its grace period is over, or "
                          "the transfer needs approval; `error` is `conflict`.")}
WHEN = {"type": ["string", "null"], "format": "date-time"}
#: Creating and restoring act for the account, outside a token's workspace.
SESSION_ONLY = {"403": _error("A bearer token acts only in its own workspace: this needs a "
                              "signed-in session; `error` is `session_required`.")}

SCHEMAS: dict[str, Any] = {
    "Workspace": {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "slug": {"type": "string"},
        "plan": {"type": "string"}, "deleted_at": WHEN,
        "purge_after": {**WHEN, "description": "When a deleted workspace is purged "
                        "(RBAC_WORKSPACE_GRACE_DAYS after its deletion)."}}},
}

PATHS: dict[str, Any] = {
    "/workspaces": {
        "post": _op("Create a workspace; the caller becomes its Owner (any signed-in user).",
                    {"201": _json(_ref("Workspace"), "The new workspace.")}, tag="workspaces",
                    body={"type": "object", "additionalProperties": False, "required": ["name"],
                          "properties": {"name": {"type": "string", "maxLength": 120}}},
                    errors=(BAD_INPUT, SESSION_ONLY)),
    },
    "/workspaces/restore": {
        "post": _op("Restore a deleted workspace within its grace period (its Owners only; "
                    "404 for anyone else).",
                    {"200": _json(_ref("Workspace"), "The restored workspace.")},
                    tag="workspaces",
                    body={"type": "object", "additionalProperties": False,
                          "required": ["workspace_id"],
                          "properties": {"workspace_id": {"type": "integer"}}},
                    errors=(NOT_FOUND, CONFLICT, SESSION_ONLY)),
    },
    "/workspace/transfer": {
        "post": _op("Make an active member the Owner; the calling Owner becomes an Admin, in "
                    "one step. Confirmed by `password`, or, for an account with two-factor "
                    "authentication, by a recent MFA check of the signed-in session (403 with "
                    "`field: mfa` otherwise; a bearer token alone never counts).",
                    {"200": _json({"type": "object", "properties": {
                        "owner_membership_id": {"type": "integer"},
                        "owner": {"type": "string"}}}, "The new Owner.")},
                    tag="workspaces",
                    body={"type": "object", "additionalProperties": False,
                          "required": ["membership_id"],
                          "properties": {"membership_id": {"type": "integer"},
                                         "password": {"type": "string"}}},
                    errors=(BAD_INPUT, CONFLICT)),
    },
    "/workspace": {
        "delete": _op("Delete the current workspace (Owners only): `confirm` must be its exact "
                      "name. Every member loses access at once; its sharing agreements end; "
                      "its Owners can restore it until `purge_after`.",
                      {"200": _json(_ref("Workspace"), "The deleted workspace.")},
                      tag="workspaces",
                      body={"type": "object", "additionalProperties": False,
                            "required": ["confirm"],
                            "properties": {"confirm": {"type": "string"}}},
                      errors=(BAD_INPUT, CONFLICT)),
    },
    "/workspace/export": {
        "get": _op("The current workspace's full export: a zip of `workspace.json` and one "
                   "CSV per table (Owners only).",
                   {"200": {"description": "A zip.", "content": {"application/zip": {}}}},
                   tag="workspaces"),
    },
}


def extend(document: dict[str, Any]) -> dict[str, Any]:
    """Add the lifecycle endpoints, their schemas and their tag to an OpenAPI document."""
    document["paths"].update(copy.deepcopy(PATHS))
    document["components"]["schemas"].update(copy.deepcopy(SCHEMAS))
    document["tags"].insert(-1, {"name": "workspaces"})
    return document
