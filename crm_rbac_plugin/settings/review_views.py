"""The Access reviews pages, ``/settings/reviews``: the schedule, certification runs, the report.

Thin views over :mod:`..certification`. Who reaches what:

* the pages (schedule, runs, a run, its report and CSV) need
  ``settings.view`` (Owners and Admins), like the Access review;
* changing the schedule is an Owner's (the service refuses anyone else, 403);
* starting a run, refreshing its lines, deciding an item and completing a
  run need ``roles.manage`` (the service refuses anyone else, 403); a
  decision needs a recent MFA check, as every role change does;
* viewing a run writes nothing: it lists what changed since the lines were
  listed, and the reviewer refreshes them with a POST;
* a run of another workspace is a 404.

A refused revoke is not a refusal of the page: the item records the role
service's reason and the run page shows it. A bad value comes back at the
field it names (400), a decision on a decided item or a completed run 409.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from flask import Flask, Response, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, Field, Form, HiddenField, SelectField, StringField
from wtforms.validators import InputRequired, Length, Optional

from .. import pages, team
from ..approvals import ExportFile
from ..audit import reasons
from ..certification import lines, report, runs, schedule
from ..config import setting
from ..decorators import require_permission
from ..errors import ValidationError
from ..inputs import is_digits
from ..models import utcnow
from ..pages import acting_access, can, not_found
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from .blueprint import attempt, bp, render

PERMISSION = "settings.view"
T = TypeVar("T")


def add_tabs(app: Flask) -> None:
    """The Certification tab, among the oversight pages (after Access review, 110), and
    the ``rbac_reason_field`` global the permission-changing forms render."""
    app.add_template_global(reason_field, "rbac_reason_field")
    s = bp.name
    pages.add_tab(app, f"{s}.reviews", "Certification", order=115, permission=PERMISSION,
                  highlight=[f"{s}.review_run", f"{s}.review_report"])


def reason_required() -> bool:
    """Whether the current workspace requires a reason for permission changes."""
    access = acting_access()
    return reasons.required(current_rbac.db.session, current_rbac, access.workspace_id)


def reason_field(suffix: str = "", compact: bool = False) -> Field | None:
    """The ``reason`` input of a form that changes permissions, for ``ui.field``.

    Required (marked and ``required``) when the workspace requires a reason;
    a ``compact`` form (a row's remove button) shows it only then. It keeps
    what was typed when the page comes back with an error. The audit writer
    reads the submitted ``reason`` (:func:`..context.current_reason`).
    """
    required = reason_required()
    if compact and not required:
        return None

    class ReasonForm(Form):
        reason = StringField(
            "Reason for this change", id=f"reason-{suffix}" if suffix else "reason",
            validators=[InputRequired() if required else Optional(),
                        Length(max=int(setting("RBAC_CHANGE_REASON_MAX")))],
            description=("Required in this workspace: it is stored with the change in the "
                         "audit trail." if required else "Optional: stored with the change "
                         "in the audit trail."),
            render_kw={"maxlength": setting("RBAC_CHANGE_REASON_MAX")})

    posted = request.form if request.method == "POST" else None
    return ReasonForm(formdata=posted).reason


class ScheduleForm(FlaskForm):
    """The schedule: how often, and whether permission changes need a reason."""

    interval_days = StringField("Review every (days)", description="From 1 to 3650 days.")
    require_reason = BooleanField("Require a reason for every permission change")


class StartRunForm(FlaskForm):
    """Start a run; ``resource`` adds the members who may view it to the privileged ones."""

    resource = SelectField("Also certify who may view", choices=[], validate_choice=False)


class DecideForm(FlaskForm):
    """Keep or revoke one item, with an optional reason."""

    item_id = HiddenField()
    decision = HiddenField()
    reason = StringField("Reason", validators=[Optional(), Length(max=runs.REASON_MAX)])


def _resources() -> list[tuple[str, str]]:
    names = [r.name for r in current_rbac.registry if r.model is not None]
    return [("", "— nobody else: privileged members only —")] + [(n, n) for n in names]


def _run_or_404(run_id: int) -> Any:
    run = runs.run_in(current_rbac, acting_access().workspace_id, run_id)
    return run if run is not None else not_found()


def _home(status: int = 200, schedule_form: ScheduleForm | None = None,
          start_form: StartRunForm | None = None, page_errors: list[str] | None = None) -> Any:
    rbac, access = current_rbac, acting_access()
    current = schedule.schedule_for(rbac, access.workspace_id)
    if schedule_form is None:
        schedule_form = ScheduleForm(formdata=None, interval_days=str(current.interval_days),
                                     require_reason=current.require_reason)
    start_form = start_form or StartRunForm(formdata=None)
    start_form.resource.choices = _resources()
    return render("review.html", status, schedule=current, schedule_form=schedule_form,
                  start_form=start_form, runs=runs.runs_of(rbac, access.workspace_id),
                  is_owner=access.is_owner, can_review=can("roles.manage"),
                  page_errors=page_errors or [])


@bp.get("/reviews")
@require_permission(PERMISSION)
def reviews() -> Any:
    """The schedule, the runs, and the forms to change the one and start the other."""
    return _home()


@bp.post("/reviews/schedule")
@require_permission(PERMISSION)
@require_recent_mfa
def review_schedule() -> Any:
    """Save the schedule (Owners): out of range is a 400 at ``interval_days``."""
    rbac, access = current_rbac, acting_access()
    form, errors = ScheduleForm(), []
    if not form.validate_on_submit():
        return _home(400, schedule_form=form)
    outcome = attempt(lambda: schedule.save(rbac, access, interval_days=form.interval_days.data,
                                            require_reason=bool(form.require_reason.data)),
                      form, errors=errors)
    if not outcome.ok:
        return _home(outcome.status, schedule_form=form, page_errors=errors)
    flash("Review schedule saved.", "success")
    return redirect(url_for(".reviews"))


@bp.post("/reviews/runs")
@require_permission(PERMISSION)
def start_review_run() -> Any:
    """Start a certification run (reviewers: ``roles.manage``)."""
    rbac, access = current_rbac, acting_access()
    form = StartRunForm()
    form.resource.choices = _resources()
    if not form.validate_on_submit():
        return _home(400, start_form=form)
    errors: list[str] = []
    outcome = attempt(lambda: runs.start_run(rbac, access, form.resource.data or ""), form,
                      errors=errors)
    if not outcome.ok:
        return _home(outcome.status, start_form=form, page_errors=errors)
    return redirect(url_for(".review_run", run_id=outcome.value.id))


def _run_page(run: Any, status: int = 200, form: DecideForm | None = None,
              page_errors: list[str] | None = None) -> Any:
    """The run as stored, with what changed since its lines were listed (an open run)."""
    access = acting_access()
    return render("review_run.html", status, run=run, form=form or DecideForm(formdata=None),
                  failed_item=int(form.item_id.data) if form is not None
                  and is_digits(str(form.item_id.data or "")) else None,
                  can_review=can("roles.manage"), me=access.membership_id,
                  pending=lines.pending_words(current_rbac, run), page_errors=page_errors or [])


@bp.get("/reviews/runs/<int:run_id>")
@require_permission(PERMISSION)
def review_run(run_id: int) -> Any:
    """A run's items, each with its decision or the keep / revoke controls."""
    return _run_page(_run_or_404(run_id))


@bp.post("/reviews/runs/<int:run_id>/decide")
@require_permission(PERMISSION)
@require_recent_mfa
def decide_review_item(run_id: int) -> Any:
    """Keep or revoke one item (a revoke goes through the role service)."""
    rbac, access = current_rbac, acting_access()
    run = _run_or_404(run_id)
    form = DecideForm()
    if not form.validate_on_submit():
        return _run_page(run, 400, form)
    item = runs.item_in(rbac, run, int(form.item_id.data)) if is_digits(
        str(form.item_id.data or "")) else None
    if item is None:
        return not_found()
    errors: list[str] = []
    outcome = attempt(lambda: runs.decide(rbac, access, item, form.decision.data or "",
                                          form.reason.data or ""), form, errors=errors)
    if not outcome.ok:
        return _run_page(run, outcome.status, form, errors)
    flash(f"{item.member_name}: {item.decision} — {item.outcome}.",
          "warning" if item.outcome.startswith("refused") else "success")
    return redirect(url_for(".review_run", run_id=run.id) + f"#item-{item.id}")


def _run_step(run_id: int, step: Callable[[Any, Any, Any], T],
              done: Callable[[Any, T], str]) -> Any:
    """A reviewer's form on a run (no fields but the CSRF token): ``step(rbac, access,
    run)`` through the service and committed, then ``done(run, value)`` flashed; a
    refusal is shown on the run page with its status."""
    rbac, access = current_rbac, acting_access()
    run = _run_or_404(run_id)
    if not FlaskForm().validate_on_submit():
        return _run_page(run, 400, page_errors=["The form expired; reload the page and try again."])
    errors: list[str] = []
    outcome = attempt(lambda: step(rbac, access, run), errors=errors)
    if not outcome.ok:
        return _run_page(run, outcome.status, page_errors=errors)
    flash(done(run, outcome.value), "success")
    return redirect(url_for(".review_run", run_id=run.id))


@bp.post("/reviews/runs/<int:run_id>/refresh")
@require_permission(PERMISSION)
def refresh_review_run(run_id: int) -> Any:
    """Bring an open run's lines up to the roles in force (a reviewer's step)."""
    return _run_step(run_id, runs.refresh, lambda run, words: (
        f"Run #{run.id}: {len(words)} line(s) refreshed." if words
        else f"Run #{run.id}: its lines already show the roles in force."))


@bp.post("/reviews/runs/<int:run_id>/complete")
@require_permission(PERMISSION)
def complete_review_run(run_id: int) -> Any:
    """Complete the run once every item is decided (409 otherwise)."""
    return _run_step(run_id, runs.complete_run, lambda run, _: (
        f"Run #{run.id} completed; the next review is counted from today."))


@bp.get("/reviews/runs/<int:run_id>/report")
@require_permission(PERMISSION)
def review_report(run_id: int) -> Any:
    """The run's compliance report as a printable page."""
    run = _run_or_404(run_id)
    return render("review_report.html", run=run, sections=report.build(current_rbac, run),
                  generated=utcnow())


@bp.get("/reviews/runs/<int:run_id>/report.csv")
@require_permission(PERMISSION)
def review_report_csv(run_id: int) -> Any:
    """The run's compliance report as CSV (every cell made safe for spreadsheets).

    It lists members with their roles, so it passes the members CSV's gate
    (:func:`..team.gate_members_export`, ``via="review_report"``).
    """
    rbac = current_rbac
    run = _run_or_404(run_id)
    team.gate_members_export(rbac, acting_access(), {"via": report.REPORT_EXPORT, "run_id": run.id},
                             count=len(run.items),
                             summary=f"Export the report of review #{run.id} "
                                     f"({len(run.items)} lines) as CSV")
    produced = _report_file(run)
    rbac.db.session.commit()
    return Response(produced.content, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{produced.filename}"'})


def _report_file(run: Any) -> ExportFile:
    """The CSV of ``run``'s report; audits the export."""
    rbac = current_rbac
    body = report.to_csv(report.build(rbac, run))
    rbac.audit("export", resource="members", target=f"certification run #{run.id} report",
               rows=len(run.items))
    return ExportFile(f"certification-run-{run.id}.csv", body.encode("utf-8"))


def produce_approved_report(payload: Mapping[str, Any]) -> ExportFile:
    """The report CSV of an approved request, as the requester sees the run at approval."""
    run_id = payload.get("run_id")
    run = runs.run_in(current_rbac, acting_access().workspace_id, run_id) \
        if isinstance(run_id, int) else None
    if run is None:
        raise ValidationError("the review run no longer exists", field="run_id")
    return _report_file(run)
