"""The OpenAPI description of the access-review endpoints (:mod:`.reviews`).

Kept apart from :mod:`.openapi` (which describes the rest of the API) and
merged into its document by :func:`extend`; the same test checks that
every route is described.
"""

from __future__ import annotations

import copy
from typing import Any

from ..certification.schedule import INTERVAL_RANGE
from .openapi import BAD_INPUT, NOT_FOUND, STEP_UP, _error, _json, _op, _ref

RUN_ID = {"name": "run_id", "in": "path", "required": True,
          "schema": {"type": "integer", "minimum": 1},
          "description": "Id of a certification run of the current workspace."}
CONFLICT = {"409": _error(
    "A decided item, a completed run (which takes no decision and no refresh), a run with "
    "undecided items, an item whose member's "
    "roles changed since it was listed (the message names the change), a revoke of a role "
    "the member's department gives, or a run completed before its items show every role "
    "in force; `error` is `conflict`.")}
#: The report CSV over the workspace's export threshold (:func:`..approvals.setup.required_response`).
APPROVAL_REQUIRED = {"409": _error(
    "The report lists more members than the workspace exports without approval: "
    "`status` is `approval_required`, and `ask` (`url`, `token`) asks for it with a POST.")}
REASON = {"type": "string", "maxLength": 500,
          "description": "Why (stored on the item and on the revoke's audit event)."}
WHEN = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "ReviewSchedule": {"type": "object", "properties": {
        "workspace_id": {"type": "integer"},
        "interval_days": {"type": "integer", "minimum": INTERVAL_RANGE[0],
                          "maximum": INTERVAL_RANGE[1]},
        "require_reason": {"type": "boolean", "description": "Whether every permission "
                           "change needs a `reason` (any write takes one)."},
        "last_reviewed_at": WHEN, "due_at": WHEN, "due": {"type": "boolean"}}},
    "CertificationItem": {"type": "object", "properties": {
        "id": {"type": "integer"}, "membership_id": {"type": "integer"},
        "member": {"type": "string"},
        "why": {"type": "array", "items": {"enum": ["privileged", "resource"]}},
        "roles": {"type": "array", "items": {"type": "object"}},
        "decision": {"type": ["string", "null"], "enum": ["keep", "revoke", None]},
        "decided_at": WHEN, "decided_by_membership_id": {"type": ["integer", "null"]},
        "decided_by": {"type": "string"},
        "outcome": {"type": "string", "description": "kept, revoked: ..., or refused: ..."},
        "reason": {"type": "string"}}},
    "CertificationRun": {"type": "object", "properties": {
        "id": {"type": "integer"}, "status": {"enum": ["open", "completed"]},
        "resource": {"type": ["string", "null"]}, "started_at": WHEN,
        "started_by_membership_id": {"type": ["integer", "null"]},
        "started_by": {"type": "string"}, "completed_at": WHEN,
        "completed_by_membership_id": {"type": ["integer", "null"]},
        "completed_by": {"type": ["string", "null"]}, "decided": {"type": "integer"},
        "total": {"type": "integer"},
        "items": {"type": "array", "items": _ref("CertificationItem")},
        "pending_changes": {"type": "array", "items": {"type": "string"}, "description":
                            "One run: what changed since its lines were listed, in words "
                            "(empty once refreshed, and for a completed run)."}}},
}

