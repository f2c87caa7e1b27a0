"""The team pages: members list, invitations, member lifecycle, departments, profile.

Thin views over :mod:`..team` on the settings blueprint, in the style of
:mod:`.views`: the service refuses with PermissionDenied (403) or
ValidationError (400); the view rolls back and shows the message; a change
that succeeds is committed at once. Every state-changing form is a
Flask-WTF form, so it carries a CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import current_app, flash, redirect, request, session, url_for
from flask_login import current_user, login_required, login_user
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
from ..decorators import require_permission
from ..errors import PermissionDenied, ValidationError
from ..models import MEMBER_STATUSES
from ..pages import ConfirmForm
from ..policy import Decision
from ..queries import get_rbac
from .forms import choices, optional_int
from .views import (
    _access,
    _add_error,
    _can,
    _commit,
    _membership_or_404,
    _not_found,
    _render,
    _rollback,
    bp,
)

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
    to_user_id = SelectField("New owner", coerce=optional_int, choices=[],
                             validators=[DataRequired(message="Choose the new owner.")])
    resources = SelectMultipleField("Records", choices=[],
                                    description="None chosen: every kind of record.")


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    notify_email = BooleanField("Email me notifications")
    current_password = PasswordField("Current password", validators=[Optional()])
    new_password = PasswordField("New password", validators=[Optional(), Length(max=200)])


# -- helpers -------------------------------------------------------------------------------


def _error_status(exc: Exception) -> int:
    return exc.status if isinstance(exc, ValidationError) else 403


def _back_to_member(membership: Any) -> Any:
    return redirect(url_for(".team_member", membership_id=membership.id))


# -- members list ------------------------------------------------------------------------


@bp.get("/members", endpoint="members")
@require_permission("members", "view")
def members_page() -> Any:
    """Members with roles, department, status and last activity; filter and search."""
    rbac, access = get_rbac(), _access()
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
    return _render("team/members.html", status, form=form,
                   memberships=team.list_members(rbac, ws, flt),
                   invitations=team.open_invitations(rbac, ws) if _can("members.create") else [],
                   status_of=queries.assignment_status, can_invite=_can("members.create"),
                   can_edit=_can("members.edit"), confirm=ConfirmForm())


def _departments(rbac: Any, workspace_id: int) -> list[Any]:
    D = rbac.models.Department
    return list(rbac.db.session.scalars(sa.select(D).where(D.workspace_id == workspace_id)
                                        .order_by(D.name)))


# -- invitations ------------------------------------------------------------------------------


@bp.route("/members/invite", methods=["GET", "POST"])
@require_permission("members", "create")
def invite() -> Any:
    """Invite someone by email with one or more roles."""
    rbac, access = get_rbac(), _access()
    form = InviteForm()
    # Every role is offered, as on the member page; the service refuses what the
    # inviter may not give (and says why) instead of the form hiding it.
    form.roles.choices = choices((r.id, r.name) for r in
                                 queries.workspace_roles(rbac, access.workspace_id))
    status, page_errors = 200, []
    if request.method == "POST":
        if form.validate_on_submit():
            chosen = [queries.role_in(rbac, access.workspace_id, rid) for rid in form.roles.data]
            try:
                team.invite(rbac, access, form.email.data or "", [r for r in chosen if r])
                _commit()
                flash(f"Invitation sent to {form.email.data}.", "success")
                return redirect(url_for(".members"))
            except (ValidationError, PermissionDenied) as exc:
                _rollback()
                target = form._fields.get(getattr(exc, "field", None) or "")
                if target is not None:
                    _add_error(target, exc.message)
                else:
                    page_errors.append(exc.message)
                status = _error_status(exc)
        else:
            status = 400
    return _render("team/invite.html", status, form=form, page_errors=page_errors)


def _invitation_or_404(invitation_id: int) -> Any:
    inv = team.invitation_in(get_rbac(), _access().workspace_id, invitation_id)
    return inv if inv is not None else _not_found()


def _invitation_action(invitation_id: int, action: Any, done: str) -> Any:
    """Run ``action(rbac, actor, invitation)`` for a confirmed POST; flash ``done``."""
    rbac = get_rbac()
    inv = _invitation_or_404(invitation_id)
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".members"))
    try:
        action(rbac, _access(), inv)
        _commit()
        flash(done.format(email=inv.email), "success")
    except (ValidationError, PermissionDenied) as exc:
        _rollback()
        flash(exc.message, "error")
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
    rbac = get_rbac()
    try:
        inv = team.invitation_for_token(rbac, token)
    except team.InvalidInvitation as exc:
        return _render("team/invitation_error.html", exc.status, message=exc.message)
    workspace = rbac.db.session.get(rbac.models.Workspace, inv.workspace_id)
    form = AcceptForm()
    status, page_errors = 200, []
    signed_in_as = current_user if current_user.is_authenticated else None
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                membership = team.accept(rbac, inv, user=signed_in_as, name=form.name.data,
                                         password=form.password.data)
                _commit()
            except (ValidationError, PermissionDenied) as exc:
                _rollback()
                target = form._fields.get(getattr(exc, "field", None) or "")
                if target is not None:
                    _add_error(target, exc.message)
                else:
                    page_errors.append(exc.message)
                status = _error_status(exc)
            else:
                if signed_in_as is None or rbac.user_pk(signed_in_as) != membership.user_id:
                    login_user(membership.user)  # the new account, not whoever was signed in
                session[current_app.config["RBAC_SESSION_KEY"]] = membership.workspace_id
                flash(f"Welcome to {workspace.name}.", "success")
                return redirect("/")
        else:
            status = 400
    return _render("team/accept.html", status, form=form, invitation=inv, workspace=workspace,
                   signed_in_as=signed_in_as, needs_password=team.needs_password(inv),
                   page_errors=page_errors)


# -- one member: status, department, team, reassignment ------------------------------------


def _member_page(membership: Any, *, status: int = 200, page_errors: list[str] | None = None,
                 dept_form: MemberDepartmentForm | None = None,
                 team_form: TeamForm | None = None) -> Any:
    rbac, access = get_rbac(), _access()
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
    return _render("team/member.html", status, membership=membership, assigned=assigned,
                   dept_form=dept_form, team_form=team_form, confirm=ConfirmForm(),
                   can_edit=_can("members.edit"), is_me=membership.id == access.membership_id,
                   page_errors=page_errors or [])


@bp.get("/members/<int:membership_id>")
@require_permission("members", "view")
def team_member(membership_id: int) -> Any:
    """A member's status, department and assigned members, with the actions on them."""
    return _member_page(_membership_or_404(membership_id))


