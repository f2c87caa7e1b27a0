"""Wiring the approvals into an app: the gate, the answer to a pending operation, export producers."""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, jsonify, redirect

from .. import gate
from ..decorators import wants_json
from .decisions import PRODUCERS_KEY
from .executors import Producer
from .requests import link, needs, record


def init_app(app: Flask) -> None:
    """Install the gate and answer :class:`.gate.ApprovalPending` wherever it is raised.

    A JSON client gets ``202 {"status": "pending_approval", "request_id": N}``;
    a page is sent to the request's page with the message. The request was
    committed by the gate, so the answer is the same for every view.
    """
    gate.install(app, needs, record)
    app.extensions.setdefault(PRODUCERS_KEY, {})
    app.register_error_handler(gate.ApprovalPending, pending_response)


def pending_response(exc: gate.ApprovalPending) -> Any:
    """The answer to an operation that now waits for approval."""
    if wants_json():
        return jsonify(status="pending_approval", request_id=exc.request_id,
                       message=exc.message, link=link(exc.request_id)), 202
    flash(exc.message, "info")
    return redirect(link(exc.request_id), 303)


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
