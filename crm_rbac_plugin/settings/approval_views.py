"""The Approvals pages: the requests a member decides or made, one request, the policy.

* ``/approvals``: pending requests the member may decide (not their own),
  their own requests, and the decided ones they may see. Every active
  member reaches it; it lists only what is theirs to see.
* ``/approvals/<id>``: one request, with Approve and Reject (approvers) or
  Cancel (the requester), each with a reason and a confirmation; and the
  requester's single-use download once an approved export is ready. A
  request the member may not see is a 404.
* ``/approvals/policy``: the workspace's approval policy, changed by Owners.
* ``/approvals/ask`` (POST): ask for the approval a GET page offered (an
  export over the threshold answers with that offer, :mod:`..approvals.asking`).

A request the member may not see is a 404 on every route, the POST ones
included, as a missing id is. On one they see, the decisions are
:mod:`..approvals`' (403 to a non-approver or the requester, 409 to a
decided or expired request); these views only show them.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, flash, jsonify, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from .. import approvals, gate, pages
from ..approvals.policy import MAX_THRESHOLD
from ..decorators import login_required, wants_json
from ..errors import ValidationError
from ..pages import acting_access, not_found
from ..policy import Access, Decision
from ..proxies import current_rbac
from .blueprint import attempt, bp, render
from .forms import choices

#: The reject form's prefix: it sits beside the approve form on one page.
REJECT = "reject"


class DecisionForm(FlaskForm):
    """Approve, reject or cancel: a reason, optional."""

    reason = TextAreaField("Reason", validators=[Optional(), Length(max=2000)],
                           description="Recorded in the audit trail and sent to the requester.")


def _member() -> Access:
    access = acting_access()
    if not access.active:
        current_rbac.refuse(Decision(False, "You are not an active member of this workspace."))
    return access


def add_tabs(app: Flask) -> None:
    """The Approvals tab, for every member (each sees only their part).

    A member who may not view the workspace's approvals sees only their own
    requests there, so the tab sits among their own pages.
    """
    s = bp.name
    pages.add_tab(app, f"{s}.approvals", "Approvals", order=125,
                  highlight=[f"{s}.approval", f"{s}.approval_policy"],
                  personal_without="approvals.view")


@bp.get("/approvals", endpoint="approvals")
@login_required
def approvals_page() -> Any:
    """The member's approval lists (expired requests are marked so on the way)."""
    rbac, access = current_rbac, _member()
    if approvals.expire_due(rbac, access.workspace_id):
        rbac.db.session.commit()
    return render("approvals.html", lists=approvals.listing(rbac, access),
                  policy=approvals.settings_for(rbac, access.workspace_id),
                  operations=gate.OPERATIONS, is_owner=access.is_owner)


def _visible_or_404(request_id: int) -> Any:
    """A request the member may see, or a 404: for the page, a decision or a download.

    A request the member may not see (neither its requester nor an eligible
    approver) answers every route, GET or POST, exactly as a missing id, so
    no route confirms that an id exists. On a request they see, the service
    answers 403 to one who may not decide or cancel it.
    """
    req = approvals.visible(current_rbac, _member(), request_id)
    return req if req is not None else not_found()


class AskForm(FlaskForm):
    """The offer a GET page made (a signed token) and the member's reason."""

    token = StringField("Offer", validators=[InputRequired(), Length(max=20000)])
    reason = TextAreaField("Reason", validators=[Optional(), Length(max=2000)])


@bp.post("/approvals/ask", endpoint="ask_approval")
@login_required
def ask_approval() -> Any:
    """Record the request a page offered: the answer is the request's page (or 202),
    as for any operation that waits; a bad or foreign offer is a 400 and records nothing."""
    form = AskForm()
    if not form.validate_on_submit():
        message = "; ".join(f"{name}: {errors[0]}" for name, errors in form.errors.items())
    else:
        try:  # records the request and raises ApprovalPending, answered by its handler
            approvals.ask(current_rbac, _member(), form.token.data, form.reason.data or "")
        except ValidationError as exc:
            current_rbac.db.session.rollback()
            message = exc.message
    if wants_json():
        return jsonify(error="bad_request", message=message, field="token"), 400
    return render_template("rbac/approval_required.html", message=message, url="", token="",
                           summary=""), 400


@bp.get("/approvals/<int:request_id>")
@login_required
def approval(request_id: int) -> Any:
    """One request, with the actions the member may take on it."""
    return _approval_page(_visible_or_404(request_id), DecisionForm())


def _approval_page(req: Any, form: DecisionForm, status: int = 200,
                   errors: list[str] | None = None) -> Any:
    rbac, access = current_rbac, _member()
    M = rbac.models.Membership
    names = {m.id: m.display_name for m in rbac.db.session.scalars(
        rbac.db.select(M).where(M.workspace_id == access.workspace_id))}
    mine = req.requester_id == access.membership_id
    may_decide = (not mine and req.status == "pending"
                  and approvals.may_decide(rbac, access, req.approver_permission)
                  and not any(d.membership_id == access.membership_id for d in req.decisions))
    reject_form = form if form.reason.name.startswith(REJECT) else DecisionForm(prefix=REJECT)
    workspace = rbac.db.session.get(rbac.models.Workspace, access.workspace_id)
    details = approvals.describe_payload(rbac, req, names, getattr(workspace, "timezone", None))
    return render("approval.html", status, req=req, form=form, reject_form=reject_form,
                  names=names, mine=mine, details=details,
                  may_decide=may_decide, page_errors=errors or [],
                  operation_label=gate.OPERATIONS.get(req.operation, req.operation),
                  download_ready=bool(mine and req.download_hash and req.download_used_at is None))


