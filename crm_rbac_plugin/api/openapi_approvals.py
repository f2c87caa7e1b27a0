"""The OpenAPI description of the approval endpoints, and the 202 of operations that wait.

Kept apart from :mod:`.openapi` (which stays under the module size limit)
and merged into its document by :func:`add_approvals`.
"""

from __future__ import annotations

import copy
from typing import Any

from ..approvals.policy import APPROVALS, EXPIRY_HOURS, MAX_THRESHOLD
from ..gate import COUNTED, OPERATIONS
from .openapi import BAD_INPUT, NOT_FOUND, _error, _json, _op, _ref

REQUEST_ID = {"name": "request_id", "in": "path", "required": True,
              "schema": {"type": "integer", "minimum": 1},
              "description": "Id of an approval request of the current workspace."}
REASON_BODY = {"type": "object", "additionalProperties": False,
               "properties": {"reason": {"type": "string", "maxLength": 2000}}}
DECIDED = {"409": _error("The request is already decided, cancelled or expired, or the caller "
                         "already approved it; `error` is `conflict`.")}
REFUSED = {"403": _error("The caller may not: deciding needs the request's approver "
                         "permission and is never the requester's (segregation of duties); "
                         "cancelling is the requester's alone.")}

SCHEMAS: dict[str, Any] = {
    "ApprovalRequest": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"}, "operation": {"type": "string", "enum": list(OPERATIONS)},
            "summary": {"type": "string"}, "reason": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "executing", "executed", "failed",
                                                  "rejected", "cancelled", "expired"]},
            "payload": {"type": "object"}, "requester_membership_id": {"type": "integer"},
            "approvals_required": {"type": "integer"},
            "approvals": {"type": "array", "items": {"type": "object"}},
            "created_at": {"type": "string", "format": "date-time"},
            "expires_at": {"type": "string", "format": "date-time"},
            "decided_at": {"type": ["string", "null"], "format": "date-time"},
            "failure": {"type": "string"}, "download_ready": {"type": "boolean"},
            "outcome": {"type": "string", "description": "After a decision: approved, "
                                                         "executed, failed, rejected or cancelled."},
        },
    },
    "ApprovalPolicy": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "operations": {
                "type": "object", "additionalProperties": False,
                "properties": {name: ({"type": "integer", "minimum": 0, "maximum": MAX_THRESHOLD,
                                       "description": "More than this many rows waits."}
                                      if name in COUNTED else {"type": ["boolean", "integer"]})
                               for name in OPERATIONS}},
            "approvals_required": {"type": "integer", "minimum": APPROVALS[0],
                                   "maximum": APPROVALS[-1]},
            "approver_permission": {"type": "string", "examples": ["approvals.decide"]},
            "expiry_hours": {"type": "integer", "minimum": EXPIRY_HOURS[0],
                             "maximum": EXPIRY_HOURS[1]},
        },
    },
    "PendingApproval": {
        "type": "object",
        "properties": {"status": {"const": "pending_approval"}, "request_id": {"type": "integer"},
                       "message": {"type": "string"}, "link": {"type": "string"}},
    },
}

PENDING = {"202": _json(_ref("PendingApproval"), "The workspace's approval policy makes this "
                        "operation wait: nothing changed; approvers decide request_id.")}


def _decision(verb: str) -> dict[str, Any]:
    return _op(f"{verb.capitalize()} a request, with an optional reason.",
               {"200": _json(_ref("ApprovalRequest"), "The request and the outcome.")},
               tag="approvals", body=REASON_BODY, parameters=[REQUEST_ID],
               errors=(NOT_FOUND, BAD_INPUT, REFUSED, DECIDED))


PATHS: dict[str, Any] = {
    "/approvals": {"get": _op(
        "The caller's requests to decide, their own, and the decided ones they may see.",
        {"200": _json({"type": "object"}, "to_decide, mine, history.")}, tag="approvals")},
    "/approvals/{request_id}": {"get": _op(
        "One request (its requester and its eligible approvers only).",
        {"200": _json(_ref("ApprovalRequest"), "The request.")}, tag="approvals",
        parameters=[REQUEST_ID], errors=(NOT_FOUND,))},
    "/approvals/{request_id}/approve": {"post": _decision("approve")},
    "/approvals/{request_id}/reject": {"post": _decision("reject")},
    "/approvals/{request_id}/cancel": {"post": _decision("cancel")},
    "/approvals/policy": {
        "get": _op("The workspace's approval policy.",
                   {"200": _json(_ref("ApprovalPolicy"), "The policy.")}, tag="approvals"),
        "patch": _op("Change the keys sent (Owners only; may itself wait for approval).",
                     {"200": _json(_ref("ApprovalPolicy"), "The saved policy."), **PENDING},
                     tag="approvals", body=_ref("ApprovalPolicy"), errors=(BAD_INPUT,)),
    },
}

#: Existing operations that may answer 202 when the workspace's policy names them.
MAY_WAIT = (("/roles/{role_id}", "delete"), ("/members/{membership_id}/roles", "post"),
            ("/security-policy", "patch"), ("/sharing", "post"),
            ("/sharing/{agreement_id}", "patch"))


def add_approvals(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the approval endpoints, schemas and tag, and the 202 answers, to ``doc``."""
    doc["paths"].update(copy.deepcopy(PATHS))
    doc["components"]["schemas"].update(copy.deepcopy(SCHEMAS))
    doc["tags"].insert(-1, {"name": "approvals"})
    for path, method in MAY_WAIT:
        op = doc["paths"].get(path, {}).get(method)
        if op is not None:
            op["responses"].update(copy.deepcopy(PENDING))
    return doc