def _change_member(membership: Any, change: Callable[[], Any], done: str) -> Any:
    """Run ``change`` and commit, then back to the member's page with ``done`` flashed;
    a refusal rolls back and shows the member's page with the message (403 or 400)."""
    try:
        change()
        _commit()
    except (ValidationError, PermissionDenied) as exc:
        _rollback()
        return _member_page(membership, status=_error_status(exc), page_errors=[exc.message])
    flash(done, "success")
    return _back_to_member(membership)


def _member_action(membership_id: int, action: Any, done: str) -> Any:
    rbac = get_rbac()
    membership = _membership_or_404(membership_id)
    if not ConfirmForm().validate_on_submit():
        return _member_page(membership, status=400, page_errors=["The form expired; try again."])
    return _change_member(membership, lambda: action(rbac, _access(), membership),
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
    rbac, access = get_rbac(), _access()
    membership = _membership_or_404(membership_id)
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
    rbac, access = get_rbac(), _access()
    manager = _membership_or_404(membership_id)
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
    rbac, access = get_rbac(), _access()
    manager = _membership_or_404(membership_id)
    member = _membership_or_404(member_id)
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
    rbac, access = get_rbac(), _access()
    source = _membership_or_404(membership_id)
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
            args = (rbac, access, source.user_id, form.to_user_id.data, resources)
            try:
                if request.form.get("step") == "apply":
                    counts = team.reassign(*args, ids=ids)
                    _commit()
                    flash(f"{sum(counts.values())} record(s) moved from "
                          f"{source.display_name}.", "success")
                    return _back_to_member(source)
                preview = team.reassign_preview(*args, ids=ids)
            except (ValidationError, PermissionDenied) as exc:
                _rollback()
                page_errors.append(exc.message)
                status = _error_status(exc)
        else:
            status = 400
    return _render("team/reassign.html", status, form=form, source=source, preview=preview,
                   page_errors=page_errors, only=only, ids=ids)


# -- departments --------------------------------------------------------------------------


@bp.route("/departments", methods=["GET", "POST"])
@require_permission("members", "view")
def departments() -> Any:
    """Departments with their members; create (members.edit)."""
    rbac, access = get_rbac(), _access()
    form = DepartmentForm()
    status, page_errors = 200, []
    if request.method == "POST":
        if not _can("members.edit"):
            return get_rbac().refuse(_refusal("You may not edit members."), 403)
        if form.validate_on_submit():
            try:
                dept = team.create_department(rbac, access, form.name.data or "")
                _commit()
                flash(f"Department {dept.name} created.", "success")
                return redirect(url_for(".departments"))
            except (ValidationError, PermissionDenied) as exc:
                _rollback()
                _add_error(form.name, exc.message)
                status = _error_status(exc)
        else:
            status = 400
    rows = [(d, team.department_members(rbac, d)) for d in _departments(rbac, access.workspace_id)]
    return _render("team/departments.html", status, form=form, rows=rows, confirm=ConfirmForm(),
                   rename=DepartmentForm(formdata=None), can_edit=_can("members.edit"),
                   page_errors=page_errors)


def _refusal(reason: str) -> Decision:
    return Decision(False, reason)


def _department_or_404(dept_id: int) -> Any:
    dept = next((d for d in _departments(get_rbac(), _access().workspace_id) if d.id == dept_id),
                None)
    return dept if dept is not None else _not_found()


@bp.post("/departments/<int:dept_id>/rename")
@require_permission("members", "edit")
def rename_department(dept_id: int) -> Any:
    rbac = get_rbac()
    dept = _department_or_404(dept_id)
    form = DepartmentForm()
    if form.validate_on_submit():
        try:
            team.rename_department(rbac, _access(), dept, form.name.data or "")
            _commit()
            flash(f"Department renamed to {dept.name}.", "success")
        except (ValidationError, PermissionDenied) as exc:
            _rollback()
            flash(exc.message, "error")
    else:
        flash("Enter a name.", "error")
    return redirect(url_for(".departments"))


@bp.post("/departments/<int:dept_id>/delete")
@require_permission("members", "edit")
def delete_department(dept_id: int) -> Any:
    rbac = get_rbac()
    dept = _department_or_404(dept_id)
    name = dept.name
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".departments"))
    try:
        team.delete_department(rbac, _access(), dept)
        _commit()
        flash(f"Department {name} deleted.", "success")
    except (ValidationError, PermissionDenied) as exc:
        _rollback()
        flash(exc.message, "error")
        return redirect(url_for(".departments")), 400  # type: ignore[return-value]
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
    login_user(user, remember=remember in request.cookies)


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    """Edit one's own name, password and notifications (not one's roles or status)."""
    rbac = get_rbac()
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
            try:
                team.update_profile(rbac, membership, name=form.name.data,
                                    notify_email=bool(form.notify_email.data),
                                    current_password=form.current_password.data,
                                    new_password=form.new_password.data)
                _commit()
                if form.new_password.data and rbac.user_pk(current_user) == membership.user_id:
                    _sign_in_again(user)
                flash("Your profile was saved.", "success")
                return redirect(url_for(".profile"))
            except ValidationError as exc:
                _rollback()
                _add_error(form._fields.get(exc.field or "") or form.name, exc.message)
                status = 400
        else:
            status = 400
    return _render("team/profile.html", status, form=form, membership=membership)
