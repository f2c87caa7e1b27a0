"""The team pages: members list, invitations, member lifecycle, departments, profile.

Thin views over :mod:`..team` on the settings blueprint: the service refuses
with PermissionDenied (403) or ValidationError (400, or its own status), and
:func:`.blueprint.attempt` commits a change that succeeds at once or rolls it
back and shows the message. Every state-changing form is a Flask-WTF form,
so it carries a CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, redirect, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional

from .. import queries, team
from ..config import setting
from ..decorators import login_required, require_permission
from ..identity import sign_in, signed_in_user, user_key
from ..models import MEMBER_STATUSES
from ..pages import ConfirmForm, acting_access, can, not_found
from ..policy import Decision
from ..proxies import current_rbac
from . import invitation_pages
from .blueprint import attempt, bp, membership_or_404, render
from .forms import choices, optional_int, optional_text

# -- forms -------------------------------------------------------------------------------


class InviteForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    roles = SelectMultipleField("Roles", coerce=int, choices=[],
                                validators=[DataRequired(message="Choose at least one role.")])


class FilterForm(FlaskForm):
    """Read from the query string: no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=100)])
    status = SelectField("Status", choices=choices(
        [("", "any status"), *((s, s.title()) for s in MEMBER_STATUSES)]), default="")
    role = SelectField("Role", coerce=optional_int, choices=[])
    department = SelectField("Department", coerce=optional_int, choices=[])


class AcceptForm(FlaskForm):
    name = StringField("Your name", validators=[Optional(), Length(max=120)])
    password = PasswordField("Choose a password", validators=[Optional(), Length(max=200)])


class DepartmentForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])


class MemberDepartmentForm(FlaskForm):
    department_id = SelectField("Department", coerce=optional_int, choices=[])
    visibility = SelectField("Visibility", choices=choices([
        ("", "As the roles grant"), ("all", "All records"),
        ("department", "Department's records"), ("own", "Own records only")]), default="")


class TeamForm(FlaskForm):
    member_id = SelectField("Assign a member", coerce=optional_int, choices=[],
                            validators=[DataRequired(message="Choose a member.")])


class ReassignForm(FlaskForm):
    to_user_id = SelectField("New owner", coerce=optional_text, choices=[],
                             validators=[DataRequired(message="Choose the new owner.")])
    resources = SelectMultipleField("Records", choices=[],
                                    description="None chosen: every kind of record.")


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    notify_email = BooleanField("Email me notifications")
    current_password = PasswordField("Current password", validators=[Optional()])
    new_password = PasswordField("New password", validators=[Optional(), Length(max=200)])


# -- helpers -------------------------------------------------------------------------------


def _back_to_member(membership: Any) -> Any:
    return redirect(url_for(".team_member", membership_id=membership.id))


# -- members list ------------------------------------------------------------------------


@bp.get("/members", endpoint="members")
@require_permission("members", "view")
def members_page() -> Any:
    """Members with roles, department, status and last activity; filter and search."""
    rbac, access = current_rbac, acting_access()
    ws = access.workspace_id
    form = FilterForm(formdata=request.args)
    form.role.choices = choices([("", "any role")] + [
        (r.id, r.name) for r in queries.workspace_roles(rbac, ws)])
    departments = _departments(rbac, ws)
    form.department.choices = choices([("", "any department")] + [
        (d.id, d.name) for d in departments])
    status = 200
    flt = team.MemberFilter()
    if form.validate():
        flt = team.MemberFilter(status=form.status.data or "", role_id=form.role.data,
                                department_id=form.department.data, q=form.q.data or "")
    else:
        status = 400
    return render("team/members.html", status, form=form,
                  memberships=team.list_members(rbac, ws, flt),
                  invitations=team.open_invitations(rbac, ws) if can("members.create") else [],
                  status_of=queries.assignment_status, can_invite=can("members.create"),
                  can_edit=can("members.edit"), confirm=ConfirmForm())


def _departments(rbac: Any, workspace_id: int) -> list[Any]:
    D = rbac.models.Department
    return list(rbac.db.session.scalars(sa.select(D).where(D.workspace_id == workspace_id)
                                        .order_by(D.name)))


# -- invitations ------------------------------------------------------------------------------


