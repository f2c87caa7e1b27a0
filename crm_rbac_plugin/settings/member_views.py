"""One member's page: status, department, assigned members and record reassignment.

The confirmations say what will happen, with counts computed here on the
server: how many of the member's records stay theirs when they are
deactivated, how many records a reassignment moves, and to whom. The counts
cover only the records the acting member reaches (see
:func:`..team.owned_counts`), so a confirmation discloses nothing else, and
say so to anyone but an Owner (who reaches every record). The page offers
deactivation only when the acting member may do it to this member
(:func:`..team.may_change_status`), and reassignment only when some of the
member's records would move. Whoever may deactivate the member also sees
their API tokens there and revokes one (:func:`..team.revoke_member_token`).

Moving a member into a department gives them the department's roles, and
a manager's team widens the manager's reach: both ask for a recent MFA
check (:func:`..security.stepup.require_recent_mfa`), as every role
assignment does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import flash, redirect, request, url_for

from .. import queries, team
from ..decorators import require_permission
from ..models import utcnow
from ..pages import ConfirmForm, acting_access, can, not_found
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from ..user_keys import user_key
from .blueprint import attempt, bp, membership_or_404, render
from .forms import choices
from .member_forms import MemberDepartmentForm, ReassignForm, TeamForm


def _back_to_member(membership: Any) -> Any:
    return redirect(url_for(".team_member", membership_id=membership.id))


def _workspace_name(workspace_id: int) -> str:
    return str(current_rbac.db.session.get(current_rbac.models.Workspace, workspace_id).name)


def _member_page(membership: Any, *, status: int = 200, page_errors: list[str] | None = None,
                 dept_form: MemberDepartmentForm | None = None,
                 team_form: TeamForm | None = None) -> Any:
    rbac, access = current_rbac, acting_access()
    ws = access.workspace_id
    if dept_form is None:
        dept_form = MemberDepartmentForm(formdata=None, data={
            "department_id": membership.department_id,
            "visibility": membership.visibility or ""})
    dept_form.department_id.choices = choices([("", "— none —")] + [
        (d.id, d.name) for d in team.workspace_departments(rbac, ws)])
    assigned = team.assigned_members(rbac, membership)
    if team_form is None:
        team_form = TeamForm(formdata=None)
    taken = {m.id for m in assigned} | {membership.id}
    team_form.member_id.choices = choices([("", "— choose —")] + [
        (m.id, m.display_name) for m in queries.workspace_memberships(rbac, ws)
        if m.id not in taken])
    return render("team/member.html", status, membership=membership, assigned=assigned,
                  dept_form=dept_form, team_form=team_form, confirm=ConfirmForm(),
                  can_edit=can("members.edit"), is_me=membership.id == access.membership_id,
                  may_change_status=team.may_change_status(rbac, access, membership),
                  member_tokens=team.manageable_tokens(rbac, access, membership), now=utcnow(),
                  counts_all=access.is_owner,
                  page_errors=page_errors or [], workspace_name=_workspace_name(ws),
                  picture_url=team.picture_urls(rbac, access, [membership]).get(membership.id),
                  owned=sum(team.owned_counts(rbac, access, membership.user_id).values()),
                  movable=sum(team.owned_counts(rbac, access, membership.user_id,
                                                action="manage").values()))


@bp.get("/members/<int:membership_id>")
@require_permission("members", "view")
def team_member(membership_id: int) -> Any:
    """A member's status, department and assigned members, with the actions on them."""
    return _member_page(membership_or_404(membership_id))


def _change_member(membership: Any, change: Callable[[], Any], done: str) -> Any:
    """Run ``change`` and commit, then back to the member's page with ``done`` flashed;
    a refusal rolls back and shows the member's page with the message (403 or 400)."""
    page_errors: list[str] = []
    outcome = attempt(change, errors=page_errors)
    if not outcome.ok:
        return _member_page(membership, status=outcome.status, page_errors=page_errors)
    flash(done, "success")
    return _back_to_member(membership)


def _member_action(membership_id: int, action: Any, done: str) -> Any:
    rbac = current_rbac
    membership = membership_or_404(membership_id)
    if not ConfirmForm().validate_on_submit():
        return _member_page(membership, status=400, page_errors=["The form expired; try again."])
    return _change_member(membership, lambda: action(rbac, acting_access(), membership),
                          f"{membership.display_name} {done}.")


@bp.post("/members/<int:membership_id>/deactivate")
@require_permission("members", "edit")
def deactivate(membership_id: int) -> Any:
    return _member_action(membership_id, team.deactivate, "is deactivated; their records stay theirs")


@bp.post("/members/<int:membership_id>/reactivate")
@require_permission("members", "edit")
def reactivate(membership_id: int) -> Any:
    return _member_action(membership_id, team.reactivate, "is active again")


