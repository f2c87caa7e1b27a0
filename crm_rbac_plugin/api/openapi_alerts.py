"""The alert endpoints' part of the OpenAPI description (see :mod:`.openapi`)."""

from __future__ import annotations

import copy
from typing import Any

from ..alerts.rules import RULES
from ..alerts.thresholds import DAY_NAMES, LIMITS
from ..models import ALERT_SEVERITIES, ALERT_STATUSES
from .openapi import BAD_INPUT, ID, INSTANT, NOT_FOUND, _error, _json, _op, _ref

SETTINGS_FIELDS: dict[str, Any] = {
    **{name: {"type": "integer", "minimum": low, "maximum": high}
       for name, (low, high) in LIMITS.items()},
    "business_days": {"type": "array", "items": {"type": "string", "enum": list(DAY_NAMES)},
                      "description": "Empty: no business hours, the off-hours rule is off."},
    "timezone": {"type": "string", "examples": ["Europe/Paris"],
                 "description": "An IANA time-zone name."},
}

SCHEMAS: dict[str, Any] = {
    "Alert": {"type": "object", "properties": {
        "id": {"type": "integer"}, "rule": {"type": "string", "enum": list(RULES)},
        "severity": {"type": "string", "enum": list(ALERT_SEVERITIES)},
        "status": {"type": "string", "enum": list(ALERT_STATUSES)},
        "membership_id": {"type": ["integer", "null"]}, "summary": {"type": "string"},
        "detail": {}, "created_at": INSTANT, "acknowledged_at": INSTANT,
        "acknowledged_by_id": {"type": ["integer", "null"]}, "resolved_at": INSTANT,
        "resolved_by_id": {"type": ["integer", "null"]}}},
    "AlertSettings": {"type": "object", "properties": {
        "settings": {"type": "object", "properties": SETTINGS_FIELDS},
        "workspace_id": {"type": "integer"}, "changes": {"type": "object"}}},
}

_FILTERS = [{"name": name, "in": "query", "required": False,
             "schema": {"type": "string", "enum": list(values)}}
            for name, values in (("status", ALERT_STATUSES), ("severity", ALERT_SEVERITIES),
                                 ("rule", RULES))]
_MOVE_BODY = {"type": "object", "required": ["alert_id"], "additionalProperties": False,
              "properties": {"alert_id": ID}}
_CONFLICT = {"409": _error("The alert already moved past that status; `error` is `conflict`.")}


def _move(summary: str) -> dict[str, Any]:
    return _op(summary, {"200": _json({"type": "object", "properties": {"alert": _ref("Alert")}},
                                      "The alert.")},
               tag="alerts", body=_MOVE_BODY, errors=(NOT_FOUND, BAD_INPUT, _CONFLICT))


PATHS: dict[str, Any] = {
    "/alerts": {"get": _op(
        "The workspace's alerts, newest first (Owners, and settings.manage).",
        {"200": _json({"type": "object", "properties": {
            "alerts": {"type": "array", "items": _ref("Alert")}}}, "The alerts.")},
        tag="alerts", parameters=_FILTERS, errors=(BAD_INPUT,))},
    "/alerts/acknowledge": {"post": _move("Acknowledge an open alert (audited).")},
    "/alerts/resolve": {"post": _move("Resolve an open or acknowledged alert (audited).")},
    "/alert-settings": {
        "get": _op("The alert thresholds, business hours and time zone (Owners, and "
                   "settings.manage).", {"200": _json(_ref("AlertSettings"), "The settings.")},
                   tag="alerts"),
        "patch": _op("Change the keys sent (Owners only; needs a recent MFA check of an enrolled "
                     "Owner). An out-of-range or unknown value is a 400 naming its field; "
                     "nothing is saved.",
                     {"200": _json(_ref("AlertSettings"), "The saved settings and changes.")},
                     tag="alerts", body={"type": "object", "additionalProperties": False,
                                         "properties": SETTINGS_FIELDS},
                     errors=(BAD_INPUT,)),
    },
}


def with_alerts(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (the API's description) with the alert endpoints and schemas added."""
    doc["paths"].update(copy.deepcopy(PATHS))
    doc["components"]["schemas"].update(copy.deepcopy(SCHEMAS))
    doc["tags"].append({"name": "alerts"})
    return doc
