"""A role's field rules: which fields of a resource are hidden or read-only for it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..condition_fields import field_label
from ..errors import UnknownResource, ValidationError
from ..registry import Resource
from .grants import ancestry
from .locks import concurrent_change_refused, lock_for_role_change

if TYPE_CHECKING:
    from ..interface import RBACProtocol


FIELD_MODES = ("hidden", "readonly")

#: A role's field modes by (resource, field).
FieldModes = dict[tuple[str, str], str]


def flat_modes(rules: Mapping[str, Mapping[str, str]]) -> FieldModes:
    """``{"deals": {"amount": "hidden"}}`` as ``{("deals", "amount"): "hidden"}``."""
    return {(resource, name): mode for resource, fields in rules.items()
            for name, mode in fields.items()}


def own_modes(role: Any) -> FieldModes:
    """The field modes ``role`` carries itself, without its parents'."""
    return {(fr.resource, fr.field): fr.mode for fr in getattr(role, "field_rules", [])}


def chain_modes(own: FieldModes, parent: Any) -> FieldModes:
    """``own`` with the modes of ``parent`` and its ancestors: inside one chain the
    most restrictive mode wins (hidden over read-only), as access resolution reads it."""
    modes = dict(own)
    for node in ancestry(parent):
        for key, mode in own_modes(node).items():
            if modes.get(key) != "hidden":
                modes[key] = mode
    return modes


def role_field_modes(role: Any) -> FieldModes:
    """The field modes ``role`` applies, its parents' included."""
    return chain_modes(own_modes(role), role.parent)


def copied_field_rules(role: Any) -> dict[str, dict[str, str]]:
    """The field rules of a copy of ``role``: its own and its parents', as a copy takes
    their grants too (a copy without a parent's rules would show what the role hides)."""
    out: dict[str, dict[str, str]] = {}
    for (resource, name), mode in sorted(role_field_modes(role).items()):
        out.setdefault(resource, {})[name] = mode
    return out


def field_labels(res: Resource) -> dict[str, str]:
    """Labels of a resource's columns as pages show them ("Email", "Close date"), by column.

    A page names a field rule by its label, not its column: the column name is
    the host's, the label is what its users read.
    """
    if res.model is None:
        return {}
    return {str(c.key): field_label(c) for c in sa.inspect(res.model).columns}


def set_field_rules(rbac: RBACProtocol, role: Any, rules: Mapping[str, Mapping[str, str]]) -> None:
    """Replace a role's field rules: ``{"deals": {"amount": "hidden"}}``.

    Serialised with other writers of the role, like :func:`.editing.update_role`.
    """
    label = f"the role {role.name}"
    if role.id is not None:
        with concurrent_change_refused(label):
            lock_for_role_change(rbac, role)
    with concurrent_change_refused(label):
        replace_field_rules(rbac, role, rules)
        rbac.db.session.flush()


def replace_field_rules(rbac: RBACProtocol, role: Any,
                        rules: Mapping[str, Mapping[str, str]]) -> None:
    """Make the role's field rules exactly ``rules``, unlocked (the caller holds the lock)."""
    wanted = []
    for resource, fields in rules.items():
        try:
            res = rbac.registry.get(resource)
        except UnknownResource as exc:
            raise ValidationError(str(exc), field="field_rules") from None
        if res.model is None:
            raise ValidationError(f"{resource} has no fields", field="field_rules")
        columns = sa.inspect(res.model).columns
        protected = {res.workspace_column, res.owner_column, "id"}
        for name, mode in fields.items():
            if name not in columns or name in protected:
                raise ValidationError(f"{resource} has no field {name!r} that can be restricted",
                                      field="field_rules")
            if mode not in FIELD_MODES:
                raise ValidationError(f"field mode must be hidden or readonly, not {mode!r}",
                                      field="field_rules")
            wanted.append((resource, name, mode))
    # Keyed by (resource, field), as the table's unique key: a rule that stays keeps
    # its row (its mode updated in place), so the audit trail sees what changed.
    modes = {(resource, name): mode for resource, name, mode in wanted}
    for rule in list(role.field_rules):
        mode = modes.pop((rule.resource, rule.field), None)
        if mode is None:
            role.field_rules.remove(rule)
        elif rule.mode != mode:
            rule.mode = mode
    for (resource, name), mode in modes.items():
        role.field_rules.append(rbac.models.FieldRule(resource=resource, field=name, mode=mode))
