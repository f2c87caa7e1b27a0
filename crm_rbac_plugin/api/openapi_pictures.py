"""The OpenAPI description of the profile pictures (:mod:`.members`).

Kept beside :mod:`.openapi` (which stays under the module size limit):
:func:`extend` adds the picture's path and the members' ``picture_url``.
"""

from __future__ import annotations

import copy
from typing import Any

from .openapi import MEMBER_ID, NOT_FOUND, _op

PICTURE_URL = {
    "type": ["string", "null"],
    "description": "Path of the member's profile picture under this API (it changes with the "
                   "picture), or null when there is none the caller may see: show initials."}

PATHS: dict[str, Any] = {
    "/members/{membership_id}/picture": {
        "get": _op("A member's profile picture, to a member of the same workspace: a square "
                   "WebP the plugin encoded (no metadata), `Cache-Control: private, "
                   "no-store`, the ETag its digest. No such member, one of another "
                   "workspace, an inactive one and one without a picture are the same 404.",
                   {"200": {"description": "The picture.",
                            "content": {"image/webp": {"schema": {
                                "type": "string", "contentMediaType": "image/webp"}}}},
                    "304": {"description": "Unchanged since the ETag sent (If-None-Match)."}},
                   tag="members", parameters=[MEMBER_ID], errors=(NOT_FOUND,)),
    },
}


def extend(document: dict[str, Any]) -> dict[str, Any]:
    """Add the picture's path, and ``picture_url`` to the Member schema, of ``document``."""
    document["paths"].update(copy.deepcopy(PATHS))
    member = document["components"]["schemas"]["Member"]
    member["properties"]["picture_url"] = copy.deepcopy(PICTURE_URL)
    return document