PATHS: dict[str, Any] = {
    "/reviews/schedule": {
        "get": _op("The review schedule (settings.view).",
                   {"200": _json(_ref("ReviewSchedule"), "The schedule.")}, tag="reviews"),
        "patch": _op("Change the schedule (Owners only, with a recent MFA check when enrolled).",
                     {"200": _json(_ref("ReviewSchedule"), "The saved schedule.")},
                     tag="reviews", errors=(BAD_INPUT, STEP_UP),
                     body={"type": "object", "additionalProperties": False, "properties": {
                         "interval_days": SCHEMAS["ReviewSchedule"]["properties"][
                             "interval_days"], "require_reason": {"type": "boolean"}}}),
    },
    "/reviews/runs": {
        "get": _op("The certification runs, newest first (settings.view).",
                   {"200": _json({"type": "object", "properties": {"runs": {
                       "type": "array", "items": _ref("CertificationRun")}}}, "The runs.")},
                   tag="reviews"),
        "post": _op("Start a run over the privileged members and, with `resource`, the "
                    "members who may view it (settings.view and roles.manage).",
                    {"201": _json(_ref("CertificationRun"), "The new run.")}, tag="reviews",
                    body={"type": "object", "additionalProperties": False,
                          "properties": {"resource": {"type": "string"}}},
                    errors=(BAD_INPUT,)),
    },
    "/reviews/runs/{run_id}": {
        "get": _op("A run with its items and, in `pending_changes`, what changed since its "
                   "lines were listed (settings.view; writes nothing).",
                   {"200": _json(_ref("CertificationRun"), "The run.")}, tag="reviews",
                   parameters=[RUN_ID], errors=(NOT_FOUND,)),
    },
    "/reviews/runs/{run_id}/refresh": {
        "post": _op("Bring an open run's lines up to the roles in force (settings.view and roles.manage): an "
                    "undecided line takes the roles in force, a member decided before gaining "
                    "a role and a member listed since get a new line.",
                    {"200": _json({"allOf": [_ref("CertificationRun"), {
                        "type": "object", "properties": {"refreshed": {
                            "type": "array", "items": {"type": "string"},
                            "description": "What changed, in words."}}}]},
                        "The refreshed run.")},
                    tag="reviews", parameters=[RUN_ID], errors=(NOT_FOUND, CONFLICT)),
    },
    "/reviews/runs/{run_id}/decisions": {
        "post": _op("Keep or revoke one item (settings.view and roles.manage; never one's "
                    "own). A revoke takes the item's roles away through the role service; "
                    "its refusal is the item's `outcome`.",
                    {"200": _json(_ref("CertificationItem"), "The decided item.")},
                    tag="reviews", parameters=[RUN_ID],
                    body={"type": "object", "additionalProperties": False,
                          "required": ["item_id", "decision"], "properties": {
                              "item_id": {"type": "integer"},
                              "decision": {"enum": ["keep", "revoke"]}, "reason": REASON}},
                    errors=(NOT_FOUND, BAD_INPUT, STEP_UP, CONFLICT)),
    },
    "/reviews/runs/{run_id}/complete": {
        "post": _op("Complete a run whose items are all decided (settings.view and roles.manage); sets the "
                    "schedule's last review.",
                    {"200": _json(_ref("CertificationRun"), "The completed run.")},
                    tag="reviews", parameters=[RUN_ID], errors=(NOT_FOUND, CONFLICT)),
    },
    "/reviews/runs/{run_id}/report": {
        "get": _op("The run's compliance report as sections of rows (settings.view).",
                   {"200": _json({"type": "object"}, "The report.")}, tag="reviews",
                   parameters=[RUN_ID], errors=(NOT_FOUND,)),
    },
    "/reviews/runs/{run_id}/report.csv": {
        "get": _op("The run's compliance report as CSV (settings.view and members.export; "
                   "over the workspace's export threshold, 409 approval_required).",
                   {"200": {"description": "CSV.", "content": {"text/csv": {}}}},
                   tag="reviews", parameters=[RUN_ID], errors=(NOT_FOUND, APPROVAL_REQUIRED)),
    },
}


def extend(document: dict[str, Any]) -> dict[str, Any]:
    """Add the review endpoints, their schemas and their tag to an OpenAPI document."""
    document["paths"].update(copy.deepcopy(PATHS))
    document["components"]["schemas"].update(copy.deepcopy(SCHEMAS))
    document["tags"].insert(-1, {"name": "reviews"})
    return document
