"""The JSON API: roles, assignments and members' effective access.

The same service functions as the settings pages (:mod:`..roles`), so the same
rules; this module only authenticates, parses and validates JSON, and turns
the service's exceptions into JSON errors::

    {"error": "validation_error", "message": "unknown scope 'galaxy' ...",
     "field": "permissions[0].scope"}

with 400 (bad input of any kind, never a 500), 401 (no or bad credentials),
403 (refused), 404 (unknown id, or an id of another workspace) and 413 (body
over ``RBAC_API_MAX_BODY``).

Authentication: ``Authorization: Bearer <token>`` (a personal API token,
:mod:`..tokens`), acting in the token's workspace with its member's access;
or the browser session, whose state-changing requests must then carry the
CSRF token in an ``X-CSRFToken`` header. The blueprint is exempt from
Flask-WTF's global check so token requests need none.

This module mounts the blueprint, authenticates each request and turns errors
into JSON; :mod:`.blueprint` holds what every endpoint starts with, and
:mod:`.roles`, :mod:`.members`, :mod:`.sharing` and :mod:`.records` the
endpoints.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_input_stream
from wtforms.validators import ValidationError as CSRFInvalid

from .. import inputs
from ..config import setting
from ..errors import PermissionDenied, ValidationError
from ..identity import request_state, signed_in_user
from ..proxies import current_rbac
from . import (
    alerts,
    approvals,
    conditions,
    members,
    notifications,
    openapi_members,
    openapi_pictures,
    openapi_reviews,
    openapi_workspaces,
    records,
    reviews,
    roles,
    security,
    sharing,
    workspaces,
)
from .blueprint import ApiError, bp, too_large
from .openapi import openapi_document
from .openapi_alerts import with_alerts
from .openapi_approvals import add_approvals
from .openapi_conditions import with_conditions
from .openapi_notify import with_notifications

#: The modules whose endpoints make up the API, all on :data:`.blueprint.bp`:
#: importing them here registers their routes before the blueprint is mounted.
ROUTE_MODULES = (roles, members, sharing, records, security, notifications, approvals, alerts,
                 reviews, conditions, workspaces)



def register(app: Flask) -> None:
    """Mount the API under ``RBAC_API_URL_PREFIX`` (None: not at all).

    The blueprint is exempted from Flask-WTF's CSRFProtect, which would refuse
    token requests; :func:`_authenticate` checks session requests itself. If
    CSRFProtect is set up after this extension, the exemption is made on the
    first request instead (before CSRFProtect's own hook runs).
    """
    prefix = setting("RBAC_API_URL_PREFIX", app)
    if prefix is None:
        return
    app.register_blueprint(bp, url_prefix=prefix)
    if not _exempt_from_csrf(app):
        app.before_request(_exempt_late)


def _exempt_from_csrf(app: Flask) -> bool:
    csrf = app.extensions.get("csrf")
    if csrf is None:
        return False
    csrf.exempt(bp)  # a set: repeating it is harmless
    return True


def _exempt_late() -> None:
    """Exempt the API once a CSRFProtect set up after this extension exists."""
    _exempt_from_csrf(current_app)  # type: ignore[arg-type]


# -- errors -----------------------------------------------------------------------


def _error(status: int, error: str, message: str, field: str | None = None) -> Any:
    response = jsonify(error=error, message=message, field=field)
    response.status_code = status
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    current_rbac.db.session.rollback()
    return _error(exc.status, exc.error, exc.message, exc.field)


@bp.errorhandler(ValidationError)
def _validation_error(exc: ValidationError) -> Any:
    current_rbac.db.session.rollback()
    return _error(exc.status, "conflict" if exc.status == 409 else "validation_error",
                  exc.message, exc.field)


@bp.errorhandler(PermissionDenied)
def _permission_denied(exc: PermissionDenied) -> Any:
    current_rbac.db.session.rollback()
    return _error(403, "forbidden", exc.message, exc.field)


def _out_of_range(exc: Exception) -> Any:
    current_rbac.db.session.rollback()
    return _error(400, "validation_error", inputs.OUT_OF_RANGE_MESSAGE)


for _exc in inputs.OUT_OF_RANGE:
    bp.register_error_handler(_exc, _out_of_range)


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    names = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
             405: "method_not_allowed", 413: "payload_too_large"}
    status = exc.code or 500
    current_rbac.db.session.rollback()
    return _error(status, names.get(status, "http_error"), exc.description or exc.name)


# -- authentication and request checks --------------------------------------------------


def _limit_body(limit: int) -> None:
    """Cap this request's body stream at ``limit + 1`` bytes.

    A chunked body carries no ``Content-Length`` to check up front, and
    Werkzeug's capped stream stops quietly at its cap when read whole: a body
    cut at exactly ``limit`` bytes could still parse as JSON. One byte more
    than allowed is read instead, so :func:`.blueprint.body_bytes` sees that
    the body went past the limit and answers 413.

    Flask 3.1 lets a request set its own ``max_content_length``. On Flask 3.0
    that property is read-only, so the body stream, which Werkzeug opens once
    and caches on the request, is opened here with the same cap.
    """
    try:
        request.max_content_length = limit + 1
    except AttributeError:  # Flask 3.0
        req = request._get_current_object()  # type: ignore[attr-defined]
        if "stream" not in req.__dict__:
            req.__dict__["stream"] = get_input_stream(req.environ, max_content_length=limit + 1)


@bp.before_request
def _authenticate() -> None:
    """Limit the body, find who is asking, and check CSRF for session writes."""
    if request.endpoint == "rbac_api.openapi":
        return
    limit = setting("RBAC_API_MAX_BODY")
    _limit_body(limit)
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit)
    rbac = current_rbac
    if "Authorization" in request.headers:
        if not request_state().token_auth:
            # The host may not have registered rbac.load_user_from_request with
            # Flask-Login (or a session user was loaded first): the token decides.
            user = rbac.load_user_from_request(request)
            if user is None:
                raise ApiError(401, "unauthorized",
                               "The API token is invalid, expired or revoked.")
            # load_user_from_request made the token's user the request's user
            # (identity.signed_in_user); no session cookie is written, so a
            # token never becomes a browser session.
            request_state().reset()
    elif signed_in_user() is None:
        raise ApiError(401, "unauthorized",
                       "Authenticate with 'Authorization: Bearer <token>' or a session.")
    elif request.method in inputs.UNSAFE_METHODS and current_app.config.get("WTF_CSRF_ENABLED", True):
        header = request.headers.get("X-CSRFToken") or request.headers.get("X-CSRF-Token")
        try:
            validate_csrf(header)
        except CSRFInvalid as exc:
            raise ApiError(400, "csrf_failed",
                           f"{exc.args[0] if exc.args else 'Bad CSRF token.'} Send the page's "
                           "CSRF token in an X-CSRFToken header, or use an API token.") from None


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 description of this API (public: it holds no data)."""
    prefix = setting("RBAC_API_URL_PREFIX")
    document = openapi_document(request.script_root + prefix)
    for extend in (with_notifications, add_approvals, with_alerts, openapi_reviews.extend,
                   with_conditions, openapi_workspaces.extend, openapi_pictures.extend,
                   openapi_members.extend):
        document = extend(document)
    return jsonify(document)


