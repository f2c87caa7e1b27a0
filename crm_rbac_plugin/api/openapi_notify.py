"""The OpenAPI description of the notification endpoints (:mod:`.notifications`).

Kept beside :mod:`.openapi` (which stays under the module size limit);
:func:`with_notifications` adds these paths and schemas to its document.
"""

from __future__ import annotations

from typing import Any

from ..notify.preferences import CATEGORIES, CHANNELS
from .openapi import BAD_INPUT, NOT_FOUND, _json, _op, _ref

NOTIFICATION_ID = {"name": "notification_id", "in": "path", "required": True,
                   "schema": {"type": "integer", "minimum": 1},
                   "description": "Id of one of the caller's own notifications."}
CHANNEL = {"type": "string", "enum": list(CHANNELS)}

SCHEMAS: dict[str, Any] = {
    "Notification": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "category": {"type": "string", "enum": list(CATEGORIES)},
            "event": {"type": "string", "examples": ["role.assigned"]},
            "summary": {"type": "string"},
            "link": {"type": "string", "description": "Path of the page where one acts on it."},
            "created_at": {"type": "string", "format": "date-time"},
            "read": {"type": "boolean"},
            "read_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "NotificationPreferences": {
        "type": "object",
        "properties": {
            "preferences": {"type": "object",
                            "properties": {key: CHANNEL for key in CATEGORIES}},
            "locked": {"type": "array", "items": {"type": "string"},
                       "description": "Categories the caller may not switch off (an "
                                      "Owner's security alerts)."},
        },
    },
}

PATHS: dict[str, Any] = {
    "/notifications": {
        "get": _op("The caller's own notifications, newest first (50 per call; `?unread=1`, "
                   "`?before=<id>` to page on), and their unread count.",
                   {"200": _json({"type": "object", "properties": {
                       "notifications": {"type": "array", "items": _ref("Notification")},
                       "unread": {"type": "integer"}}}, "The notifications.")},
                   tag="notifications", errors=(BAD_INPUT,)),
    },
    "/notifications/{notification_id}/read": {
        "post": _op("Mark one of the caller's notifications read (another member's id is a 404).",
                    {"200": _json(_ref("Notification"), "The notification.")},
                    tag="notifications", parameters=[NOTIFICATION_ID], errors=(NOT_FOUND,)),
    },
    "/notifications/read-all": {
        "post": _op("Mark every unread notification of the caller read.",
                    {"200": _json({"type": "object", "properties": {
                        "marked": {"type": "integer"}}}, "How many were marked.")},
                    tag="notifications"),
    },
    "/notification-preferences": {
        "get": _op("The caller's channel per category: mail, digest (daily), app or off.",
                   {"200": _json(_ref("NotificationPreferences"), "The channels.")},
                   tag="notifications"),
        "patch": _op("Change the caller's channels for the categories sent. `off` for an "
                     "Owner's security alerts is a 400 naming `security`.",
                     {"200": _json(_ref("NotificationPreferences"), "The saved channels.")},
                     tag="notifications",
                     body={"type": "object", "additionalProperties": False,
                           "properties": {key: CHANNEL for key in CATEGORIES}},
                     errors=(BAD_INPUT,)),
    },
}


def with_notifications(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the notification paths, schemas and tag added."""
    document["paths"].update(PATHS)
    document["components"]["schemas"].update(SCHEMAS)
    document["tags"].append({"name": "notifications"})
    return document
