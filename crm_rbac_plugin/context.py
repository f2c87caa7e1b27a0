"""Explicit access contexts: the system context and acting as a member.

Inside a request the current member comes from the signed-in user and the
current workspace. Everywhere else (CLI commands, jobs, tests) code must say
whose rights apply, or protected queries fail closed. A
:class:`contextvars.ContextVar` holds the override so it is correct per
thread and per task.

A :class:`MemberHandle` names a member as plain data, for a job queue: the
request that queues a job passes ``str(rbac.member_handle())``, and the job
runs ``with rbac.as_member(handle):``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from flask import has_request_context, request

from .inputs import is_digits
from .policy import Access


class _System:
    """Marker of the system context (like Odoo's ``sudo``): no filtering."""

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM: Final = _System()

#: The explicit context in force, if any: SYSTEM, an Access, or None.
_override: contextvars.ContextVar[_System | Access | None] = contextvars.ContextVar(
    "rbac_override", default=None)


@dataclass(frozen=True)
class MemberHandle:
    """A member to act as outside a request: ``str(handle)`` is ``"<workspace>:<membership>"``.

    A handle carries no rights: acting as it loads the membership's access
    when the job runs, so a deactivation or a role change made after the job
    was queued is in force, and a membership of another workspace than the
    handle names is refused.
    """

    workspace_id: int
    membership_id: int

    def __str__(self) -> str:
        return f"{self.workspace_id}:{self.membership_id}"

    @classmethod
    def parse(cls, value: str | MemberHandle) -> MemberHandle:
        """Read a handle from its string form; ValueError names a malformed one."""
        if isinstance(value, MemberHandle):
            return value
        workspace, sep, membership = str(value).partition(":")
        if not sep or not is_digits(workspace) or not is_digits(membership):
            raise ValueError(f"not a member handle: {value!r} (expected '<workspace>:<membership>')")
        return cls(int(workspace), int(membership))


def current_override() -> _System | Access | None:
    return _override.get()


@contextmanager
def override(value: _System | Access | None) -> Iterator[None]:
    token = _override.set(value)
    try:
        yield
    finally:
        _override.reset(token)


# -- the reason for a permission change ---------------------------------------------------
#
# A permission change may carry a written reason, stored on its audit event
# (``detail.reason``), and a workspace may require one. The reason reaches the
# audit writer without passing through every service: code sets it with
# ``with change_reason("..."):`` (the CLI's ``--reason``, a certification
# revoke), and inside a request a ``reason`` form field, query argument or
# JSON key is read when no code set one.

_reason: contextvars.ContextVar[str | None] = contextvars.ContextVar("rbac_reason", default=None)


@contextmanager
def change_reason(text: str | None) -> Iterator[None]:
    """Give the permission changes committed inside the block ``text`` as their reason."""
    token = _reason.set((text or "").strip() or None)
    try:
        yield
    finally:
        _reason.reset(token)


#: The media types whose body Werkzeug parses into ``request.form``.
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


#: The request's own reason, read once per request (kept on the request object: its
#: body and query string do not change while it runs).
_REQUEST_REASON = "_rbac_request_reason"


def current_reason() -> str | None:
    """The reason in force: the one set by :func:`change_reason`, else the request's ``reason``."""
    value = _reason.get()
    if value is not None:
        return value
    if not has_request_context():
        return None
    req = request._get_current_object()  # type: ignore[attr-defined]
    kept = req.__dict__
    if _REQUEST_REASON not in kept:
        kept[_REQUEST_REASON] = _request_reason(req)
    return kept[_REQUEST_REASON]  # type: ignore[no-any-return]


def _request_reason(req: Any) -> str | None:
    """The request's ``reason``: its form field, query argument or JSON key."""
    # Werkzeug reads a form only from a form's media type: for any other body the
    # request's values are its query string, read without parsing the body.
    values = req.values if req.mimetype in _FORM_TYPES else req.args
    raw = values.get("reason") if "reason" in values else None
    if raw is None and req.is_json:
        body = req.get_json(silent=True)
        raw = body.get("reason") if isinstance(body, dict) else None
    return raw.strip() or None if isinstance(raw, str) else None
