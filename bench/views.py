"""The pages of figure 3: one list page and one detail page, three ways.

* ``/bench/rbac/...``: guarded by the plugin (``require_permission`` and
  ``record_required``); the query is the plain ORM query and the
  ``do_orm_execute`` listener adds the member's criteria.
* ``/bench/plain/...``: the plugin disabled for this view: Flask-Login's
  ``login_required`` only and the *same* query with ``rbac_bypass=True``
  (the brief's baseline; it filters nothing).
* ``/bench/hand/...``: ``login_required`` plus the hand-written WHERE of
  figure 2 for the member's scope (``?scope=own|department|all``), with
  ``rbac_bypass=True``: what a CRM without the plugin would have to write.
  It tells the plugin's own cost apart from the cost of filtering at all.

All three answer the same JSON, so the serialisation cost is the same.

``POST /bench/rbac/members/<membership>/roles/<role>`` is the
permission-changing request of the feature-cost figure (:mod:`.costs`): it
gives the member the role, or takes it away when they hold it, through the
roles service, and commits.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, jsonify, request, session
from flask_login import current_user, login_required

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import record_required, require_permission
from crm_rbac_plugin import roles as roles_service

from .sql import handwritten_where

PAGE = 25
BYPASS = {"rbac_bypass": True}


def _lead_json(lead: Lead) -> dict[str, Any]:
    return {"id": lead.id, "name": lead.name, "company": lead.company, "email": lead.email,
            "status": lead.status, "owner_id": lead.owner_id}


def _page() -> sa.Select[tuple[Lead]]:
    return sa.select(Lead).order_by(Lead.id.desc()).limit(PAGE)


def _hand_where() -> sa.ColumnElement[bool]:
    ws = session[current_app.config["RBAC_SESSION_KEY"]]
    return handwritten_where(request.args.get("scope", "own"), ws, current_user.id,
                             request.args.get("dept", type=int))


def blueprint() -> Blueprint:
    bp = Blueprint("bench", __name__, url_prefix="/bench")

    @bp.get("/rbac/leads")
    @require_permission("leads", "view")
    def rbac_list() -> Any:
        return jsonify([_lead_json(x) for x in db.session.scalars(_page())])

    @bp.get("/rbac/leads/<int:id>")
    @record_required("leads", "view", name="lead")
    def rbac_detail(lead: Lead) -> Any:
        return jsonify(_lead_json(lead))

    @bp.get("/plain/leads")
    @login_required
    def plain_list() -> Any:
        return jsonify([_lead_json(x) for x in db.session.scalars(
            _page().execution_options(**BYPASS))])

    @bp.get("/plain/leads/<int:id>")
    @login_required
    def plain_detail(id: int) -> Any:
        lead = db.session.execute(sa.select(Lead).where(Lead.id == id)
                                  .execution_options(**BYPASS)).scalar_one_or_none()
        if lead is None:
            abort(404)
        return jsonify(_lead_json(lead))

    @bp.get("/hand/leads")
    @login_required
    def hand_list() -> Any:
        return jsonify([_lead_json(x) for x in db.session.scalars(
            _page().where(_hand_where()).execution_options(**BYPASS))])

    @bp.get("/hand/leads/<int:id>")
    @login_required
    def hand_detail(id: int) -> Any:
        lead = db.session.execute(sa.select(Lead).where(Lead.id == id, _hand_where())
                                  .execution_options(**BYPASS)).scalar_one_or_none()
        if lead is None:
            abort(404)
        return jsonify(_lead_json(lead))

    @bp.post("/rbac/members/<int:membership_id>/roles/<int:role_id>")
    @require_permission("members", "edit")
    def toggle_role(membership_id: int, role_id: int) -> Any:
        """Give the role, or take it away when held: every call changes permissions."""
        m = rbac.models
        membership = db.session.get(m.Membership, membership_id)
        role = db.session.get(m.Role, role_id)
        if membership is None or role is None:
            abort(404)
        held = next((mr for mr in membership.member_roles if mr.role_id == role_id), None)
        if held is None:
            roles_service.assign_role(rbac, rbac.current_access(), membership, role)
        else:
            roles_service.remove_role(rbac, rbac.current_access(), held)
        db.session.commit()
        return jsonify({"holds": held is None})

    return bp
