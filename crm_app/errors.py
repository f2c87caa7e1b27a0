"""App-level error pages (the plugin renders its own 403/404 for refused access)."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge

from crm_rbac_plugin.decorators import wants_json
from crm_rbac_plugin.inputs import OUT_OF_RANGE, OUT_OF_RANGE_MESSAGE

from .extensions import db


def _json(error: str, message: str, status: int) -> tuple[Any, int]:
    """The same error shape as the plugin's refusals, for API clients."""
    return jsonify(error=error, message=message), status


def not_found(error: HTTPException) -> tuple[Any, int]:
    if wants_json():
        return _json("not_found", "Not found.", 404)
    return render_template("errors/404.html"), 404


def bad_request(error: HTTPException) -> tuple[Any, int]:
    """Mostly an expired CSRF token: say so rather than show a bare 400."""
    if wants_json():
        return _json("bad_request", error.description or "Bad request.", 400)
    return render_template("errors/400.html", error=error), 400


def too_large(error: HTTPException) -> tuple[Any, int]:
    """A body over the route's limit, in words naming the limit (Werkzeug's stock page
    names none); an upload route answers with its own page instead (its blueprint's
    413 handler)."""
    db.session.rollback()
    message = too_large_message(error)
    if wants_json():
        return _json("payload_too_large", message, 413)
    return render_template("errors/400.html", error=RequestEntityTooLarge(message)), 413


def too_large_message(error: HTTPException) -> str:
    """The refusal's own words, or the request's limit when Werkzeug raised it."""
    if error.description and error.description != RequestEntityTooLarge.description:
        return str(error.description)
    limit = request.max_content_length
    return (f"The request body is larger than the limit of {limit:,} bytes."
            if limit is not None else "The request body is too large.")


def server_error(error: Exception) -> tuple[Any, int]:
    """Roll back first: the failed request may have left the session unusable.

    The template is standalone (no layout, no queries) so that it renders
    even when the database is what failed.
    """
    db.session.rollback()
    if wants_json():
        return _json("server_error", "Something went wrong on our side.", 500)
    return render_template("errors/500.html"), 500


def method_not_allowed(error: HTTPException) -> Any:
    if wants_json():
        return _json("method_not_allowed", error.description or "Method not allowed.", 405)
    return error


def out_of_range(error: Exception) -> tuple[Any, int]:
    """A number too large for the database (a query-string page or id): bad input."""
    db.session.rollback()
    return bad_request(BadRequest(OUT_OF_RANGE_MESSAGE))


def init_app(app: Flask) -> None:
    app.register_error_handler(404, not_found)
    app.register_error_handler(405, method_not_allowed)
    for exc in OUT_OF_RANGE:
        app.register_error_handler(exc, out_of_range)
    app.register_error_handler(CSRFError, bad_request)
    app.register_error_handler(413, too_large)
    app.register_error_handler(500, server_error)
