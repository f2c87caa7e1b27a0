"""The OpenAPI description of a member's status and API tokens (:mod:`.members`).

Kept beside :mod:`.openapi` (which stays under the module size limit):
:func:`extend` adds the paths and the token's schema.
"""

from __future__ import annotations

import copy
from typing import Any

from .openapi import BAD_INPUT, MEMBER_ID, NOT_FOUND, RULE_CONFLICT, _json, _op, _path_id, _ref

WHEN = {"type": ["string", "null"], "format": "date-time"}
SCHEMAS: dict[str, Any] = {
    "MemberToken": {"type": "object", "description": "An API token, never its secret.",
                    "properties": {
                        "id": {"type": "integer"}, "name": {"type": "string"},
                        "prefix": {"type": "string", "description": "The token's first "
                                   "characters, to tell it apart."},
                        "created_at": WHEN, "last_used_at": WHEN, "expires_at": WHEN,
                        "revoked_at": WHEN}},
}
REACH = ("whoever may deactivate the member: an Owner, an Admin for anyone but Owners and "
         "Admins, a Manager for the members assigned to them; never oneself")

PATHS: dict[str, Any] = {
    "/members/{membership_id}/{verb}": {
        "post": _op("deactivate a member (no access from their next request on; their "
                    "records stay theirs; the last Owner stays) or reactivate an inactive "
                    f"one, with their roles (members.edit; {REACH}). A pending member, an "
                    "inactive one deactivated again or an active one reactivated is a 400 "
                    "naming `status`.",
                    {"200": _json(_ref("Member"), "The member.")}, tag="members",
                    parameters=[MEMBER_ID, {"name": "verb", "in": "path", "required": True,
                                            "schema": {"type": "string",
                                                       "enum": ["deactivate", "reactivate"]}}],
                    errors=(NOT_FOUND, BAD_INPUT, RULE_CONFLICT)),
    },
    "/members/{membership_id}/tokens": {
        "get": _op(f"A member's API tokens, newest first, revoked ones included ({REACH}).",
                   {"200": _json({"type": "object", "properties": {"tokens": {
                       "type": "array", "items": _ref("MemberToken")}}}, "The tokens.")},
                   tag="members", parameters=[MEMBER_ID], errors=(NOT_FOUND,)),
    },
    "/members/{membership_id}/tokens/{token_id}/revoke": {
        "post": _op(f"Revoke one of a member's API tokens ({REACH}); audited "
                    "`member.token_revoked`. A revoked token stays revoked.",
                    {"200": _json(_ref("MemberToken"), "The token.")}, tag="members",
                    parameters=[MEMBER_ID, _path_id("token_id", "member's API token")],
                    errors=(NOT_FOUND,)),
    },
}


def extend(document: dict[str, Any]) -> dict[str, Any]:
    """Add a member's status and token endpoints and the token's schema to ``document``."""
    document["paths"].update(copy.deepcopy(PATHS))
    document["components"]["schemas"].update(copy.deepcopy(SCHEMAS))
    return document
