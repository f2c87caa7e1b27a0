"""API endpoints for access reviews: the schedule, certification runs, decisions, the report.

The same services as the Certification pages (:mod:`..certification`), so
the same rules: ``settings.view`` reads (Owners and Admins); only an Owner
changes the schedule (403), out-of-range values are a 400 naming the field;
``roles.manage`` starts, refreshes, decides and completes runs; reading a
run writes nothing (it names the changes its lines do not show yet, which a
reviewer's refresh brings in); nobody decides their
own item (403); a decided item or a completed run is a 409; a run of
another workspace is a 404. A decision needs the recent MFA check every
role change needs (``mfa_step_up_required``). A revoke the role service
refuses is answered 200 with the item's ``outcome`` ("refused: ...").
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, url_for
from flask.typing import ResponseReturnValue

from .. import team
from ..certification import lines, report, runs, schedule
from ..policy import Access
from ..proxies import current_rbac
from .blueprint import (
    active_access,
    bad,
    bp,
    check_keys,
    created,
    forbidden,
    id_of,
    integers,
    json_body,
    not_found,
    require,
    step_up,
)

SCHEDULE_KEYS = frozenset({"interval_days", "require_reason"})
START_KEYS = frozenset({"resource"})
DECIDE_KEYS = frozenset({"item_id", "decision", "reason"})
READ = "settings.view"


def _when(value: Any) -> str | None:
    return value.isoformat() + "Z" if value is not None else None


def schedule_json(current: schedule.Schedule) -> dict[str, Any]:
    return {"workspace_id": current.workspace_id, "interval_days": current.interval_days,
            "require_reason": current.require_reason,
            "last_reviewed_at": _when(current.last_reviewed_at),
            "due_at": _when(current.due_at()), "due": current.is_due()}


def item_json(item: Any) -> dict[str, Any]:
    return {"id": item.id, "membership_id": item.membership_id, "member": item.member_name,
            "why": item.why.split(",") if item.why else [], "roles": item.roles or [],
            "decision": item.decision, "decided_at": _when(item.decided_at),
            "decided_by_membership_id": item.decided_by_membership_id,
            "decided_by": item.decided_by_name, "outcome": item.outcome, "reason": item.reason}


def run_json(run: Any, *, items: bool = True, pending: list[str] | None = None
             ) -> dict[str, Any]:
    out = {"id": run.id, "status": run.status, "resource": run.resource or None,
           "started_at": _when(run.started_at),
           "started_by_membership_id": run.started_by_membership_id,
           "started_by": run.started_by_name, "completed_at": _when(run.completed_at),
           "completed_by_membership_id": run.completed_by_membership_id,
           "completed_by": run.completed_by_name or None,
           "decided": sum(i.decision is not None for i in run.items), "total": len(run.items)}
    if items:
        out["items"] = [item_json(i) for i in run.items]
    if pending is not None:
        out["pending_changes"] = pending
    return out


def _run_or_404(run_id: int) -> Any:
    run = runs.run_in(current_rbac, active_access().workspace_id, run_id)
    if run is None:
        raise not_found("certification run")
    return run


@bp.get("/reviews/schedule")
def review_schedule() -> ResponseReturnValue:
    """The workspace's review schedule (settings.view)."""
    access = require(READ)
    return jsonify(schedule_json(schedule.schedule_for(current_rbac, access.workspace_id)))


@bp.patch("/reviews/schedule")
def update_review_schedule() -> ResponseReturnValue:
    """Change ``interval_days`` and/or ``require_reason`` (Owners only, with a recent MFA
    check when enrolled, as the settings page asks)."""
    access = require(READ)
    if not access.is_owner:
        raise forbidden("Only an Owner can change the review schedule.")
    step_up("the review schedule")
    body = json_body()
    check_keys(body, SCHEDULE_KEYS)
    for key in SCHEDULE_KEYS:
        if key in body and body[key] is None:
            raise bad(f"{key} cannot be null", key)
    integers(body, ("interval_days",))
    rbac = current_rbac
    changes = schedule.save(rbac, access, interval_days=body.get("interval_days"),
                            require_reason=body.get("require_reason"))
    rbac.db.session.commit()
    return jsonify({**schedule_json(schedule.schedule_for(rbac, access.workspace_id)),
                    "changes": changes})


def _reviewer() -> Access:
    """The caller, if they may read the reviews and manage roles
    (:func:`..certification.runs.require_reviewer`); else a 403."""
    require(READ)
    return require("roles.manage")


