"""Oversight pages under the settings prefix: audit trail, who-could, explain,
view-as and access review (Owners and Admins: ``settings.view``).

Thin views over :mod:`..audit`, :mod:`.history`, :mod:`.explain`,
:mod:`.viewas` and :mod:`.review`; they extend the settings layout.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    redirect,
    request,
    session,
    url_for,
)

from .. import audit, csvsafe, inputs, pages, queries
from ..config import setting
from ..decorators import login_required, require_permission
from ..errors import RBACError
from ..identity import request_state
from ..models import naive_utc, utcnow
from ..pages import ConfirmForm, acting_access, can, render
from ..policy import Decision
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from ..urls import safe_next
from . import history, review, viewas
from .explain import explain

bp = Blueprint("rbac_oversight", __name__)

inputs.refuse_out_of_range(bp)  # a too-large number is a 400 page, not a 500
PER_PAGE = 50
PERMISSION = "settings.view"


def register(app: Flask) -> None:
    """Mount the pages next to the settings pages (not at all if those are off).

    Their tabs go between the settings' workspace tabs and the member's own
    ones (see :func:`..settings.views.register`).
    """
    prefix = setting("RBAC_SETTINGS_URL_PREFIX", app)
    if prefix is None:
        return
    app.register_blueprint(bp, url_prefix=prefix)
    s = bp.name
    pages.add_tab(app, f"{s}.audit_page", "Audit trail", order=80, permission=PERMISSION)
    pages.add_tab(app, f"{s}.who_could", "Who could", order=90, permission=PERMISSION)
    pages.add_tab(app, f"{s}.explain_page", "Explain", order=100, permission=PERMISSION)
    pages.add_tab(app, f"{s}.access_review", "Access review", order=110, permission=PERMISSION)


bp.context_processor(pages.layout_context)  # the settings layout, whose tabs these pages share


def _members(rbac: Any, workspace_id: int) -> list[Any]:
    return list(queries.workspace_memberships(rbac, workspace_id))


# -- audit trail ---------------------------------------------------------------------------


@bp.get("/audit")
@require_permission(PERMISSION)
def audit_page() -> Any:
    """Browse the workspace's audit trail, filtered and paginated."""
    rbac, access = current_rbac, acting_access()
    errors: list[str] = []
    try:
        filters = audit.parse_filters(request.args)
    except ValueError as exc:
        filters, errors = {}, [str(exc)]
    page = rbac.db.paginate(audit.events_query(rbac, access.workspace_id, filters),
                            per_page=PER_PAGE, error_out=False)
    A = rbac.models.AuditEvent
    actions = rbac.db.session.scalars(sa.select(A.action).where(
        A.workspace_id == access.workspace_id).distinct().order_by(A.action)).all()
    resources = rbac.db.session.scalars(sa.select(A.resource).where(
        A.workspace_id == access.workspace_id).distinct().order_by(A.resource)).all()
    members = {m.id: m for m in _members(rbac, access.workspace_id)}
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render("rbac/audit/list.html", 400 if errors else 200, page=page, members=members,
                   actions=actions, resources=resources, args=args, page_errors=errors)


@bp.get("/audit.csv")
@require_permission(PERMISSION)
def audit_csv() -> Any:
    """Export the filtered audit trail as CSV (itself audited, with its row count)."""
    rbac, access = current_rbac, acting_access()
    try:
        filters = audit.parse_filters(request.args)
    except ValueError as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    events = rbac.db.session.scalars(audit.events_query(rbac, access.workspace_id,
                                                        filters)).all()
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(audit.CSV_COLUMNS)
    for ev in events:
        writer.writerow(audit.csv_row(ev))
    rbac.audit("export", resource="audit", target=f"audit trail ({len(events)} rows)",
               rows=len(events), filters={k: str(v) for k, v in filters.items()})
    rbac.db.session.commit()
    name = f"audit-ws{access.workspace_id}-{dt.date.today().isoformat()}.csv"
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


# -- who could -----------------------------------------------------------------------------


def _record_resources(rbac: Any) -> list[str]:
    return [r.name for r in rbac.registry if r.model is not None]


@bp.get("/who-could")
@require_permission(PERMISSION)
def who_could() -> Any:
    """Who could do an action on a record at a past instant (replays the audit trail)."""
    rbac, access = current_rbac, acting_access()
    resources = _record_resources(rbac)
    form = {"resource": request.args.get("resource", resources[0] if resources else ""),
            "record": request.args.get("record", ""), "at": request.args.get("at", ""),
            "action": request.args.get("action", "view")}
    result, errors = None, []
    if form["record"]:
        try:
            when = dt.datetime.fromisoformat(form["at"]) if form["at"] else utcnow()
            when = naive_utc(when)
            result = history.who_could(rbac, access.workspace_id, form["resource"],
                                       int(form["record"]), when, form["action"])
        except (ValueError, LookupError, RBACError) as exc:
            errors.append(str(exc))
    return render("rbac/audit/who_could.html", 400 if errors else 200, form=form,
                   resources=resources, result=result, page_errors=errors)


