"""The settings pages: roles and their matrix, members' access, SoD, plan, API tokens.

Thin views over :mod:`..roles` and :mod:`..tokens`: the service layer makes
every decision about what may be granted, given or removed, and each change
goes through :func:`.blueprint.attempt`, which commits it or rolls it back
and shows the refusal (403, or 400 with the message at the input it names).

Everything acts in the current member's workspace
(:func:`.blueprint.acting_access`); an id from another workspace is a 404.
The team and sharing pages (:mod:`.team_views`, :mod:`.sharing_views`) are on
the same blueprint; :func:`register` mounts them all with their tabs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, flash, redirect, request, url_for
from flask_login import login_required

from .. import conditions, pages, queries, roles, tokens
from ..decorators import require_permission
from ..errors import UnknownResource
from ..models import utcnow
from ..pages import ConfirmForm
from ..policy import Decision
from ..queries import get_rbac
from . import sharing_views, team_views  # noqa: F401  (their pages are on the same blueprint)
from .blueprint import (Refusal, acting_access, add_error, attempt, bp, can, membership_or_404,
                        not_found, render)
from .forms import (AssignRoleForm, CompareForm, ConflictForm, DeleteRoleForm, GrantingForm,
                    PlanForm, RoleForm, TokenForm, cell_field, choices,
                    has_scopes, role_form_class, rule_field)

#: Shortcut buttons of the matrix: ``<module or *>:<level>``.
SHORTCUT_LEVELS = ("none", "view", "full")
_PERMISSION_INDEX = re.compile(r"^permissions\[(\d+)\](?:\.(\w+))?$")


def register(app: Flask) -> None:
    """Mount the pages under ``RBAC_SETTINGS_URL_PREFIX`` (None: not at all), with their tabs."""
    prefix = app.config["RBAC_SETTINGS_URL_PREFIX"]
    if prefix is None:
        return
    app.register_blueprint(bp, url_prefix=prefix)
    _add_tabs(app)


def _add_tabs(app: Flask) -> None:
    """The blueprint's tabs: the workspace's settings first (orders 10 to 70), the
    member's own pages last (200 and 210); the oversight pages' tabs go between."""
    s = bp.name
    pages.add_tab(app, f"{s}.roles", "Roles", order=10, permission="roles.view",
                  highlight=[f"{s}.new_role", f"{s}.edit_role", f"{s}.delete_role"])
    pages.add_tab(app, f"{s}.compare", "Compare roles", order=20, permission="roles.view")
    pages.add_tab(app, f"{s}.members", "Members", order=30, permission="members.view",
                  highlight=[f"{s}.member_access"])
    pages.add_tab(app, f"{s}.conflicts", "Segregation of duties", order=40,
                  permission="roles.view")
    pages.add_tab(app, f"{s}.plan", "Plan", order=50, owner=True)
    pages.add_tab(app, f"{s}.departments", "Departments", order=60, permission="members.view")
    pages.add_tab(app, f"{s}.sharing", "Sharing", order=70, permission="settings.view",
                  highlight=[f"{s}.new_agreement", f"{s}.edit_agreement"])
    pages.add_tab(app, f"{s}.profile", "Profile", order=200)
    pages.add_tab(app, f"{s}.tokens", "My API tokens", order=210)


# -- helpers ---------------------------------------------------------------------


def _role_or_404(role_id: int) -> Any:
    role = queries.role_in(get_rbac(), acting_access().workspace_id, role_id)
    return role if role is not None else not_found()


def _dry_run(change: Callable[[], Any]) -> None:
    """Run ``change`` in a SAVEPOINT that is always rolled back (to surface refusals)."""
    session = get_rbac().db.session
    nested = session.begin_nested()
    try:
        change()
        session.flush()
    finally:
        nested.rollback()


@bp.get("/")
@login_required
def index() -> Any:
    """Go to the first settings page the member may see."""
    if can("roles.view"):
        return redirect(url_for(".roles"))
    if can("members.view"):
        return redirect(url_for(".members"))
    return redirect(url_for(".tokens"))


# -- roles -----------------------------------------------------------------------


@bp.get("/roles", endpoint="roles")
@require_permission("roles", "view")
def roles_list() -> Any:
    """Every role of the workspace with its member count and the actions allowed."""
    rbac, access = get_rbac(), acting_access()
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
    rbac = get_rbac()
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
    rbac = get_rbac()
    form = role_form_class(rbac.registry)(data=data)
    form.parent_id.choices = choices([("", "— none —")] + [
        (r.id, r.name) for r in queries.workspace_roles(rbac, acting_access().workspace_id)
        if not r.is_owner and (role is None or r.id != role.id)])
    return form


def _save_role(form: RoleForm, role: Any, clone_of: Any = None) -> Any:
    """Preview or save the submitted role form (``role`` None: a new role)."""
    rbac, access = get_rbac(), acting_access()
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
def new_role() -> Any:
    """Create a role from scratch, or from a copy of ``?clone=<role_id>``."""
    rbac = get_rbac()
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
def edit_role(role_id: int) -> Any:
    """Rename, describe, re-parent and change the matrix of a role (preview first)."""
    rbac = get_rbac()
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
def delete_role(role_id: int) -> Any:
    """Confirm a deletion, offering to move the role's members to another role."""
    rbac, access = get_rbac(), acting_access()
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
    rbac, access = get_rbac(), acting_access()
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


