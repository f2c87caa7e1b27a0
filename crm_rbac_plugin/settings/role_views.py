"""The role pages: list, the matrix editor (preview, then save), clone, delete, compare.

Thin views over :mod:`..roles` on the settings blueprint. The matrix is a
plain HTML form (see :mod:`.forms`); the service names a refused cell by its
index in the submitted grants, and :func:`_place_error` puts the message back
on that cell. Saving goes through :func:`.blueprint.attempt`; a preview runs
the change in a SAVEPOINT that is always rolled back.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import flash, redirect, request, url_for

from .. import conditions, queries, roles
from ..decorators import require_permission
from ..errors import UnknownResource
from ..pages import acting_access, can, not_found
from ..policy import Decision
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from .blueprint import Refusal, add_error, attempt, bp, render
from .forms import (
    CompareForm,
    DeleteRoleForm,
    GrantingForm,
    RoleForm,
    cell_field,
    choices,
    has_scopes,
    role_form_class,
    rule_field,
)

#: Shortcut buttons of the matrix: ``<module or *>:<level>``.
SHORTCUT_LEVELS = ("none", "view", "full")
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
    """Every role of the workspace with its member count and the actions allowed."""
    rbac, access = current_rbac, acting_access()
    counts = queries.member_counts(rbac, access.workspace_id)
    can_edit, can_delete, can_create = (can("roles.edit"), can("roles.delete"),
                                        can("roles.create"))
    rows = []
    for role in queries.workspace_roles(rbac, access.workspace_id):
        fixed = roles.is_privileged(role)
        covered = queries.covers_role(access, role)
        rows.append({"role": role, "members": counts.get(role.id, 0),
                     "edit": can_edit and covered and not fixed,
                     "delete": can_delete and covered and not fixed,
                     "clone": can_create and covered and not role.is_owner})
    return render("roles.html", rows=rows, can_create=can_create)


def _form_data(rbac: Any, specs: list[roles.GrantSpec], field_rules: dict[str, dict[str, str]],
               **base: Any) -> dict[str, Any]:
    """Initial values of the role form from grant specs and field rules."""
    data: dict[str, Any] = dict(base)
    for spec in specs:
        if spec.resource not in rbac.registry:
            continue
        res = rbac.registry.get(spec.resource)
        if spec.effect == "deny":
            data[cell_field("deny", spec.resource, spec.action)] = True
            continue
        if spec.scope in res.scopes:
            # A resource without owners shows an own/team/department grant stored
            # past the service as none: it reaches no record, and saving must not widen it.
            data[cell_field("scope", spec.resource, spec.action)] = (
                spec.scope if has_scopes(res) else "all")
        if res.model is not None:
            data[cell_field("cond", spec.resource, spec.action)] = queries.condition_text(
                spec.condition)
    for resource, fields in field_rules.items():
        for column, mode in fields.items():
            data[rule_field(resource, column)] = mode
    return data


def _apply_shortcut(rbac: Any, form: RoleForm, value: str) -> bool:
    """Set a module's (or every module's) cells to None, View or Full, as matrix.js does.

    View grants ``view`` on every record; Full every action on every record.
    Conditions and denies of the affected cells are cleared.
    """
    target, _, level = value.rpartition(":")
    modules = rbac.registry.modules()
    if level not in SHORTCUT_LEVELS or (target != "*" and target not in modules):
        return False
    for module, resources in modules.items():
        if target not in ("*", module):
            continue
        for res in resources:
            for action in res.actions:
                grant = level == "full" or (level == "view" and action == "view")
                form[cell_field("scope", res.name, action)].data = "all" if grant else ""
                if res.model is not None:
                    form[cell_field("cond", res.name, action)].data = ""
                form[cell_field("deny", res.name, action)].data = False
    return True


def _grant_items(rbac: Any, form: RoleForm, kept_denies: dict[tuple[str, str], roles.GrantSpec],
                 ) -> tuple[list[Any], list[tuple[str, str, str]], bool]:
    """Turn the matrix fields into ``parse_grants`` items.

    Returns the items, the cell each item came from (for putting the service's
    errors back on the right input) and whether the fields were well formed.
    A deny the role already had keeps its scope and condition (which the page
    does not edit); a new one covers every record.
    """
    items: list[Any] = []
    cells: list[tuple[str, str, str]] = []
    ok = True
    for res in rbac.registry:
        for action in res.actions:
            scope = form[cell_field("scope", res.name, action)].data or ""
            cond = form._fields.get(cell_field("cond", res.name, action))
            text = (cond.data or "").strip() if cond is not None else ""
            if scope:
                item: dict[str, Any] = {"resource": res.name, "action": action, "scope": scope}
                if text:
                    try:
                        item["condition"] = json.loads(text)
                    except ValueError as exc:
                        add_error(cond, f"The condition is not valid JSON ({exc}).")
                        ok = False
                        continue
                items.append(item)
                cells.append((res.name, action, "allow"))
            elif text:
                add_error(cond, "Choose a scope for the condition to apply to.")
                ok = False
            if form[cell_field("deny", res.name, action)].data:
                kept = kept_denies.get((res.name, action))
                items.append(kept.to_json() if kept is not None else
                             {"resource": res.name, "action": action, "effect": "deny",
                              "scope": "all"})
                cells.append((res.name, action, "deny"))
    return items, cells, ok


def _field_rules(rbac: Any, form: RoleForm) -> dict[str, dict[str, str]]:
    rules: dict[str, dict[str, str]] = {}
    for res in rbac.registry:
        for column in queries.restrictable_fields(res):
            mode = form[rule_field(res.name, column)].data
            if mode:
                rules.setdefault(res.name, {})[column] = mode
    return rules


def _place_error(form: RoleForm, exc: Refusal, cells: list[tuple[str, str, str]],
                 page_errors: list[str]) -> None:
    """Show a service's refusal at the matrix cell or input it names (else at the top).

    The service names a cell by its index in the submitted grants
    (``permissions[3].condition``); ``cells`` maps the index back to the cell.
    """
    field = exc.field or ""
    match = _PERMISSION_INDEX.match(field)
    if match and int(match.group(1)) < len(cells):
        resource, action, effect = cells[int(match.group(1))]
        kind = ("cond" if match.group(2) == "condition" else
                "deny" if effect == "deny" else "scope")
        target = form._fields.get(cell_field(kind, resource, action))
        if target is not None:
            add_error(target, exc.message)
            page_errors.append(f"{resource}.{action}: {exc.message}")
            return
    if field in ("name", "description", "parent_id"):
        add_error(form[field], exc.message)
    else:
        page_errors.append(exc.message)


def _role_page(form: RoleForm, role: Any, *, status: int = 200,
               page_errors: list[str] | None = None, preview: Any = None,
               new_grants: list[roles.GrantSpec] | None = None,
               clone_of: Any = None) -> tuple[str, int]:
    """Render the role form, with a preview (``preview`` for an existing role,
    ``new_grants`` for a new one) when the form was submitted for one."""
    rbac = current_rbac
    parent = queries.role_in(rbac, acting_access().workspace_id, form.parent_id.data)
    inherited = roles.matrix(rbac, parent) if parent is not None else {}
    modules = queries.ordered_modules(rbac.registry)
    columns = queries.module_columns(modules)
    return render("role_form.html", status, form=form, role=role, registry=rbac.registry,
                  modules=modules, columns=columns, inherited=inherited,
                  page_errors=page_errors or [], preview=preview, new_grants=new_grants,
                  field_rules=_field_rules(rbac, form) if new_grants is not None else {},
                  clone_of=clone_of, cell_field=cell_field, rule_field=rule_field,
                  restrictable_fields=queries.restrictable_fields,
                  describe=conditions.describe)


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
    shortcut = request.form.get("shortcut")
    if shortcut:
        _apply_shortcut(rbac, form, shortcut)
        return _role_page(form, role, clone_of=clone_of)
    if not form.validate_on_submit():
        return _role_page(form, role, status=400, clone_of=clone_of)
    kept = {(s.resource, s.action): s for s in roles.specs_of(role)
            if s.effect == "deny"} if role is not None else {}
    items, cells, ok = _grant_items(rbac, form, kept)
    if not ok:
        return _role_page(form, role, status=400, clone_of=clone_of,
                          page_errors=["Some cells need fixing; see the marked inputs."])
    page_errors: list[str] = []
    saving = request.form.get("step") == "save"

    def run() -> Any:
        """Save the role, or preview the change: who gains or loses what."""
        grants = roles.parse_grants(rbac, items)
        parent = queries.role_in(rbac, access.workspace_id, form.parent_id.data)
        rules = _field_rules(rbac, form)
        name, description = form.name.data or "", form.description.data or ""

        def apply() -> Any:
            if role is None:
                return roles.create_role(rbac, access, name=name, description=description,
                                         grants=grants, parent=parent, field_rules=rules)
            return roles.update_role(rbac, access, role, name=name, description=description,
                                     grants=grants, parent=parent, field_rules=rules)

        if saving:
            return apply()
        if role is None:
            _dry_run(apply)
            return grants
        return roles.preview(rbac, role, apply)

    outcome = attempt(run, commit=saving,
                      place=lambda exc: _place_error(form, exc, cells, page_errors))
    if not outcome.ok:
        return _role_page(form, role, status=outcome.status, page_errors=page_errors,
                          clone_of=clone_of)
    if saving:
        flash(f"Role {outcome.value.name} saved.", "success")
        return redirect(url_for(".roles"))
    if role is None:
        return _role_page(form, role, new_grants=outcome.value, clone_of=clone_of)
    return _role_page(form, role, preview=outcome.value)


@bp.route("/roles/new", methods=["GET", "POST"])
@require_permission("roles", "create")
@require_recent_mfa
def new_role() -> Any:
    """Create a role from scratch, or from a copy of ``?clone=<role_id>``."""
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
            return _role_page(form, None, status=400, page_errors=[
                "The Owner role cannot be cloned; clone Admin instead."])
        form = _role_form(None, _form_data(
            rbac, roles.merge_specs(roles.effective_specs(source)),
            queries.field_rules_of(source), name=f"{source.name} (copy)",
            description=source.description))
    return _role_page(form, None, clone_of=source)


@bp.route("/roles/<int:role_id>/edit", methods=["GET", "POST"])
@require_permission("roles", "edit")
@require_recent_mfa
def edit_role(role_id: int) -> Any:
    """Rename, describe, re-parent and change the matrix of a role (preview first)."""
    rbac = current_rbac
    role = _role_or_404(role_id)
    if roles.is_privileged(role):
        return rbac.refuse(Decision(
            False, f"The {role.name} role always has full access; it cannot be edited."), 403)
    if request.method == "POST":
        return _save_role(_role_form(role), role)
    form = _role_form(role, _form_data(
        rbac, roles.specs_of(role), queries.field_rules_of(role), name=role.name,
        description=role.description, parent_id=role.parent_id))
    return _role_page(form, role)


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
                  stranded=stranded, page_errors=page_errors)


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
