"""The role page's "Users" tab (holders, their windows, assign and remove) and its caps,
and the template gallery of the role-create page.

Thin views: assigning and removing go through :func:`..roles.assign_role` and
:func:`..roles.remove_role` (escalation, Owner and Admin rules, segregation of
duties, approvals), caps through :func:`..quotas.set_cap`. Seeing the holders
needs ``roles.view`` and ``members.view``; changing them ``members.edit``
and a recent MFA check, as on a member's own page.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import flash, redirect, url_for
from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectField
from wtforms.fields import DateTimeLocalField
from wtforms.validators import DataRequired, NumberRange, Optional

from .. import queries, quotas, roles, team
from ..config import setting
from ..decorators import require_permission
from ..defaults import expand_grants
from ..inputs import MAX_ID
from ..pages import ConfirmForm, acting_access, can, not_found
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from . import role_matrix
from .blueprint import attempt, bp, render
from .forms import DATETIME_FORMATS, choices, optional_int


class RoleUserForm(FlaskForm):
    """Give the role to a member, optionally from/until a UTC date and time."""

    membership_id = SelectField("Member", coerce=optional_int, choices=[],
                                validators=[DataRequired(message="Choose a member.")])
    starts_at = DateTimeLocalField("From (UTC)", format=DATETIME_FORMATS, validators=[Optional()])
    expires_at = DateTimeLocalField("Until (UTC)", format=DATETIME_FORMATS, validators=[Optional()])


class CapForm(FlaskForm):
    """A record cap of the role on one resource (empty: no cap)."""

    resource = SelectField("Resource", choices=[], validators=[DataRequired()])
    max_records = IntegerField("At most (records per member; empty: no cap)",
                               validators=[Optional(), NumberRange(min=0, max=MAX_ID)])


def _role_or_404(role_id: int) -> Any:
    role = queries.role_in(current_rbac, acting_access().workspace_id, role_id)
    return role if role is not None else not_found()


def _forms(role: Any) -> tuple[RoleUserForm, CapForm]:
    rbac, access = current_rbac, acting_access()
    holding = {mr.membership_id for mr in role_holdings(role)}
    form = RoleUserForm()
    form.membership_id.choices = choices([("", "— choose a member —")] + [
        (m.id, m.display_name) for m in team.list_members(rbac, access.workspace_id, team.MemberFilter())
        if m.status != "inactive" and m.id not in holding])
    cap_form = CapForm()
    cap_form.resource.choices = choices(
        (r.name, r.label or r.name) for r in rbac.registry if r.is_model and r.owner_column)
    return form, cap_form


def role_holdings(role: Any) -> list[Any]:
    """The role's assignments (any window), by member name."""
    MemberRole = current_rbac.models.MemberRole
    rows = current_rbac.db.session.scalars(sa.select(MemberRole).where(MemberRole.role_id == role.id))
    return sorted(rows, key=lambda mr: (mr.membership.display_name.lower(), mr.id))


def _page(role: Any, *, form: RoleUserForm | None = None, cap_form: CapForm | None = None,
          status: int = 200, page_errors: list[str] | None = None) -> tuple[str, int]:
    fresh_form, fresh_caps = _forms(role)
    return render("role_users.html", status, role=role, holdings=role_holdings(role),
                  department_holders=team.department_holders(current_rbac, role),
                  status_of=queries.assignment_status, form=form or fresh_form,
                  cap_form=cap_form or fresh_caps, caps=quotas.caps_of(role),
                  confirm=ConfirmForm(), can_edit=can("members.edit"),
                  can_cap=can("roles.manage") and not roles.is_privileged(role),
                  page_errors=page_errors or [])


@bp.get("/roles/<int:role_id>/users")
@require_permission("roles", "view")
@require_permission("members", "view")
def role_users(role_id: int) -> Any:
    """Who holds the role, from when until when, and the role's record caps."""
    return _page(_role_or_404(role_id))


@bp.post("/roles/<int:role_id>/users")
@require_permission("members", "edit")
@require_recent_mfa
def role_assign(role_id: int) -> Any:
    """Give the role to a member (the same rules as on the member's page)."""
    rbac, access = current_rbac, acting_access()
    role = _role_or_404(role_id)
    form, _ = _forms(role)
    if not form.validate_on_submit():
        return _page(role, form=form, status=400)
    membership = queries.membership_in(rbac, access.workspace_id, form.membership_id.data)
    if membership is None:
        return not_found()
    page_errors: list[str] = []
    outcome = attempt(lambda: roles.assign_role(rbac, access, membership, role,
                                                starts_at=form.starts_at.data,
                                                expires_at=form.expires_at.data),
                      form, errors=page_errors)
    if not outcome.ok:
        return _page(role, form=form, status=outcome.status, page_errors=page_errors)
    flash(f"{membership.display_name} now holds {role.name}.", "success")
    return redirect(url_for(".role_users", role_id=role.id))


@bp.post("/roles/<int:role_id>/users/<int:member_role_id>/remove")
@require_permission("members", "edit")
@require_recent_mfa
def role_unassign(role_id: int, member_role_id: int) -> Any:
    """Take one assignment of the role away."""
    rbac, access = current_rbac, acting_access()
    role = _role_or_404(role_id)
    assignment = next((mr for mr in role_holdings(role) if mr.id == member_role_id), None)
    if assignment is None:
        return not_found()
    if not ConfirmForm().validate_on_submit():
        return _page(role, status=400, page_errors=["The form expired; try again."])
    name = assignment.membership.display_name
    page_errors: list[str] = []
    outcome = attempt(lambda: roles.remove_role(rbac, access, assignment), errors=page_errors)
    if not outcome.ok:
        return _page(role, status=outcome.status, page_errors=page_errors)
    flash(f"{name} no longer holds {role.name}.", "success")
    return redirect(url_for(".role_users", role_id=role.id))


@bp.post("/roles/<int:role_id>/caps")
@require_permission("roles", "manage")
@require_recent_mfa
def role_cap(role_id: int) -> Any:
    """Set or remove the role's cap on one resource."""
    rbac, access = current_rbac, acting_access()
    role = _role_or_404(role_id)
    _, cap_form = _forms(role)
    if not cap_form.validate_on_submit():
        return _page(role, cap_form=cap_form, status=400)
    page_errors: list[str] = []
    outcome = attempt(lambda: quotas.set_cap(rbac, access, role, cap_form.resource.data,
                                             cap_form.max_records.data),
                      cap_form, errors=page_errors)
    if not outcome.ok:
        return _page(role, cap_form=cap_form, status=outcome.status, page_errors=page_errors)
    flash(f"Caps of {role.name} saved.", "success")
    return redirect(url_for(".role_users", role_id=role.id))


def gallery() -> list[dict[str, Any]]:
    """The templates the role-create page offers: the workspace's built-in set, less the Owner."""
    return [t for t in setting("RBAC_ROLE_TEMPLATES") if not t.get("is_owner")]


def template_form_data(key: str) -> tuple[dict[str, Any], Any] | None:
    """Initial values of the role form from the template ``key`` (None: no such template)."""
    rbac = current_rbac
    template = next((t for t in gallery() if t["key"] == key), None)
    if template is None:
        return None
    specs = roles.parse_grants(rbac, [
        {"resource": r, "action": a, "scope": s, "condition": c}
        for r, a, s, c in expand_grants(rbac.registry, template)])
    return role_matrix.form_data(rbac, specs, {}, name=f"{template['name']} (custom)",
                                 description=template.get("description", ""))