# -- members ---------------------------------------------------------------------


def _assign_form() -> AssignRoleForm:
    form = AssignRoleForm()
    form.role_id.choices = choices([("", "— choose a role —")] + [
        (r.id, r.name) for r in queries.workspace_roles(get_rbac(), acting_access().workspace_id)])
    return form


def _member_page(membership: Any, *, form: AssignRoleForm | None = None, status: int = 200,
                 page_errors: list[str] | None = None) -> tuple[str, int]:
    rbac = get_rbac()
    access = rbac.access_for(membership)
    assignments = sorted(membership.member_roles, key=lambda mr: mr.id)
    return render("member_access.html", status, membership=membership, member_access=access,
                  assignments=assignments, status_of=queries.assignment_status,
                  chain=queries.role_chain,
                  matrix=queries.effective_matrix(rbac, membership, access),
                  columns=queries.module_columns(queries.ordered_modules(rbac.registry)),
                  form=form or _assign_form(), confirm=ConfirmForm(),
                  can_edit=can("members.edit"), page_errors=page_errors or [])


@bp.get("/members/<int:membership_id>/access")
@require_permission("members", "view")
def member_access(membership_id: int) -> Any:
    """A member's roles (with time windows) and effective matrix, with each permission's origin."""
    return _member_page(membership_or_404(membership_id))


@bp.post("/members/<int:membership_id>/roles")
@require_permission("members", "edit")
def assign(membership_id: int) -> Any:
    """Give the member a role, optionally from/until a UTC date and time."""
    rbac, access = get_rbac(), acting_access()
    membership = membership_or_404(membership_id)
    form = _assign_form()
    if not form.validate_on_submit():
        return _member_page(membership, form=form, status=400)
    role = queries.role_in(rbac, access.workspace_id, form.role_id.data)
    page_errors: list[str] = []
    outcome = attempt(lambda: roles.assign_role(rbac, access, membership, role,
                                                starts_at=form.starts_at.data,
                                                expires_at=form.expires_at.data),
                      form, errors=page_errors)
    if not outcome.ok:
        return _member_page(membership, form=form, status=outcome.status,
                            page_errors=page_errors)
    flash(f"{membership.display_name} now holds {role.name}.", "success")
    return redirect(url_for(".member_access", membership_id=membership.id))


@bp.post("/members/<int:membership_id>/roles/<int:member_role_id>/remove")
@require_permission("members", "edit")
def unassign(membership_id: int, member_role_id: int) -> Any:
    """Take one role assignment away."""
    rbac, access = get_rbac(), acting_access()
    membership = membership_or_404(membership_id)
    assignment = next((mr for mr in membership.member_roles if mr.id == member_role_id), None)
    if assignment is None:
        return not_found()
    if not ConfirmForm().validate_on_submit():
        return _member_page(membership, status=400, page_errors=["The form expired; try again."])
    name = assignment.role.name
    page_errors: list[str] = []
    outcome = attempt(lambda: roles.remove_role(rbac, access, assignment), errors=page_errors)
    if not outcome.ok:
        return _member_page(membership, status=outcome.status, page_errors=page_errors)
    flash(f"{membership.display_name} no longer holds {name}.", "success")
    return redirect(url_for(".member_access", membership_id=membership.id))


# -- segregation of duties ----------------------------------------------------------


