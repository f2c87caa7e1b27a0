"""Pages for conditional and group roles.

- ``/roles/<id>/condition``: when a role is in force for all its holders
  (``roles.edit``; Owner and Admin take none);
- ``/departments/<id>/roles``: the roles a department gives its members
  (``members.view`` to read, ``members.edit`` to give or take, with a recent
  MFA check as for any role change).

Every change goes through :mod:`..roles.groups`, which holds the rules.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectField
from wtforms.validators import DataRequired

from .. import queries, roles, team
from ..decorators import require_permission
from ..pages import ConfirmForm, acting_access, can, not_found
from ..proxies import current_rbac
from ..role_conditions import describe, stored
from ..security.stepup import require_recent_mfa
from .blueprint import attempt, bp, render
from .condition_fields import ConditionFields, condition_data, fill
from .forms import choices, optional_int


class RoleConditionForm(ConditionFields, FlaskForm):
    """When a role is in force."""


class DepartmentRoleForm(ConditionFields, FlaskForm):
    """A role to give a department, and when it is in force."""

    role_id = SelectField("Role", coerce=optional_int, choices=[],
                          validators=[DataRequired(message="Choose a role.")])


def _zone() -> str:
    ws = current_rbac.db.session.get(current_rbac.models.Workspace, acting_access().workspace_id)
    return ws.timezone if ws is not None else "UTC"


def condition_text(raw: Any) -> str:
    """A stored condition in words ("" for none), in the workspace's time zone."""
    cond = stored(raw)
    return describe(cond, _zone()) if cond else ""


@bp.route("/roles/<int:role_id>/condition", methods=["GET", "POST"])
@require_permission("roles", "edit")
@require_recent_mfa
def role_condition(role_id: int) -> Any:
    """Show and change when a role is in force for all its holders."""
    rbac, access = current_rbac, acting_access()
    role = queries.role_in(rbac, access.workspace_id, role_id)
    if role is None:
        return not_found()
    form = RoleConditionForm()
    status, page_errors = 200, []
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: roles.set_role_condition(rbac, access, role,
                                                               condition_data(form)),
                              form, errors=page_errors)
            if outcome.ok:
                flash(f"{role.name}: condition saved.", "success")
                return redirect(url_for(".role_condition", role_id=role.id))
            status = outcome.status
        else:
            status = 400
    else:
        fill(form, role.access_condition)
    return render("role_condition.html", status, role=role, form=form,
                  current=condition_text(role.access_condition), page_errors=page_errors,
                  editable=not roles.has_full_access(role))


def _department_or_404(dept_id: int) -> Any:
    departments = team.workspace_departments(current_rbac, acting_access().workspace_id)
    return next((d for d in departments if d.id == dept_id), None)


def _department_form() -> DepartmentRoleForm:
    form = DepartmentRoleForm()
    form.role_id.choices = choices([("", "— choose a role —")] + [
        (r.id, r.name) for r in queries.workspace_roles(current_rbac, acting_access().workspace_id)
        if not r.is_owner])
    return form


def _department_page(dept: Any, form: DepartmentRoleForm, status: int = 200,
                     page_errors: list[str] | None = None) -> Any:
    rbac = current_rbac
    rows = [(row, condition_text(row.access_condition))
            for row in roles.department_roles(rbac, dept)]
    return render("team/department_roles.html", status, dept=dept, rows=rows, form=form,
                  members=team.department_members(rbac, dept), confirm=ConfirmForm(),
                  can_edit=can("members.edit"), page_errors=page_errors or [])


@bp.get("/departments/<int:dept_id>/roles")
@require_permission("members", "view")
def department_roles(dept_id: int) -> Any:
    """The roles a department gives its members while they belong to it."""
    dept = _department_or_404(dept_id)
    if dept is None:
        return not_found()
    return _department_page(dept, _department_form())


@bp.post("/departments/<int:dept_id>/roles")
@require_permission("members", "edit")
@require_recent_mfa
def give_department_role(dept_id: int) -> Any:
    """Give a role to a department (escalation rules as for one member)."""
    rbac, access = current_rbac, acting_access()
    dept = _department_or_404(dept_id)
    if dept is None:
        return not_found()
    form = _department_form()
    if not form.validate_on_submit():
        return _department_page(dept, form, 400)
    role = queries.role_in(rbac, access.workspace_id, form.role_id.data)
    page_errors: list[str] = []
    outcome = attempt(lambda: roles.give_department_role(rbac, access, dept, role,
                                                         condition=condition_data(form)),
                      form, errors=page_errors)
    if not outcome.ok:
        return _department_page(dept, form, outcome.status, page_errors)
    flash(f"Members of {dept.name} now hold {role.name}.", "success")
    return redirect(url_for(".department_roles", dept_id=dept.id))


@bp.post("/departments/<int:dept_id>/roles/<int:role_id>/remove")
@require_permission("members", "edit")
@require_recent_mfa
def remove_department_role(dept_id: int, role_id: int) -> Any:
    """Take a role away from a department; its members lose it at once."""
    rbac, access = current_rbac, acting_access()
    dept = _department_or_404(dept_id)
    row = next((r for r in roles.department_roles(rbac, dept)
                if r.role_id == role_id), None) if dept is not None else None
    if row is None:
        return not_found()
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".department_roles", dept_id=dept.id))
    page_errors: list[str] = []
    name = row.role.name
    outcome = attempt(lambda: roles.remove_department_role(rbac, access, row),
                      errors=page_errors)
    if not outcome.ok:
        return _department_page(dept, _department_form(), outcome.status, page_errors)
    flash(f"{dept.name} no longer gives {name}.", "success")
    return redirect(url_for(".department_roles", dept_id=dept.id))