@bp.get("/reviews/runs")
def review_runs() -> ResponseReturnValue:
    """The workspace's certification runs, newest first (settings.view)."""
    access = require(READ)
    return jsonify({"runs": [run_json(r, items=False)
                             for r in runs.runs_of(current_rbac, access.workspace_id)]})


@bp.post("/reviews/runs")
def start_review_run() -> ResponseReturnValue:
    """Start a run: the privileged members, and with ``resource`` its viewers (settings.view
    and roles.manage)."""
    access = _reviewer()
    body = json_body()
    check_keys(body, START_KEYS)
    resource = body.get("resource") or ""
    if not isinstance(resource, str):
        raise bad("resource must be a resource name", "resource")
    rbac = current_rbac
    run = runs.start_run(rbac, access, resource)
    rbac.db.session.commit()
    return created(run_json(run), url_for(".review_run", run_id=run.id))


@bp.get("/reviews/runs/<int:run_id>")
def review_run(run_id: int) -> ResponseReturnValue:
    """A run with its items and decisions (settings.view), and for an open run the changes
    its lines do not show yet (``pending_changes``, in words; nothing is written)."""
    require(READ)
    run = _run_or_404(run_id)
    return jsonify(run_json(run, pending=lines.pending_words(current_rbac, run)))


@bp.post("/reviews/runs/<int:run_id>/refresh")
def refresh_review_run(run_id: int) -> ResponseReturnValue:
    """Bring an open run's lines up to the roles in force (settings.view and roles.manage);
    the run, with
    what changed in ``refreshed``."""
    access = _reviewer()
    run = _run_or_404(run_id)
    rbac = current_rbac
    words = runs.refresh(rbac, access, run)
    rbac.db.session.commit()
    return jsonify({**run_json(run, pending=[]), "refreshed": words})


@bp.post("/reviews/runs/<int:run_id>/decisions")
def decide_review_item(run_id: int) -> ResponseReturnValue:
    """Keep or revoke one item: ``{item_id, decision, reason}`` (settings.view and
    roles.manage)."""
    access = _reviewer()
    run = _run_or_404(run_id)
    body = json_body()
    check_keys(body, DECIDE_KEYS)
    if "item_id" not in body:
        raise bad("item_id is required", "item_id")
    item = runs.item_in(current_rbac, run, id_of(body["item_id"], "item_id"))
    if item is None:
        raise not_found("item")
    reason = body.get("reason") or ""
    decision = body.get("decision")
    if not isinstance(decision, str):
        raise bad("decision must be 'keep' or 'revoke'", "decision")
    step_up()
    rbac = current_rbac
    runs.decide(rbac, access, item, decision, reason)
    rbac.db.session.commit()
    return jsonify(item_json(item))


@bp.post("/reviews/runs/<int:run_id>/complete")
def complete_review_run(run_id: int) -> ResponseReturnValue:
    """Complete a run whose items are all decided (settings.view and roles.manage; 409
    otherwise)."""
    access = _reviewer()
    run = _run_or_404(run_id)
    rbac = current_rbac
    runs.complete_run(rbac, access, run)
    rbac.db.session.commit()
    return jsonify(run_json(run))


@bp.get("/reviews/runs/<int:run_id>/report")
def review_report(run_id: int) -> ResponseReturnValue:
    """The run's compliance report as JSON sections (settings.view)."""
    require(READ)
    run = _run_or_404(run_id)
    return jsonify({"run_id": run.id, "sections": [
        {"key": s.key, "title": s.title, "columns": s.columns, "rows": s.rows}
        for s in report.build(current_rbac, run)]})


@bp.get("/reviews/runs/<int:run_id>/report.csv")
def review_report_csv(run_id: int) -> ResponseReturnValue:
    """The run's compliance report as CSV, every cell safe for spreadsheets (settings.view).

    It lists members with their roles, so, as on the settings page, it needs
    ``members.export`` and over the workspace's export threshold answers 409
    ``approval_required`` (:func:`..team.gate_members_export`).
    """
    access = require(READ)
    rbac = current_rbac
    run = _run_or_404(run_id)
    team.gate_members_export(rbac, access, {"via": report.REPORT_EXPORT, "run_id": run.id},
                             count=len(run.items),
                             summary=f"Export the report of review #{run.id} "
                                     f"({len(run.items)} lines) as CSV")
    body = report.to_csv(report.build(rbac, run))
    rbac.audit("export", resource="members", target=f"certification run #{run.id} report",
               rows=len(run.items))
    rbac.db.session.commit()
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="certification-run-{run.id}.csv"'})
