"""The role pages: list, the matrix editor (preview, then save), clone, delete, compare.

Thin views over :mod:`..roles` on the settings blueprint. The matrix is a
plain HTML form (see :mod:`.forms`); the service names a refused cell by its
index in the submitted grants, and :func:`_place_error` puts the message back
on that cell. Saving goes through :func:`.blueprint.attempt`; a preview runs
the change in a SAVEPOINT that is always rolled back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import flash, redirect, request, url_for

from .. import conditions, queries, roles, team
from ..decorators import require_permission
from ..errors import UnknownResource
from ..pages import acting_access, can, not_found
from ..policy import Decision
from ..proxies import current_rbac
from ..roles.field_rules import copied_field_rules, field_labels
from ..security.stepup import require_recent_mfa
from . import condition_form, role_matrix, role_user_views
from .blueprint import Refusal, add_error, attempt, bp, render
from .forms import (
    CompareForm,
    DeleteRoleForm,
    GrantingForm,
    RoleForm,
    cell_field,
    choices,
    role_form_class,
    rule_field,
)

_PERMISSION_INDEX = re.compile(r"^permissions\[(\d+)\](?:\.(\w+))?$")


def _role_or_404(role_id: int) -> Any:
    role = queries.role_in(current_rbac, acting_access().workspace_id, role_id)
    return role if role is not None else not_found()


def _dry_run(change: Callable[[], Any]) -> None:
    """Run ``change`` in a SAVEPOINT that is always rolled back (to surface refusals)."""
    session = current_rbac.db.session
    nested = session.begin_nested()
    try:
        change()
        session.flush()
    finally:
        nested.rollback()


@bp.get("/roles", endpoint="roles")
@require_permission("roles", "view")
def roles_list() -> Any:
    """Every role of the workspace: its summary, its holders and the actions allowed.

    A role the member may not edit (Owner and Admin, or one granting more
    than they hold) offers "View" instead of "Edit": the editor shows it
    without saving, and it answers only members with ``roles.edit``, so
    nobody else gets the link. A deletion asks first, with the counts of
    holders and inheriting roles computed here.
    """
    rbac, access = current_rbac, acting_access()
    counts = queries.member_counts(rbac, access.workspace_id)
    inheriting = queries.inheriting_counts(rbac, access.workspace_id)
    can_edit, can_delete, can_create = (can("roles.edit"), can("roles.delete"),
                                        can("roles.create"))
    rows = []
    for role in queries.workspace_roles(rbac, access.workspace_id):
        fixed = roles.has_full_access(role)
        covered = queries.covers_role(access, role)
        edit = can_edit and covered and not fixed
        rows.append({"role": role, "members": counts.get(role.id, 0),
                     "summary": queries.role_summary(rbac, role),
                     "edit": edit, "view": can_edit and not edit,
                     "delete": can_delete and covered and not fixed,
                     "clone": can_create and covered and not role.is_owner,
                     "question": queries.delete_question(
                         role.name, counts.get(role.id, 0), inheriting.get(role.id, 0))})
    return render("roles.html", rows=rows, can_create=can_create,
                  can_see_members=can("members.view"), delete_form=DeleteRoleForm())


def _place_error(form: RoleForm, exc: Refusal, sources: list[tuple[str, str, str]],
                 page_errors: list[str]) -> None:
    """Show a service's refusal at the matrix cell or input it names (else at the top).

    The service names a cell by its index in the submitted grants
    (``permissions[3].condition``); ``sources`` maps the index back to the
    cell. The builder checks conditions before the service sees them, so a
    condition the service still refuses gets a plain sentence rather than
    the service's wording of a clause.
    """
    field = exc.field or ""
    match = _PERMISSION_INDEX.match(field)
    if match and int(match.group(1)) < len(sources):
        resource, action, effect = sources[int(match.group(1))]
        kind = ("cond" if match.group(2) == "condition" else
                "deny" if effect == "deny" else "scope")
        target = form._fields.get(cell_field(kind, resource, action))
        if target is not None:
            message = ("This condition cannot be saved; check its values." if kind == "cond"
                       else exc.message)
            add_error(target, message)
            where = role_matrix.cell_label(current_rbac.registry.get(resource), action)
            page_errors.append(f"{where}: {message}")
            return
    if field in ("name", "description", "parent_id"):
        add_error(form[field], exc.message)
    else:
        page_errors.append(exc.message)


def _role_page(form: RoleForm, role: Any, cells: role_matrix.Cells, *, status: int = 200,
               page_errors: list[str] | None = None, preview: Any = None,
               new_grants: list[roles.GrantSpec] | None = None,
               clone_of: Any = None, readonly: bool = False,
               gallery: list[dict[str, Any]] | None = None) -> tuple[str, int]:
    """Render the role form, with a preview (``preview`` for an existing role,
    ``new_grants`` for a new one) when the form was submitted for one.

    ``readonly`` shows a built-in privileged role without a control that changes it;
    ``gallery`` lists the templates a new role may start from.
    """
    rbac = current_rbac
    parent = queries.role_in(rbac, acting_access().workspace_id, form.parent_id.data)
    inherited = roles.matrix(rbac, parent) if parent is not None else {}
    modules = queries.ordered_modules(rbac.registry)
    fields = role_matrix.resource_fields(rbac)
    return render("role_form.html", status, form=form, role=role, registry=rbac.registry,
                  modules=modules, columns=queries.module_columns(modules), inherited=inherited,
                  admin_module=queries.ADMIN_MODULE, page_errors=page_errors or [],
                  preview=preview, new_grants=new_grants,
                  field_rules=role_matrix.field_rules(rbac, form) if new_grants is not None else {},
                  clone_of=clone_of, readonly=readonly, cells=cells, fields=fields,
                  gallery=gallery or [],
                  blank_row=condition_form.ClauseRow(),
                  fields_json={name: condition_form.field_json(f) for name, f in fields.items()},
                  labels={res.name: field_labels(res) for res in rbac.registry},
                  cell_field=cell_field, rule_field=rule_field, scope_label=queries.scope_label,
                  operators=condition_form.operators, input_attrs=condition_form.input_attrs,
                  restrictable_fields=queries.restrictable_fields, describe=conditions.describe)


def _role_form(role: Any, data: dict[str, Any] | None = None) -> RoleForm:
    """The role form with its parent choices (any role but Owner and the role itself).

    ``data`` gives the initial values of a GET; a POST reads the submitted form.
    """
    rbac = current_rbac
    form = role_form_class(rbac.registry)(data=data)
    form.parent_id.choices = choices([("", "— none —")] + [
        (r.id, r.name) for r in queries.workspace_roles(rbac, acting_access().workspace_id)
        if not r.is_owner and (role is None or r.id != role.id)])
    return form


def _save_role(form: RoleForm, role: Any, clone_of: Any = None) -> Any:
    """Preview or save the submitted role form (``role`` None: a new role)."""
    rbac, access = current_rbac, acting_access()
    cells = role_matrix.submitted_cells(rbac, request.form)
    shortcut = request.form.get("shortcut")
    if shortcut:
        role_matrix.apply_shortcut(rbac, form, cells, shortcut)
        return _role_page(form, role, cells, clone_of=clone_of)
    valid = form.validate_on_submit()
    kept = {(s.resource, s.action): s for s in roles.specs_of(role)
            if s.effect == "deny"} if role is not None else {}
    items, sources, ok = role_matrix.grant_items(rbac, form, cells, kept)
    if not valid or not ok:
        return _role_page(form, role, cells, status=400, clone_of=clone_of, page_errors=[
            "Some cells need fixing; see the marked inputs."] if not ok else [])
    page_errors: list[str] = []
    saving = request.form.get("step") == "save"

    def run() -> Any:
        """Save the role, or preview the change: who gains or loses what."""
        grants = roles.parse_grants(rbac, items)
        parent = queries.role_in(rbac, access.workspace_id, form.parent_id.data)
        rules = role_matrix.field_rules(rbac, form)
        name, description = form.name.data or "", form.description.data or ""

        sign_in, api_access = not form.no_sign_in.data, not form.no_api.data

        def apply() -> Any:
            if role is None:
                return roles.create_role(rbac, access, name=name, description=description,
                                         grants=grants, parent=parent, field_rules=rules,
                                         sign_in=sign_in, api_access=api_access)
            return roles.update_role(rbac, access, role, name=name, description=description,
                                     grants=grants, parent=parent, field_rules=rules,
                                     sign_in=sign_in, api_access=api_access)

        if saving:
            return apply()
        if role is None:
            _dry_run(apply)
            return grants
        return roles.preview(rbac, role, apply)

    outcome = attempt(run, commit=saving,
                      place=lambda exc: _place_error(form, exc, sources, page_errors))
    if not outcome.ok:
        return _role_page(form, role, cells, status=outcome.status, page_errors=page_errors,
                          clone_of=clone_of)
    if saving:
        flash(f"Role {outcome.value.name} saved.", "success")
        return redirect(url_for(".roles"))
    if role is None:
        return _role_page(form, role, cells, new_grants=outcome.value, clone_of=clone_of)
    return _role_page(form, role, cells, preview=outcome.value)


@bp.route("/roles/new", methods=["GET", "POST"])
@require_permission("roles", "create")
@require_recent_mfa
def new_role() -> Any:
    """Create a role from scratch (the page offers the template gallery), from a copy of
    ``?clone=<role_id>``, or from the built-in template ``?template=<key>``."""
    rbac = current_rbac
    source = None
    clone_id = request.args.get("clone", type=int)
    if clone_id is not None:
        source = _role_or_404(clone_id)
    form = _role_form(None)
    if request.method == "POST":
        return _save_role(form, None, clone_of=source)
    if source is not None:
        if source.is_owner:
            return _role_page(form, None, {}, status=400, page_errors=[
                "The Owner role cannot be cloned; clone Admin instead."])
        data, cells = role_matrix.form_data(
            rbac, roles.merge_specs(roles.effective_specs(source)),
            copied_field_rules(source), name=f"{source.name} (copy)",
            description=source.description, no_sign_in=not source.sign_in,
            no_api=not source.api_access)
        return _role_page(_role_form(None, data), None, cells, clone_of=source)
    template = request.args.get("template")
    if template:
        started = role_user_views.template_form_data(template)
        if started is None:
            return not_found()
        return _role_page(_role_form(None, started[0]), None, started[1])
    return _role_page(form, None, {}, gallery=role_user_views.gallery())


@bp.route("/roles/<int:role_id>/edit", methods=["GET", "POST"])
@require_permission("roles", "edit")
@require_recent_mfa
def edit_role(role_id: int) -> Any:
    """Rename, describe, re-parent and change the matrix of a role (preview first).

    Owner and Admin keep their full access: their page shows it read-only,
    and a submitted change is refused.
    """
    rbac = current_rbac
    role = _role_or_404(role_id)
    privileged = roles.has_full_access(role)
    if privileged and request.method == "POST":
        return rbac.refuse(Decision(
            False, f"The {role.name} role always has full access; it cannot be edited."), 403)
    if request.method == "POST":
        return _save_role(_role_form(role), role)
    base = {"name": role.name, "description": role.description, "parent_id": role.parent_id,
            "no_sign_in": not role.sign_in, "no_api": not role.api_access}
    if role.is_owner:
        data, cells = role_matrix.owner_data(rbac, **base), {}
    else:
        data, cells = role_matrix.form_data(rbac, roles.specs_of(role),
                                            queries.field_rules_of(role), **base)
    return _role_page(_role_form(role, data), role, cells, readonly=privileged)


@bp.route("/roles/<int:role_id>/delete", methods=["GET", "POST"])
@require_permission("roles", "delete")
@require_recent_mfa
def delete_role(role_id: int) -> Any:
    """Confirm a deletion, offering to move the role's members to another role."""
    rbac, access = current_rbac, acting_access()
    role = _role_or_404(role_id)
    form = DeleteRoleForm()
    form.move_to.choices = choices([("", "— nobody (members keep their other roles) —")] + [
        (r.id, r.name) for r in queries.workspace_roles(rbac, access.workspace_id)
        if r.id != role.id])
    holders = roles.holders(rbac, role)
    # Members holding it directly or through a department lose it.
    holding = queries.member_counts(rbac, access.workspace_id).get(role.id, 0)
    inheriting = queries.inheriting_counts(rbac, access.workspace_id).get(role.id, 0)
    question = queries.delete_question(role.name, holding, inheriting)
    consequences = queries.delete_consequences(holding, inheriting)
    page_errors: list[str] = []
    status = 200
    if form.validate_on_submit():
        move_to = queries.role_in(rbac, access.workspace_id, form.move_to.data)
        name = role.name
        outcome = attempt(lambda: roles.delete_role(rbac, access, role, move_to=move_to), form,
                          fallback=form.move_to, errors=page_errors)
        if outcome.ok:
            flash(f"Role {name} deleted" + (f"; its members now hold {move_to.name}."
                                            if move_to is not None else "."), "success")
            return redirect(url_for(".roles"))
        status = outcome.status
    elif request.method == "POST":
        status = 400
    stranded = {m.id for m in holders if not roles.assignments_in_force(m, excluding_role=role.id)}
    return render("role_delete.html", status, role=role, form=form, holders=holders,
                  department_holders=team.department_holders(rbac, role),
                  stranded=stranded, inheriting=inheriting, question=question,
                  consequences=consequences,
                  page_errors=page_errors)


