"""The departments page: list with members, create, rename, delete (``members.edit`` to change)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from .. import team
from ..decorators import require_permission
from ..pages import ConfirmForm, acting_access, can, not_found
from ..policy import Decision
from ..proxies import current_rbac
from .blueprint import attempt, bp, render
from .member_forms import DepartmentForm


@bp.route("/departments", methods=["GET", "POST"])
@require_permission("members", "view")
def departments() -> Any:
    """Departments with their members; create (members.edit)."""
    rbac, access = current_rbac, acting_access()
    form = DepartmentForm()
    status, page_errors = 200, []
    if request.method == "POST":
        if not can("members.edit"):
            return current_rbac.refuse(Decision(False, "You may not edit members."), 403)
        if form.validate_on_submit():
            outcome = attempt(lambda: team.create_department(rbac, access, form.name.data or ""),
                              form, fallback=form.name)
            if outcome.ok:
                flash(f"Department {outcome.value.name} created.", "success")
                return redirect(url_for(".departments"))
            status = outcome.status
        else:
            status = 400
    rows = [(d, team.department_members(rbac, d))
            for d in team.workspace_departments(rbac, access.workspace_id)]
    return render("team/departments.html", status, form=form, rows=rows, confirm=ConfirmForm(),
                  rename=DepartmentForm(formdata=None), can_edit=can("members.edit"),
                  page_errors=page_errors)


def _department_or_404(dept_id: int) -> Any:
    departments = team.workspace_departments(current_rbac, acting_access().workspace_id)
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