@bp.post("/members/<int:membership_id>/tokens/<int:token_id>/revoke")
@require_permission("members", "edit")
def revoke_member_token(membership_id: int, token_id: int) -> Any:
    """Revoke one of a member's API tokens (whoever may deactivate the member may)."""
    rbac = current_rbac
    membership = membership_or_404(membership_id)
    token = next((t for t in queries.member_tokens(rbac, membership.id) if t.id == token_id),
                 None)
    if token is None:
        return not_found()
    if not ConfirmForm().validate_on_submit():
        return _member_page(membership, status=400, page_errors=["The form expired; try again."])
    return _change_member(
        membership, lambda: team.revoke_member_token(rbac, acting_access(), membership, token),
        f"The API token {token.name} of {membership.display_name} is revoked.")


@bp.post("/members/<int:membership_id>/department")
@require_permission("members", "edit")
@require_recent_mfa
def member_department(membership_id: int) -> Any:
    rbac, access = current_rbac, acting_access()
    membership = membership_or_404(membership_id)
    form = MemberDepartmentForm()
    departments = team.workspace_departments(rbac, access.workspace_id)
    form.department_id.choices = choices([("", "— none —")] + [
        (d.id, d.name) for d in departments])
    if not form.validate_on_submit():
        return _member_page(membership, status=400, dept_form=form)
    dept = next((d for d in departments if d.id == form.department_id.data), None)

    def change() -> None:
        team.set_department(rbac, access, membership, dept)
        if "visibility" in request.form and (form.visibility.data or None) != membership.visibility:
            team.set_visibility(rbac, access, membership, form.visibility.data or None)

    return _change_member(membership, change, f"{membership.display_name} is now in "
                                              f"{dept.name if dept else 'no department'}.")


@bp.post("/members/<int:membership_id>/team")
@require_permission("members", "edit")
@require_recent_mfa
def add_to_team(membership_id: int) -> Any:
    rbac, access = current_rbac, acting_access()
    manager = membership_or_404(membership_id)
    form = TeamForm()
    form.member_id.choices = choices((m.id, m.display_name) for m in
                                     queries.workspace_memberships(rbac, access.workspace_id))
    if not form.validate_on_submit():
        return _member_page(manager, status=400, team_form=form)
    member = queries.membership_in(rbac, access.workspace_id, form.member_id.data)
    return _change_member(manager, lambda: team.assign_to_manager(rbac, access, manager, member),
                          f"{manager.display_name} now manages {member.display_name}.")


@bp.post("/members/<int:membership_id>/team/<int:member_id>/remove")
@require_permission("members", "edit")
@require_recent_mfa
def remove_from_team(membership_id: int, member_id: int) -> Any:
    rbac, access = current_rbac, acting_access()
    manager = membership_or_404(membership_id)
    member = membership_or_404(member_id)
    if not ConfirmForm().validate_on_submit():
        return _member_page(manager, status=400, page_errors=["The form expired; try again."])
    return _change_member(manager,
                          lambda: team.unassign_from_manager(rbac, access, manager, member),
                          f"{manager.display_name} no longer manages {member.display_name}.")


def _reassign_form(source: Any) -> ReassignForm:
    rbac, ws = current_rbac, acting_access().workspace_id
    form = ReassignForm()
    form.to_user_id.choices = choices([("", "— choose —")] + [
        (m.user_id, m.display_name) for m in queries.workspace_memberships(rbac, ws)
        if m.status == "active" and m.id != source.id])
    # Plain pairs: ui.checkboxes renders (value, label) choices.
    form.resources.choices = [(r.name, r.label or r.name) for r in team.reassignable(rbac)]
    return form


@bp.route("/members/<int:membership_id>/reassign", methods=["GET", "POST"])
@require_permission("members", "edit")
def reassign(membership_id: int) -> Any:
    """Move this member's records to another member: preview the counts, then apply.

    ``?resource=deals&id=5`` (repeatable ``id``) limits the move to those records,
    for a link from one record's page.
    """
    rbac, access = current_rbac, acting_access()
    source = membership_or_404(membership_id)
    ids = request.args.getlist("id", type=int) or None
    only = request.args.get("resource")
    form = _reassign_form(source)
    status, page_errors, preview, target = 200, [], None, None
    if request.method == "POST":
        if form.validate_on_submit():
            resources = [only] if only else (form.resources.data or None)
            to_user_id = user_key(rbac, form.to_user_id.data)  # one of the choices
            target = team.membership_of(rbac, access.workspace_id, to_user_id)
            args = (rbac, access, source.user_id, to_user_id, resources)
            applying = request.form.get("step") == "apply"
            step = team.reassign if applying else team.reassign_preview
            outcome = attempt(lambda: step(*args, ids=ids), commit=applying, errors=page_errors)
            if outcome.ok and applying:
                flash(f"{sum(outcome.value.values())} record(s) moved from "
                      f"{source.display_name} to {target.display_name}.", "success")
                return _back_to_member(source)
            preview, status = outcome.value, outcome.status
        else:
            status = 400
    movable = team.owned_counts(rbac, access, source.user_id, action="manage")
    return render("team/reassign.html", status, form=form, source=source, preview=preview,
                  page_errors=page_errors, only=only, ids=ids, target=target,
                  movable=sum(movable.values()))