@bp.route("/members/invite", methods=["GET", "POST"])
@require_permission("members", "create")
def invite() -> Any:
    """Invite someone by email with one or more roles."""
    rbac, access = current_rbac, acting_access()
    form = InviteForm()
    # Every role is offered, as on the member page; the service refuses what the
    # inviter may not give (and says why) instead of the form hiding it.
    form.roles.choices = choices((r.id, r.name) for r in
                                 queries.workspace_roles(rbac, access.workspace_id))
    status, page_errors = 200, []
    if request.method == "POST":
        if form.validate_on_submit():
            chosen = [queries.role_in(rbac, access.workspace_id, rid) for rid in form.roles.data]
            outcome = attempt(lambda: team.invite(rbac, access, form.email.data or "",
                                                  [r for r in chosen if r]),
                              form, errors=page_errors)
            if outcome.ok:
                flash(f"Invitation sent to {form.email.data}.", "success")
                return redirect(url_for(".members"))
            status = outcome.status
        else:
            status = 400
    return render("team/invite.html", status, form=form, page_errors=page_errors)


def _invitation_or_404(invitation_id: int) -> Any:
    inv = team.invitation_in(current_rbac, acting_access().workspace_id, invitation_id)
    return inv if inv is not None else not_found()


def _invitation_action(invitation_id: int, action: Any, done: str) -> Any:
    """Run ``action(rbac, actor, invitation)`` for a confirmed POST; flash ``done``."""
    rbac = current_rbac
    inv = _invitation_or_404(invitation_id)
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".members"))
    if attempt(lambda: action(rbac, acting_access(), inv)).ok:
        flash(done.format(email=inv.email), "success")
    return redirect(url_for(".members"))


@bp.post("/invitations/<int:invitation_id>/resend")
@require_permission("members", "create")
def resend_invitation(invitation_id: int) -> Any:
    return _invitation_action(invitation_id, team.resend,
                              "A new invitation link was sent to {email}.")


@bp.post("/invitations/<int:invitation_id>/revoke")
@require_permission("members", "create")
def revoke_invitation(invitation_id: int) -> Any:
    return _invitation_action(invitation_id, team.revoke,
                              "The invitation of {email} was revoked.")


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Any:
    """Public page of an invitation link: show it, then accept (create the account or join)."""
    rbac = current_rbac
    try:
        inv = team.invitation_for_token(rbac, token)
    except team.InvalidInvitation as exc:
        return invitation_pages.error_page(rbac, token, exc)
    workspace = rbac.db.session.get(rbac.models.Workspace, inv.workspace_id)
    form = AcceptForm()
    status, page_errors = 200, []
    signed_in_as = signed_in_user()
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: team.accept(rbac, inv, user=signed_in_as,
                                                  name=form.name.data,
                                                  password=form.password.data),
                              form, errors=page_errors)
            if outcome.ok:
                membership = outcome.value
                joined = signed_in_as is not None and rbac.user_pk(signed_in_as) == membership.user_id
                if not joined and not sign_in(membership.user):  # the new account
                    flash(f"You joined {workspace.name}: sign in to continue.", "success")
                    return redirect("/")
                session[setting("RBAC_SESSION_KEY")] = membership.workspace_id
                flash(f"Welcome to {workspace.name}.", "success")
                return redirect("/")
            status = outcome.status
        else:
            status = 400
    return render("team/accept.html", status, form=form, invitation=inv, workspace=workspace,
                  signed_in_as=signed_in_as, needs_password=team.needs_password(inv),
                  page_errors=page_errors, **invitation_pages.page_context(rbac, inv, form))


# -- one member: status, department, team, reassignment ------------------------------------


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
        (d.id, d.name) for d in _departments(rbac, ws)])
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
                  page_errors=page_errors or [])


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


@bp.post("/members/<int:membership_id>/department")
@require_permission("members", "edit")
def member_department(membership_id: int) -> Any:
    rbac, access = current_rbac, acting_access()
    membership = membership_or_404(membership_id)
    form = MemberDepartmentForm()
    departments = _departments(rbac, access.workspace_id)
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
def remove_from_team(membership_id: int, member_id: int) -> Any:
    rbac, access = current_rbac, acting_access()
    manager = membership_or_404(membership_id)
    member = membership_or_404(member_id)
    if not ConfirmForm().validate_on_submit():
        return _member_page(manager, status=400, page_errors=["The form expired; try again."])
    return _change_member(manager,
                          lambda: team.unassign_from_manager(rbac, access, manager, member),
                          f"{manager.display_name} no longer manages {member.display_name}.")


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
    form = ReassignForm()
    form.to_user_id.choices = choices([("", "— choose —")] + [
        (m.user_id, m.display_name)
        for m in queries.workspace_memberships(rbac, access.workspace_id)
        if m.status == "active" and m.id != source.id])
    form.resources.choices = choices((r.name, r.label or r.name) for r in team.reassignable(rbac))
    status, page_errors, preview = 200, [], None
    if request.method == "POST":
        if form.validate_on_submit():
            resources = [only] if only else (form.resources.data or None)
            to_user_id = user_key(rbac, form.to_user_id.data)  # one of the choices
            args = (rbac, access, source.user_id, to_user_id, resources)
            applying = request.form.get("step") == "apply"
            step = team.reassign if applying else team.reassign_preview
            outcome = attempt(lambda: step(*args, ids=ids), commit=applying, errors=page_errors)
            if outcome.ok and applying:
                flash(f"{sum(outcome.value.values())} record(s) moved from "
                      f"{source.display_name}.", "success")
                return _back_to_member(source)
            preview, status = outcome.value, outcome.status
        else:
            status = 400
    return render("team/reassign.html", status, form=form, source=source, preview=preview,
                  page_errors=page_errors, only=only, ids=ids)


