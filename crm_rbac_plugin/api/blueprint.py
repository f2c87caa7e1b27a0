"""The API's blueprint and what every endpoint starts with: its error type, the current
member's access, and the checks of a JSON body or query argument."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from .. import inputs, queries
from ..config import setting
from ..inputs import is_digits
from ..policy import Access
from ..proxies import current_rbac
from ..security import stepup

bp = Blueprint("rbac_api", __name__)


class ApiError(Exception):
    """A refusal answered as ``{"error", "message", "field"}`` with ``status``."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field


def forbidden(message: str) -> ApiError:
    return ApiError(403, "forbidden", message)


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"No {what} with that id in this workspace.")


def bad(message: str, field: str | None = None) -> ApiError:
    return ApiError(400, "validation_error", message, field)


def active_access() -> Access:
    access = current_rbac.current_access()
    if access is None or not access.active:
        raise forbidden("You are not an active member of this workspace.")
    return access


def require(permission: str) -> Access:
    """The current member's access, if they may ``permission``; else a 403."""
    rbac = current_rbac
    access = active_access()
    resource, _, action = permission.rpartition(".")
    decision = rbac.decide(access, action, resource)
    if not decision:
        rbac.signal_denied(access, action, resource, None, decision.reason)
        raise forbidden(decision.reason)
    return access


def step_up(what: str = "role and ownership changes") -> None:
    """Refuse a role or ownership change (or ``what`` names another sensitive action, such
    as a workspace's deletion) unless the session passed a recent MFA check.

    The pages' :func:`..security.stepup.require_recent_mfa`, asked after the
    permission check and the id lookups so that a refused member and another
    workspace's id get their 403 or 404 first. A member who is enrolled or
    must be makes such changes from a signed-in session that passed a check
    within the workspace's ``step_up_minutes``. A bearer token carries no
    session, so it never counts as checked: such a member's token gets
    ``403 {"error": "mfa_step_up_required"}`` (``mfa_required`` while they
    have not enrolled). A member whom the policy asks nothing and who has
    not enrolled passes, token or session.
    """
    state = stepup.mfa_state()
    if state is None:
        return
    if state.must_enrol:
        raise ApiError(403, "mfa_required", "Turn on two-factor authentication first.")
    if (state.enrolled or state.required) and not state.fresh():
        raise ApiError(403, "mfa_step_up_required",
                       "An account protected by two-factor authentication makes "
                       f"{what} from a signed-in session that passed a recent check: "
                       "enter a code from your authenticator app, then retry.")


def too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"The request body is larger than {limit} bytes.")


def body_bytes() -> bytes:
    """The request's body, refused with 413 beyond ``RBAC_API_MAX_BODY``.

    The stream is capped one byte past the limit (``views._limit_body``), so a
    chunked body over it arrives one byte too long rather than cut to a
    length that may still parse; the length is checked here whatever read it.
    """
    raw = request.get_data(cache=True)
    limit = setting("RBAC_API_MAX_BODY")
    if len(raw) > limit:
        raise too_large(limit)
    return raw


def json_body() -> dict[str, Any]:
    """The request's JSON object (refusing anything else with a 400, and a body
    over the limit with a 413)."""
    raw = body_bytes()
    if not raw:
        raise ApiError(400, "bad_request", "The request needs a JSON object body.")

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not valid JSON")

    try:
        body = json.loads(raw, parse_constant=refuse_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "bad_request", f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise ApiError(400, "bad_request", "The body is nested too deeply.") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object.")
    inputs.check_text(body)
    return body


#: A key every write accepts: the reason of the change, stored on its audit event
#: (read by :func:`..context.current_reason`; a workspace may require it) and on
#: the approval request when the operation waits for approval (:mod:`..approvals`).
REASON_KEY = "reason"


def check_keys(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    """Refuse a key outside ``allowed`` (and ``reason``), and a reason that is not text."""
    if REASON_KEY in body and not isinstance(body[REASON_KEY], str):
        raise bad("reason must be text", REASON_KEY)
    unknown = sorted(set(body) - allowed - {REASON_KEY})
    if unknown:
        raise bad(f"unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}",
                   unknown[0])


def string(body: Mapping[str, Any], key: str, *, required: bool = False,
            nullable: bool = False) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise bad(f"{key} is required", key)
        if key in body and not nullable:
            raise bad(f"{key} must be a string", key)
        return None
    if not isinstance(value, str):
        raise bad(f"{key} must be a string", key)
    return value


def integers(body: Mapping[str, Any], names: Iterable[str]) -> None:
    """Refuse text or a boolean sent for one of the integer fields ``names`` (400 naming it).

    The services behind the API also serve the pages, whose forms send text, so
    they read ``" 1 "`` as 1; a JSON client states an integer as a JSON number,
    and text there is a client bug whose value it may not mean (``"0"`` or
    ``"1e3"``). ``true`` is refused too: Python counts it as the integer 1.
    ``null`` and the range are left to the service, which knows which fields
    take them.
    """
    for name in names:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise bad(f"{name} must be a JSON integer, not {json_type(value)}", name)


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    for kind, name in ((bool, "a boolean"), (str, "text"), (int, "an integer"),
                       (float, "a number"), (list, "an array"), (dict, "an object")):
        if isinstance(value, kind):
            return name
    return "null" if value is None else type(value).__name__


def id_of(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= inputs.MAX_ID:
        raise bad(f"{field} must be an integer id", field)
    return value


def id_list(field: str) -> list[int]:
    """Ids given as ``?ids=1,2`` or ``?ids=1&ids=2``, without repeats."""
    parts = [p.strip() for chunk in request.args.getlist(field) for p in chunk.split(",")
             if p.strip()]
    if not all(is_digits(p) for p in parts):
        raise bad(f"{field} must be role ids separated by commas", field)
    return list(dict.fromkeys(int(p) for p in parts))


def instant(body: Mapping[str, Any], key: str) -> dt.datetime | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad(f"{key} must be an ISO 8601 string such as 2030-01-31T09:00:00Z", key)
    return queries.parse_utc(value, key)


def created(payload: dict[str, Any], location: str) -> ResponseReturnValue:
    return jsonify(payload), 201, {"Location": location}