# -- explain -------------------------------------------------------------------------------


@bp.get("/explain")
@require_permission(PERMISSION)
def explain_page() -> Any:
    """Pick a member, action, resource and optionally a record: the full decision path."""
    rbac, access = current_rbac, acting_access()
    members = _members(rbac, access.workspace_id)
    resources = list(rbac.registry)
    form = {"member": request.args.get("member", ""), "resource": request.args.get("resource", ""),
            "action": request.args.get("action", "view"),
            "record": request.args.get("record", "")}
    result, errors, status = None, [], 200
    if form["member"] and form["resource"]:
        try:
            membership = queries.membership_in(rbac, access.workspace_id, int(form["member"]))
            if membership is None:
                raise LookupError("No such member in this workspace.")
            res = rbac.registry.check_action(form["resource"], form["action"])
            record = None
            if form["record"]:
                if res.model is None:
                    raise LookupError(f"{res.name} has no records")
                with rbac.system():
                    record = rbac.db.session.get(res.model, int(form["record"]))
                # A record of this workspace, or one shared with it that the asker
                # may see themselves (an explanation must not reveal others' data).
                if record is None or (
                        res.workspace_of(record, access.workspace_id) != access.workspace_id
                        and not rbac.can("view", res.name, record, access=access)):
                    raise LookupError(f"No {res.name} record #{form['record']} in this workspace.")
            result = explain(rbac, rbac.access_for(membership), form["action"], res.name, record)
        except (ValueError, LookupError, RBACError) as exc:
            errors.append(str(exc))
            status = 400
    return render("rbac/explain/page.html", status, form=form, members=members,
                   resources=resources, result=result, page_errors=errors)


# -- view as -------------------------------------------------------------------------------


@bp.post("/view-as")
@require_permission(PERMISSION)
@require_recent_mfa
def view_as_start() -> Any:
    """Start seeing the workspace as a member (read-only, audited)."""
    rbac, real = current_rbac, acting_access()
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".access_review"))
    target = None
    try:
        membership = queries.membership_in(rbac, real.workspace_id,
                                           int(request.form.get("membership_id", "")))
        target = rbac.access_for(membership) if membership is not None else None
    except ValueError:
        pass
    reason = viewas.refusal(rbac, real, target)
    if reason is not None:
        rbac.signal_denied(real, "view_as", "members",
                           membership if target is not None else None, reason)
        return rbac.refuse(Decision(False, reason), 403 if target is not None else 404)
    rbac.audit("view_as.started", resource="members", target=f"member #{membership.id} "
               f"{membership.display_name}", viewed_membership_id=membership.id)
    rbac.db.session.commit()
    session[viewas.SESSION_KEY] = membership.id
    return redirect(safe_next(request.form.get("next"), "/"))


@bp.post("/view-as/stop")
@login_required
def view_as_stop() -> Any:
    """Stop viewing as a member (always allowed)."""
    rbac = current_rbac
    mid = session.pop(viewas.SESSION_KEY, None)
    if mid is not None:
        request_state().reset()
        access = rbac.current_access()
        rbac.audit("view_as.stopped", resource="members", target=f"member #{mid}",
                   workspace_id=access.workspace_id if access else None,
                   viewed_membership_id=mid)
        rbac.db.session.commit()
    return redirect(url_for(".access_review") if can(PERMISSION) else "/")


# -- access review -------------------------------------------------------------------------


@bp.get("/access-review")
@require_permission(PERMISSION)
def access_review() -> Any:
    """Privileged members, inactive members, unused roles and expiring assignments."""
    rbac, access = current_rbac, acting_access()
    try:
        inactive_days = max(1, min(3650, int(request.args.get("inactive_days", 30))))
        expiring_days = max(1, min(3650, int(request.args.get("expiring_days", 14))))
    except ValueError:
        inactive_days, expiring_days = 30, 14
    report = review.access_review(rbac, access.workspace_id, inactive_days=inactive_days,
                                  expiring_days=expiring_days)
    viewable = [m for m in _members(rbac, access.workspace_id)
                if viewas.refusal(rbac, access, rbac.access_for(m)) is None]
    return render("rbac/audit/review.html", report=report, inactive_days=inactive_days,
                   expiring_days=expiring_days, confirm=ConfirmForm(), viewable=viewable)