def _decide(request_id: int, decide: Any, done: str, prefix: str = "") -> Any:
    """Run ``decide`` and show the request again; a member who may not see it gets the bare refusal."""
    rbac, access = current_rbac, _member()
    req = _visible_or_404(request_id)
    form = DecisionForm(prefix=prefix)
    errors: list[str] = []
    status = 400
    if form.validate_on_submit():
        outcome = attempt(lambda: decide(rbac, access, req, form.reason.data or ""), form,
                          errors=errors)
        if outcome.ok and outcome.value == "failed" and approvals.is_stale(req.failure):
            errors.append(req.failure)  # kept failed; nothing was applied
            status = 409
        elif outcome.ok:
            flash(done.format(id=req.id, outcome=outcome.value), "success")
            return redirect(url_for(".approval", request_id=req.id))
        else:
            status = outcome.status
    rbac.db.session.expire_all()
    if not approvals.may_see(rbac, access, req):
        return rbac.refuse(Decision(False, errors[0] if errors else "The form is invalid."),
                           status)
    return _approval_page(req, form, status, errors)


@bp.post("/approvals/<int:request_id>/approve")
@login_required
def approve_request(request_id: int) -> Any:
    return _decide(request_id, approvals.approve, "Request #{id}: {outcome}.")


@bp.post("/approvals/<int:request_id>/reject")
@login_required
def reject_request(request_id: int) -> Any:
    return _decide(request_id, approvals.reject, "Request #{id} rejected; nothing was changed.",
                   REJECT)


@bp.post("/approvals/<int:request_id>/cancel")
@login_required
def cancel_request(request_id: int) -> Any:
    return _decide(request_id, approvals.cancel, "Request #{id} cancelled; nothing was changed.")


def _file(req: Any) -> Response:
    current_rbac.db.session.commit()  # the link is spent before a byte is sent
    return Response(req.content or b"", mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{req.filename or "export.csv"}"',
        "Cache-Control": "no-store"})


@bp.post("/approvals/<int:request_id>/download")
@login_required
def download_request(request_id: int) -> Any:
    """The requester's approved export, once (the signed-in requester needs no token)."""
    access = _member()
    req = _visible_or_404(request_id)
    if req.requester_id != access.membership_id:
        return current_rbac.refuse(Decision(False, "Only the requester downloads the file."))
    if not DecisionForm().validate_on_submit():
        return not_found()
    req = approvals.claim(current_rbac, access, req)
    return _file(req) if req is not None else not_found()


@bp.get("/approvals/download/<token>", endpoint="download_csv")
@login_required
def download_link(token: str) -> Any:
    """The mailed single-use link: a forged, reused or expired one is a 404."""
    req = approvals.download(current_rbac, _member(), token)
    return _file(req) if req is not None else not_found()


# -- the policy --------------------------------------------------------------------------


def _policy_form(settings: approvals.Settings) -> FlaskForm:
    class PolicyForm(FlaskForm):
        approvals_required = SelectField("Approvals required", choices=choices([("1", "1"), ("2", "2")]),
                                         default=str(settings.approvals_required))
        approver_permission = StringField(
            "Approver permission", default=settings.approver_permission,
            validators=[InputRequired(), Length(max=100)],
            description="Members holding it decide requests, e.g. approvals.decide.")
        expiry_hours = IntegerField("Expiry (hours)", default=settings.expiry_hours,
                                    validators=[InputRequired(), NumberRange(1, 720)])

    for name, label in gate.OPERATIONS.items():
        limit = settings.threshold(name)
        setattr(PolicyForm, f"op_{name}", BooleanField(label, default=limit is not None))
        if name in gate.COUNTED:
            setattr(PolicyForm, f"n_{name}", IntegerField(
                "N (rows)", default=limit if limit is not None else 1000,
                validators=[Optional(), NumberRange(0, MAX_THRESHOLD)]))
    return PolicyForm()


def _changes(form: Any) -> dict[str, Any]:
    """The policy the form asks for. A ticked counted operation sends its N as typed: an
    empty N is blank text, which the service refuses naming ``operations.<name>``
    (never 0, which would make every export or bulk delete wait)."""
    ops: dict[str, Any] = {}
    for name in gate.OPERATIONS:
        if form[f"op_{name}"].data:
            n = form[f"n_{name}"].data
            ops[name] = ("" if n is None else n) if name in gate.COUNTED else True
    return {"operations": ops, "approvals_required": int(form.approvals_required.data),
            "approver_permission": form.approver_permission.data,
            "expiry_hours": form.expiry_hours.data}


@bp.route("/approvals/policy", methods=["GET", "POST"])
@login_required
def approval_policy() -> Any:
    """Which operations need approval (Owners change it; others are refused)."""
    rbac, access = current_rbac, _member()
    if not access.is_owner:
        return rbac.refuse(Decision(False, "Only an Owner can see and change the approval "
                                           "policy."), 403)
    form = _policy_form(approvals.settings_for(rbac, access.workspace_id))
    status = 200
    if request.method == "POST":
        if not form.validate_on_submit():
            status = 400
        else:
            outcome = attempt(lambda: approvals.save(rbac, access, _changes(form)), form,
                              place=lambda exc: _place(form, exc))
            if outcome.ok:
                flash("Approval policy saved.", "success")
                return redirect(url_for(".approval_policy"))
            status = outcome.status
    return render("approvals_policy.html", status, form=form, operations=gate.OPERATIONS,
                  counted=gate.COUNTED)


def _place(form: Any, exc: Any) -> None:
    """Show a refusal at the input it names (``operations.export`` is ``n_export``)."""
    name = (exc.field or "").replace("operations.", "n_")
    target = form._fields.get(name) or form.approver_permission
    target.errors = [*target.errors, exc.message]
