"""Wiring the approvals into an app: the gate, the answer to a pending operation, export producers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, flash, jsonify, redirect, render_template, url_for
from werkzeug.routing import BuildError

from .. import gate
from ..context import current_override
from ..decorators import wants_json
from ..errors import RuleConflict
from ..lifecycle.export import WORKSPACE_EXPORT, export_zip
from ..policy import Access
from ..proxies import current_rbac
from .asking import token_for
from .executors import PRODUCERS_KEY, ExportFile, Producer
from .requests import link, needs, record, refuse_unreplayable


def init_app(app: Flask) -> None:
    """Install the gate and answer :class:`.gate.ApprovalPending` wherever it is raised.

    A JSON client gets ``202 {"status": "pending_approval", "request_id": N}``;
    a page is sent to the request's page with the message. The request was
    committed by the gate, so the answer is the same for every view.
    """
    gate.install(app, needs, record)
    app.extensions.setdefault(PRODUCERS_KEY, {}).setdefault(WORKSPACE_EXPORT,
                                                            produce_workspace_export)
    app.register_error_handler(gate.ApprovalPending, pending_response)
    app.register_error_handler(gate.ApprovalRequired, required_response)


def pending_response(exc: gate.ApprovalPending) -> Any:
    """The answer to an operation that now waits for approval."""
    if wants_json():
        return jsonify(status="pending_approval", request_id=exc.request_id,
                       message=exc.message, link=link(exc.request_id)), 202
    flash(exc.message, "info")
    return redirect(link(exc.request_id), 303)


def produce_workspace_export(payload: Mapping[str, Any]) -> ExportFile:
    """An approved workspace export (``lifecycle.export_zip``), made as the requester,
    who must still be an Owner (the replay runs inside ``rbac.as_member(requester)``)."""
    requester = current_override()
    name, data = export_zip(current_rbac, requester if isinstance(requester, Access) else None)
    return ExportFile(name, data)


def required_response(exc: gate.ApprovalRequired) -> Any:
    """The answer to a GET that reached the gate: an offer to ask, never a request.

    A JSON client gets ``409 {"status": "approval_required", "ask": {"url",
    "token"}}`` (POST the token with a ``reason`` to ask); a page gets a form
    that does it (``rbac/approval_required.html``, 200). Without the settings
    pages mounted, or for an export no producer can replay, there is no form
    to post: the message alone, a 409.
    """
    rbac = current_rbac
    rbac.db.session.rollback()
    actor = rbac.current_access()
    message, token, url = exc.message, "", ""
    try:
        refuse_unreplayable(exc.operation, exc.payload, exc.summary)
        token = token_for(actor, exc) if actor is not None else ""
        url = url_for("rbac_settings.ask_approval")
    except RuleConflict as refused:
        message = refused.message
    except BuildError:
        pass
    if wants_json():
        return jsonify(status="approval_required", message=message,
                       ask={"url": url, "token": token} if url and token else None), 409
    # The page is the form that asks (a browser logs a 4xx document as a console error).
    return render_template("rbac/approval_required.html", message=message, url=url,
                           token=token, summary=exc.summary), 200 if token else 409


def export_producer(app: Flask, producer: Producer, *, via: str = "app") -> Producer:
    """Register the function that produces an approved export's file as the requester.

    ``producer(payload)`` gets the payload the host's export view passed to
    :func:`.gate.require` (operation ``"export"``) and returns an
    :class:`.executors.ExportFile`; it runs inside ``rbac.as_member(requester)``,
    so its queries see what the requester may export at that moment. ``via``
    names the export path (the payload's ``"via"`` key, ``"app"`` by default).
    """
    app.extensions.setdefault(PRODUCERS_KEY, {})[via] = producer
    return producer
