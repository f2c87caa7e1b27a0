"""The role editor's matrix as data: initial values, shortcuts and the grants it submits.

The matrix has one scope select and one deny box per resource and action, the
condition builder's rows per cell (:mod:`.condition_form`) and one mode select
per restrictable field. This module turns a role's grants into those values,
fills cells for the None / View / Full shortcuts and turns the submitted
values back into the items :func:`..roles.parse_grants` takes.

The shortcuts never reach the administrative resources (team members, roles,
workspace settings: the plugin's own module) unless they are aimed at them:
"Whole role: View" on a sales role must not quietly let its holders read the
member list or the roles. The administration section has its own shortcuts,
here and in matrix.js alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .. import queries, roles
from ..condition_fields import FieldInfo
from ..registry import Resource
from .blueprint import add_error
from .condition_form import CellCondition, fields_of, load, read, to_condition
from .forms import RoleForm, cell_field, has_scopes, rule_field

#: Shortcut levels of the matrix: ``<module, * or administration>:<level>``.
SHORTCUT_LEVELS = ("none", "view", "full")
#: The whole-role shortcut's target: every module but the administrative one.
WHOLE_ROLE = "*"

Cell = tuple[str, str]
Cells = dict[Cell, CellCondition]


def is_administrative(res: Resource) -> bool:
    """Whether ``res`` is one of the plugin's own resources (members, roles, settings)."""
    return res.module == queries.ADMIN_MODULE


def resource_fields(rbac: Any) -> dict[str, dict[str, FieldInfo]]:
    """The fields a condition may test, per resource with a model."""
    return {res.name: fields_of(res) for res in rbac.registry if res.model is not None}


def cell_label(res: Resource, action: str) -> str:
    """A cell in words: "Deals: view"."""
    return f"{res.label or res.name}: {action}"


def form_data(rbac: Any, specs: Iterable[roles.GrantSpec], field_rules: Mapping[str, Any],
              **base: Any) -> tuple[dict[str, Any], Cells]:
    """Initial values of the role form and the builder rows, from grant specs and field rules."""
    data: dict[str, Any] = dict(base)
    fields = resource_fields(rbac)
    cells: Cells = {}
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
            cell = load(spec.condition, fields[res.name])
            cells[(res.name, spec.action)] = cell
            data[cell_field("cond", spec.resource, spec.action)] = cell.raw
    for resource, modes in field_rules.items():
        for column, mode in modes.items():
            data[rule_field(resource, column)] = mode
    return data, cells


def owner_data(rbac: Any, **base: Any) -> dict[str, Any]:
    """Form values showing every cell granted on all records (the Owner's access)."""
    data = dict(base)
    for res in rbac.registry:
        for action in res.actions:
            data[cell_field("scope", res.name, action)] = "all"
    return data


def submitted_cells(rbac: Any, data: Mapping[str, Any]) -> Cells:
    """The builder rows of every cell, as submitted."""
    fields = resource_fields(rbac)
    return {(res.name, action): read(data, cell_field("cond", res.name, action), fields[res.name])
            for res in rbac.registry if res.model is not None for action in res.actions}


def apply_shortcut(rbac: Any, form: RoleForm, cells: Cells, value: str) -> bool:
    """Set a module's cells (or the whole role's) to None, View or Full, as matrix.js does.

    View grants ``view`` on every record; Full every action on every record.
    Conditions and denies of the affected cells are cleared. ``*`` is every
    module but the administrative one, which only its own shortcut changes.
    """
    target, _, level = value.rpartition(":")
    modules = rbac.registry.modules()
    if level not in SHORTCUT_LEVELS or (target != WHOLE_ROLE and target not in modules):
        return False
    for module, resources in modules.items():
        if target != module and (target != WHOLE_ROLE or module == queries.ADMIN_MODULE):
            continue
        for res in resources:
            for action in res.actions:
                grant = level == "full" or (level == "view" and action == "view")
                form[cell_field("scope", res.name, action)].data = "all" if grant else ""
                if res.model is not None:
                    form[cell_field("cond", res.name, action)].data = ""
                    cells[(res.name, action)] = CellCondition()
                form[cell_field("deny", res.name, action)].data = False
    return True


def grant_items(rbac: Any, form: RoleForm, cells: Cells,
                kept_denies: Mapping[Cell, roles.GrantSpec],
                ) -> tuple[list[Any], list[tuple[str, str, str]], bool]:
    """Turn the matrix fields into ``parse_grants`` items.

    Returns the items, the cell each item came from (for putting the service's
    errors back on the right input) and whether the fields were well formed;
    a builder row in error carries its message. A deny the role already had
    keeps its scope and condition (which the page does not edit); a new one
    covers every record.
    """
    items: list[Any] = []
    sources: list[tuple[str, str, str]] = []
    fields = resource_fields(rbac)
    ok = True
    for res in rbac.registry:
        for action in res.actions:
            scope = form[cell_field("scope", res.name, action)].data or ""
            cell = cells.get((res.name, action)) or CellCondition()
            condition = (to_condition(cell, res, fields[res.name], cell_label(res, action))
                         if res.model is not None else [])
            if condition is None:
                ok = False
                _flag(form, res, action, cell.error or "Fix the conditions of this cell.")
            elif scope:
                items.append({"resource": res.name, "action": action, "scope": scope,
                              **({"condition": condition} if condition else {})})
                sources.append((res.name, action, "allow"))
            elif condition:
                _flag(form, res, action, "Choose a scope for the condition to apply to.")
                ok = False
            if form[cell_field("deny", res.name, action)].data:
                kept = kept_denies.get((res.name, action))
                items.append(kept.to_json() if kept is not None else
                             {"resource": res.name, "action": action, "effect": "deny",
                              "scope": "all"})
                sources.append((res.name, action, "deny"))
    return items, sources, ok


def _flag(form: RoleForm, res: Resource, action: str, message: str) -> None:
    field = form._fields.get(cell_field("cond", res.name, action))
    if field is not None:
        add_error(field, message)


def field_rules(rbac: Any, form: RoleForm) -> dict[str, dict[str, str]]:
    """The submitted field rules as ``{resource: {field: mode}}``."""
    rules: dict[str, dict[str, str]] = {}
    for res in rbac.registry:
        for column in queries.restrictable_fields(res):
            mode = form[rule_field(res.name, column)].data
            if mode:
                rules.setdefault(res.name, {})[column] = mode
    return rules