@bp.get("/roles/compare")
@require_permission("roles", "view")
def compare() -> Any:
    """Roles side by side (differences highlighted) and "which roles grant X?"."""
    rbac, access = current_rbac, acting_access()
    all_roles = queries.workspace_roles(rbac, access.workspace_id)
    form = CompareForm(formdata=request.args if "ids" in request.args else None)
    form.ids.choices = choices((r.id, r.name) for r in all_roles)
    granting_form = GrantingForm(formdata=request.args if "permission" in request.args else None)
    status = 200
    rows, chosen, granting = None, [], None
    if "ids" in request.args:
        if form.validate():
            chosen = [r for r in all_roles if r.id in set(form.ids.data or [])]
            if len(chosen) < 2:
                add_error(form.ids, "Pick at least two roles to compare.")
                status = 400
            else:
                rows = roles.compare(rbac, chosen, (form.filter.data or "").strip())
        else:
            status = 400
    if "permission" in request.args:
        if granting_form.validate():
            text = (granting_form.permission.data or "").strip()
            try:
                granting = roles.roles_granting(rbac, access.workspace_id, text)
            except UnknownResource as exc:
                add_error(granting_form.permission, f"{exc} (write resource.action)")
                status = 400
        else:
            status = 400
    return render("compare.html", status, form=form, granting_form=granting_form, rows=rows,
                  chosen=chosen, granting=granting)
