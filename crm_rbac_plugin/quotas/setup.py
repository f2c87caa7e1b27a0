"""Wiring: the flush listener that enforces quotas, and the app's answer to a refusal."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Flask, jsonify
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..decorators import wants_json
from ..errors import QuotaExceeded
from ..policy import Access, Decision
from .caps import check_caps, new_owned_records
from .seats import check_seats

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def check_flush(rbac: RBACProtocol, session: Session, flush_context: Any, instances: Any) -> None:
    """Seats hold for everyone (a plan's limit binds the system context too); caps for members.

    The member is resolved only when the flush creates protected records: a
    flush of anything else (a token's last use, written while the request's
    user is being loaded) must not ask who the user is.
    """
    check_seats(rbac, session)
    new = new_owned_records(rbac, session)
    if new:
        ctx = rbac.resolve_context()
        if isinstance(ctx, Access):
            check_caps(rbac, session, ctx, new)


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Listen on the app's session, after the write guard (which fills new records' owners)."""
    event.listen(db_session, "before_flush", partial(check_flush, rbac))


def init_app(rbac: RBACProtocol, app: Flask) -> None:
    """Answer a quota refusal that no view caught with a 409 naming the limit."""
    app.register_error_handler(QuotaExceeded, partial(quota_refused, rbac))


def quota_refused(rbac: RBACProtocol, error: QuotaExceeded) -> Any:
    """JSON ``{error: "conflict", message, field}`` for API clients, the refusal page otherwise."""
    rbac.db.session.rollback()
    if wants_json():
        response = jsonify(error="conflict", message=error.message, field=error.field)
        response.status_code = 409
        return response
    return rbac.refusal(Decision(False, error.message), 409)