@bp.route("/conflicts", methods=["GET", "POST"])
@require_permission("roles", "view")
def conflicts() -> Any:
    """Pairs of roles no member may hold together: list and add."""
    rbac, access = get_rbac(), acting_access()
    form = ConflictForm()
    form.role_a_id.choices = form.role_b_id.choices = choices(
        (r.id, r.name) for r in queries.workspace_roles(rbac, access.workspace_id))
    status, page_errors = 200, []
    if request.method == "POST":
        if form.validate_on_submit():
            a = queries.role_in(rbac, access.workspace_id, form.role_a_id.data)
            b = queries.role_in(rbac, access.workspace_id, form.role_b_id.data)
            outcome = attempt(lambda: roles.add_conflict(rbac, access, a, b), form,
                              fallback=form.role_b_id, errors=page_errors)
            if outcome.ok:
                flash(f"{a.name} and {b.name} can no longer be held together.", "success")
                return redirect(url_for(".conflicts"))
            status = outcome.status
        else:
            status = 400
    return render("conflicts.html", status, form=form, confirm=ConfirmForm(),
                  pairs=queries.workspace_conflicts(rbac, access.workspace_id),
                  can_manage=can("roles.manage"), page_errors=page_errors)


@bp.post("/conflicts/<int:conflict_id>/remove")
@require_permission("roles", "manage")
def remove_conflict(conflict_id: int) -> Any:
    rbac, access = get_rbac(), acting_access()
    pair = queries.conflict_in(rbac, access.workspace_id, conflict_id)
    if pair is None:
        return not_found()
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".conflicts"))
    roles.remove_conflict(rbac, access, pair)
    rbac.db.session.commit()
    flash("The pair was removed.", "success")
    return redirect(url_for(".conflicts"))


# -- plan -------------------------------------------------------------------------------


@bp.route("/plan", methods=["GET", "POST"])
@login_required
def plan() -> Any:
    """The workspace's plan and the modules each plan includes (Owner only)."""
    rbac = get_rbac()
    access = rbac.current_access()
    if access is None or not access.is_owner:
        return rbac.refuse(Decision(False, "Only an Owner can see and change the plan."), 403)
    workspace = rbac.db.session.get(rbac.models.Workspace, access.workspace_id)
    plans = list(current_app.config["RBAC_PLANS"])
    form = PlanForm(data={"plan": workspace.plan})
    form.plan.choices = choices((p, p.title()) for p in plans)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: roles.set_plan(rbac, access, workspace, form.plan.data),
                              form, fallback=form.plan)
            if outcome.ok:
                flash(f"The workspace is now on the {workspace.plan} plan.", "success")
                return redirect(url_for(".plan"))
            status = outcome.status
        else:
            status = 400
    return render("plan.html", status, form=form, workspace=workspace,
                  modules=list(queries.ordered_modules(rbac.registry)),
                  plans=[(p, set(queries.plan_modules(rbac, p))) for p in plans])


# -- API tokens -------------------------------------------------------------------------


def _my_membership() -> Any:
    rbac = get_rbac()
    access = rbac.current_access()
    if access is None or not access.active:
        return rbac.refuse(Decision(False, "You are not an active member of this workspace."))
    return rbac.db.session.get(rbac.models.Membership, access.membership_id)


@bp.route("/tokens", methods=["GET", "POST"], endpoint="tokens")
@login_required
def tokens_page() -> Any:
    """Create (the plaintext is shown once), list and revoke one's own API tokens."""
    rbac = get_rbac()
    membership = _my_membership()
    form = TokenForm()
    created, status = None, 200
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: tokens.create_token(rbac, membership, form.name.data or "",
                                                          expires_at=form.expires_at.data),
                              form, fallback=form.name)
            if outcome.ok:
                token, plaintext = outcome.value
                created = {"token": token, "plaintext": plaintext}
                status = 201
                form = TokenForm(formdata=None)
            else:
                status = outcome.status
        else:
            status = 400
    return render("tokens.html", status, form=form, created=created, confirm=ConfirmForm(),
                  tokens=queries.member_tokens(rbac, membership.id), now=utcnow(),
                  api_prefix=current_app.config["RBAC_API_URL_PREFIX"])


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Any:
    rbac = get_rbac()
    membership = _my_membership()
    token = next((t for t in queries.member_tokens(rbac, membership.id) if t.id == token_id),
                 None)
    if token is None:
        return not_found()
    if ConfirmForm().validate_on_submit():
        tokens.revoke_token(rbac, membership, token)
        rbac.db.session.commit()
        flash(f"Token {token.name} revoked.", "success")
    else:
        flash("The form expired; try again.", "error")
    return redirect(url_for(".tokens"))
