"""Oversight pages under the settings prefix: audit trail, who-can / who-could,
explain, view-as and access review (Owners and Admins: ``settings.view``);
and, for every member, the refusal page's help (``rbac_refusal``) and its
"Request access" form (:mod:`..team.access_requests`).

Thin views over :mod:`..audit`, :mod:`.history`, :mod:`.explain`,
:mod:`.viewas` and :mod:`.review`; they extend the settings layout.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Response,
    flash,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)

from .. import approvals, audit, gate, inputs, pages, queries, roles, team
from ..config import setting
from ..decorators import login_required, require_permission, wants_json
from ..errors import PermissionDenied, RBACError, ValidationError
from ..identity import request_state, signed_in_user
from ..models import naive_utc, utcnow
from ..notify.queue import enqueue, path_for
from ..pages import ConfirmForm, acting_access, can, render
from ..policy import Decision
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from ..team import access_requests
from ..urls import safe_next
from . import exports, history, review, viewas
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
    # A CSV over the export threshold waits; approved, these produce it.
    approvals.export_producer(app, exports.produce_approved_who_can, via=exports.WHO_CAN_EXPORT)
    approvals.export_producer(app, exports.produce_approved_audit, via=exports.AUDIT_EXPORT)
    s = bp.name
    pages.add_tab(app, f"{s}.audit_page", "Audit trail", order=80, permission=PERMISSION)
    pages.add_tab(app, f"{s}.who_could", "Who could", order=90, permission=PERMISSION)
    pages.add_tab(app, f"{s}.explain_page", "Explain", order=100, permission=PERMISSION)
    pages.add_tab(app, f"{s}.access_review", "Access review", order=110, permission=PERMISSION)
    app.add_template_global(refusal_context, "rbac_refusal")


bp.context_processor(pages.layout_context)  # the settings layout, whose tabs these pages share


def _members(rbac: Any, workspace_id: int) -> list[Any]:
    return list(queries.workspace_memberships(rbac, workspace_id))


# -- audit trail ---------------------------------------------------------------------------


@bp.get("/audit")
@require_permission(PERMISSION)
def audit_page() -> Any:
    """Browse the workspace's audit trail as sentences, filtered and paginated.

    Each event reads as "Junior Rep: leads.export removed by Olivia Owens"
    with its diff; the stored JSON stays one click away (``<details>``).
    """
    rbac, access = current_rbac, acting_access()
    errors: list[str] = []
    try:
        filters = audit.parse_filters(request.args)
    except ValueError as exc:
        filters, errors = {}, [str(exc)]
    page = rbac.db.paginate(audit.events_query(rbac, access.workspace_id, filters),
                            per_page=PER_PAGE, error_out=False)
    A = rbac.models.AuditEvent
    recorded = rbac.db.session.scalars(sa.select(A.action).where(
        A.workspace_id == access.workspace_id).distinct().order_by(A.action)).all()
    grouped = {a for _, actions in audit.EVENT_GROUPS.values() for a in actions}
    actions = [a for a in recorded if a not in grouped]
    resources = rbac.db.session.scalars(sa.select(A.resource).where(
        A.workspace_id == access.workspace_id).distinct().order_by(A.resource)).all()
    page.items = audit.as_read_by(rbac, access, page.items)
    names = audit.load_names(rbac, access.workspace_id, page.items)
    described = {ev.id: audit.describe(names, ev) for ev in page.items}
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    return render("rbac/audit/list.html", 400 if errors else 200, page=page,
                  members=sorted(names.members.items(), key=lambda m: m[1].lower()),
                  roles=sorted(names.roles.items(), key=lambda r: r[1].lower()),
                  described=described, actions=actions, resources=resources, args=args,
                  event_groups=audit.EVENT_GROUPS,
                  event_labels={**{a: audit.action_label(a) for a in actions},
                                **audit.SECURITY_EVENTS},
                  page_errors=errors)


@bp.get("/audit.csv")
@require_permission(PERMISSION)
def audit_csv() -> Any:
    """Export the filtered audit trail as CSV (itself audited, with its row count).

    Reading the trail takes ``settings.view``; taking it out of the workspace
    is an export like any other: it needs ``settings.export`` too (403
    without), and over the workspace's export threshold it waits for
    approval (``via="audit"``; :func:`.exports.produce_approved_audit` makes the file
    once approved). The rows carry the page's sentences and names next to
    the stored columns, as the reader may read them.
    """
    rbac, access = current_rbac, acting_access()
    try:
        filters = audit.parse_filters(request.args)
    except ValueError as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    events = exports.audit_events(filters)
    gate.require_export(rbac, access, "settings",
                        {"via": exports.AUDIT_EXPORT, "query": request.query_string.decode()[:500]},
                        count=len(events), summary=f"Export {len(events)} audit events as CSV",
                        what="Exporting the audit trail")
    produced = exports.audit_file(events, filters)
    rbac.db.session.commit()
    return Response(produced.content, mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{produced.filename}"'})


# -- who could -----------------------------------------------------------------------------


def _record_resources(rbac: Any) -> list[str]:
    return [r.name for r in rbac.registry if r.model is not None]


def _actions(rbac: Any, resources: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for name in resources:
        seen.update(dict.fromkeys(rbac.registry.get(name).actions))
    return list(seen)


@bp.get("/who-could")
@require_permission(PERMISSION)
def who_could() -> Any:
    """Two questions on one page: who can do an action now (``mode=now``, resource
    level, with each member's path), and who could do it on a record at a past
    instant (replays the audit trail)."""
    rbac, access = current_rbac, acting_access()
    resources = _record_resources(rbac)
    form = {"resource": request.args.get("resource", resources[0] if resources else ""),
            "record": request.args.get("record", ""), "at": request.args.get("at", ""),
            "action": request.args.get("action", "view"), "mode": request.args.get("mode", "")}
    result, now, errors = None, None, []
    try:
        if form["record"]:
            when = dt.datetime.fromisoformat(form["at"]) if form["at"] else utcnow()
            result = history.who_could(rbac, access.workspace_id, form["resource"],
                                       int(form["record"]), naive_utc(when), form["action"],
                                       asker=access)
        elif form["mode"] == "now":
            now = history.who_can(rbac, access.workspace_id, form["resource"], form["action"])
    except (ValueError, LookupError, RBACError) as exc:
        errors.append(str(exc))
    return render("rbac/audit/who_could.html", 400 if errors else 200, form=form,
                  resources=resources, actions=_actions(rbac, resources), result=result,
                  now=now, page_errors=errors)


@bp.get("/who-can.csv")
@require_permission(PERMISSION)
def who_can_csv() -> Any:
    """Export "who can <action> <resource>" now as CSV (every cell neutralised, audited).

    It lists every member with their roles, so it passes the members CSV's
    gate (:func:`..team.gate_members_export`, ``via="who_can"``).
    """
    rbac, access = current_rbac, acting_access()
    resource, action = request.args.get("resource", ""), request.args.get("action", "")
    try:
        answer = history.who_can(rbac, access.workspace_id, resource, action)
    except (LookupError, RBACError) as exc:
        return Response(str(exc), status=400, mimetype="text/plain")
    team.gate_members_export(rbac, access, {"via": exports.WHO_CAN_EXPORT, "action": answer.action,
                                            "of": answer.resource},
                             count=len(answer.paths),
                             summary=f"Export who can {answer.action} {answer.resource} "
                                     f"({len(answer.paths)} members) as CSV")
    produced = exports.who_can_file(answer)
    rbac.db.session.commit()
    return Response(produced.content, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{produced.filename}"'})


# -- refusals and access requests ------------------------------------------------------------


def refusal_context(status: int) -> dict[str, Any] | None:
    """What the 403 page adds for an active member of the workspace: what is missing,
    who can grant it, and the request form's values (None: the generic page).

    The refused permission is the last refusal noted in this request (see
    :func:`..audit.note_denied`). Nobody else is told anything: not a
    non-member, and not an admin viewing the workspace as someone.
    """
    if status != 403 or signed_in_user() is None:
        return None
    state = request_state()
    access = state.access
    if state.real_access is not None or access is None or not state.denied:
        return None
    row = state.denied[-1]
    action, resource = (row.get("detail") or {}).get("action"), row.get("resource")
    if row.get("actor_membership_id") != access.membership_id or not action or not resource:
        return None
    help_ = access_requests.refusal_help(current_rbac, access, action, resource)
    if help_ is None:
        return None
    here = request.full_path.rstrip("?") if request.method == "GET" else request.referrer
    return {"help": help_, "next": safe_next(here, "/"), "flashes": pages.show_flashes()}


@bp.post("/request-access")
@login_required
def request_access() -> Any:
    """Ask the workspace's admins for a permission (mailed, listed in their
    notifications, audited, once an hour)."""
    rbac = current_rbac
    target = safe_next(request.form.get("next"), "/")
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(target)
    try:
        asked = access_requests.request_access(
            rbac, rbac.current_access(), request.form.get("action"),
            request.form.get("resource"), request.form.get("note", ""))
    except ValidationError as exc:
        rbac.db.session.rollback()
        if wants_json():
            return jsonify(error="too_many_requests" if exc.status == 429 else "invalid",
                           field=exc.field, message=exc.message), exc.status
        if exc.status == 429:
            flash(exc.message, "warning")
            return redirect(target)
        return Response(f"{exc.field}: {exc.message}", status=exc.status, mimetype="text/plain")
    # The grantors' notification lists show the request too; the mail is
    # access_requests.notify's, sent once the request is committed.
    enqueue(rbac.db.session, rbac.models, workspace_id=asked.workspace.id,
            recipients=[m.id for m in asked.recipients], category="approvals",
            event_name="access.requested",
            summary=f"{asked.requester.display_name} asks for {asked.action} on "
                    f"{asked.resource}",
            link=path_for("rbac_settings.member_access", membership_id=asked.requester.id),
            mail=False)
    rbac.db.session.commit()
    names = access_requests.notify(rbac, asked)
    flash(f"Request sent to {', '.join(names)}.", "success")
    return redirect(target)


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
                record = history.record_seen_by(rbac, access, res, int(form["record"]))
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
    viewas.stop(current_rbac)
    return redirect(url_for(".access_review") if can(PERMISSION) else "/")


# -- access review -------------------------------------------------------------------------


@bp.get("/access-review")
@require_permission(PERMISSION)
def access_review() -> Any:
    """Privileged, inactive and never-seen members, unused roles and expiring assignments,
    each member with their last sign-off and the actions to take on the spot."""
    return _review_page()


def _review_page(status: int = 200, page_errors: list[str] | None = None) -> Any:
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
    return render("rbac/audit/review.html", status, report=report, inactive_days=inactive_days,
                   expiring_days=expiring_days, confirm=ConfirmForm(), viewable=viewable,
                   page_errors=page_errors or [], sign_offs=review.last_sign_offs(rbac, access.workspace_id),
                   can_edit=can("members.edit"), me=access.membership_id,
                   args={"inactive_days": inactive_days, "expiring_days": expiring_days})


def _review_action(change: Any, done: str) -> Any:
    """Run a confirmed review action, commit it and go back to the review page.

    A refusal rolls back and shows the review page with the reason (403, or
    the error's status); an expired form (CSRF) changes nothing (400).
    """
    if not ConfirmForm().validate_on_submit():
        return _review_page(400, ["The form expired; reload the page and try again."])
    try:
        change()
        current_rbac.db.session.commit()
    except (ValidationError, PermissionDenied) as exc:
        current_rbac.db.session.rollback()
        return _review_page(403 if isinstance(exc, PermissionDenied) else exc.status,
                            [exc.message])
    flash(done, "success")
    return redirect(url_for(".access_review", **{
        k: v for k in ("inactive_days", "expiring_days") if (v := request.args.get(k))}))


def _review_member(membership_id: int) -> Any:
    membership = queries.membership_in(current_rbac, acting_access().workspace_id, membership_id)
    return membership if membership is not None else pages.not_found()


@bp.post("/access-review/members/<int:membership_id>/sign-off")
@require_permission(PERMISSION)
def review_sign_off(membership_id: int) -> Any:
    """Record that the reviewer checked this member's access and keeps it."""
    membership = _review_member(membership_id)
    return _review_action(lambda: review.sign_off(current_rbac, acting_access(), membership),
                          f"{membership.display_name}'s access is signed off.")


@bp.post("/access-review/members/<int:membership_id>/deactivate")
@require_permission("members", "edit")
def review_deactivate(membership_id: int) -> Any:
    """Deactivate a member from the review (the members page's rules apply)."""
    membership = _review_member(membership_id)
    return _review_action(lambda: team.deactivate(current_rbac, acting_access(), membership),
                          f"{membership.display_name} is deactivated; their records stay theirs.")


@bp.post("/access-review/assignments/<int:member_role_id>/remove")
@require_permission("members", "edit")
@require_recent_mfa
def review_remove_role(member_role_id: int) -> Any:
    """Take one role assignment away from the review (the member page's rules apply)."""
    rbac = current_rbac
    assignment = rbac.db.session.get(rbac.models.MemberRole, member_role_id)
    if assignment is None or assignment.membership.workspace_id != acting_access().workspace_id:
        return pages.not_found()
    membership, name = assignment.membership, assignment.role.name
    return _review_action(lambda: roles.remove_role(rbac, acting_access(), assignment),
                          f"{membership.display_name} no longer holds {name}.")