# -- departments --------------------------------------------------------------------------


@bp.route("/departments", methods=["GET", "POST"])
@require_permission("members", "view")
def departments() -> Any:
    """Departments with their members; create (members.edit)."""
    rbac, access = current_rbac, acting_access()
    form = DepartmentForm()
    status, page_errors = 200, []
    if request.method == "POST":
        if not can("members.edit"):
            return current_rbac.refuse(_refusal("You may not edit members."), 403)
        if form.validate_on_submit():
            outcome = attempt(lambda: team.create_department(rbac, access, form.name.data or ""),
                              form, fallback=form.name)
            if outcome.ok:
                flash(f"Department {outcome.value.name} created.", "success")
                return redirect(url_for(".departments"))
            status = outcome.status
        else:
            status = 400
    rows = [(d, team.department_members(rbac, d)) for d in _departments(rbac, access.workspace_id)]
    return render("team/departments.html", status, form=form, rows=rows, confirm=ConfirmForm(),
                  rename=DepartmentForm(formdata=None), can_edit=can("members.edit"),
                  page_errors=page_errors)


def _refusal(reason: str) -> Decision:
    return Decision(False, reason)


def _department_or_404(dept_id: int) -> Any:
    departments = _departments(current_rbac, acting_access().workspace_id)
    dept = next((d for d in departments if d.id == dept_id), None)
    return dept if dept is not None else not_found()


@bp.post("/departments/<int:dept_id>/rename")
@require_permission("members", "edit")
def rename_department(dept_id: int) -> Any:
    rbac = current_rbac
    dept = _department_or_404(dept_id)
    form = DepartmentForm()
    if form.validate_on_submit():
        if attempt(lambda: team.rename_department(rbac, acting_access(), dept,
                                                  form.name.data or "")).ok:
            flash(f"Department renamed to {dept.name}.", "success")
    else:
        flash("Enter a name.", "error")
    return redirect(url_for(".departments"))


@bp.post("/departments/<int:dept_id>/delete")
@require_permission("members", "edit")
def delete_department(dept_id: int) -> Any:
    rbac = current_rbac
    dept = _department_or_404(dept_id)
    name = dept.name
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".departments"))
    if not attempt(lambda: team.delete_department(rbac, acting_access(), dept)).ok:
        return redirect(url_for(".departments")), 400  # type: ignore[return-value]
    flash(f"Department {name} deleted.", "success")
    return redirect(url_for(".departments"))


# -- profile ----------------------------------------------------------------------------------


def _sign_in_again(user: Any) -> None:
    """Renew this browser's session after a password change.

    A host may end every session when a password changes (the demo rotates
    the alternative id its ``get_id()`` returns); signing in again stores the
    new id, so only the *other* sessions end, and keeps this browser's
    remember-me cookie if it had one.
    """
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    sign_in(user, remember=remember in request.cookies)


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    """Edit one's own name, password and notifications (not one's roles or status)."""
    rbac = current_rbac
    access = rbac.current_access()
    if access is None or not access.active:
        return rbac.refuse(_refusal("You are not an active member of this workspace."))
    membership = rbac.db.session.get(rbac.models.Membership, access.membership_id)
    user = membership.user
    form = ProfileForm(data={"name": getattr(user, "name", ""),
                             "notify_email": membership.notify_email})
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: team.update_profile(
                rbac, membership, name=form.name.data,
                notify_email=bool(form.notify_email.data),
                current_password=form.current_password.data,
                new_password=form.new_password.data), form, fallback=form.name)
            if outcome.ok:
                if form.new_password.data and rbac.user_pk(signed_in_user()) == membership.user_id:
                    _sign_in_again(user)
                flash("Your profile was saved.", "success")
                return redirect(url_for(".profile"))
            status = outcome.status
        else:
            status = 400
    return render("team/profile.html", status, form=form, membership=membership)
