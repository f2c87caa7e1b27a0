"""Grants as specs: parse a matrix given by a form or the API, read a role's own and
inherited cells."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import conditions
from ..errors import InvalidCondition, UnknownResource, ValidationError
from ..registry import SCOPES, Resource

if TYPE_CHECKING:
    from ..interface import RBACProtocol


SCOPE_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}


@dataclass(frozen=True)
class GrantSpec:
    """One validated matrix cell, independent of any database row."""

    resource: str
    action: str
    scope: str = "all"
    effect: str = "allow"
    condition: tuple[conditions.Clause, ...] = ()

    @property
    def permission(self) -> str:
        return f"{self.resource}.{self.action}"

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "action": self.action, "scope": self.scope,
                "effect": self.effect, "condition": conditions.to_json(self.condition) or None}


def permission_items(rbac: RBACProtocol, items: Any, keys: frozenset[str],
                     defaults: Callable[[str], Mapping[str, Any]] = lambda resource: {},
                     ) -> Iterator[tuple[str, Mapping[str, Any], Resource]]:
    """Yield ``(field, item, resource)`` for each entry of a permission list.

    An entry is a ``"resource.action"`` string (completed by ``defaults(resource)``)
    or an object with no keys but ``keys``; its resource and action are checked
    against the registry. Roles' grants and sharing agreements' permissions
    are read by this one loop, so they refuse malformed input alike.
    """
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Iterable):
        raise ValidationError("permissions must be a list", field="permissions")
    for index, item in enumerate(items):
        field = f"permissions[{index}]"
        if isinstance(item, str):
            resource, dot, action = item.rpartition(".")
            if not dot or not resource or not action:
                raise ValidationError(f"{item[:60]!r} is not 'resource.action' "
                                      "(such as 'leads.view')", field=field)
            item = {"resource": resource, "action": action, **defaults(resource)}
        if not isinstance(item, Mapping):
            raise ValidationError("each permission is 'resource.action' or an object", field=field)
        unknown = set(item) - keys
        if unknown:
            raise ValidationError(f"unknown keys: {', '.join(sorted(map(str, unknown)))}",
                                  field=field)
        resource, action = item.get("resource"), item.get("action")
        if not isinstance(resource, str) or not isinstance(action, str):
            raise ValidationError("resource and action must be strings", field=field)
        try:
            res = rbac.registry.check_action(resource, action)
        except UnknownResource as exc:
            raise ValidationError(str(exc), field=field) from None
        yield field, item, res


def condition_clauses(res: Resource, raw: Any, field: str) -> tuple[conditions.Clause, ...]:
    """Validate a permission's record condition (none when ``raw`` is empty: see
    :func:`.conditions.is_empty`)."""
    if conditions.is_empty(raw):
        return ()
    if res.model is None:
        raise ValidationError(f"{res.name} has no records to put a condition on",
                              field=f"{field}.condition")
    try:
        return conditions.validate(res.model, raw)
    except InvalidCondition as exc:
        raise ValidationError(str(exc), field=f"{field}.condition") from None


_GRANT_KEYS = frozenset({"resource", "action", "scope", "effect", "condition"})


def parse_grants(rbac: RBACProtocol, items: Iterable[Any], scopes: Mapping[str, str] | None = None,
                 ) -> list[GrantSpec]:
    """Validate grants given as ``"leads.view"`` strings or dicts.

    ``scopes`` gives a default scope per resource for string items
    (``{"leads": "own"}``). Duplicated cells are refused.
    """
    scopes = dict(scopes or {})
    out: dict[tuple[str, str, str], GrantSpec] = {}
    for field, item, res in permission_items(
            rbac, items, _GRANT_KEYS, lambda resource: {"scope": scopes.get(resource, "all")}):
        resource, action = item["resource"], item["action"]
        scope, effect = item.get("scope", "all"), item.get("effect", "allow")
        if scope not in SCOPES:
            raise ValidationError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}",
                                  field=f"{field}.scope")
        if scope not in res.scopes:
            raise ValidationError(
                f"{resource}.{action}: scope {scope!r} needs an owner column; {resource} has none:"
                " use 'all' or no grant", field=f"{field}.scope")
        if effect not in ("allow", "deny"):
            raise ValidationError("effect must be allow or deny", field=f"{field}.effect")
        clauses = condition_clauses(res, item.get("condition"), field)
        key = (resource, action, effect)
        if key in out:
            raise ValidationError(f"{resource}.{action} ({effect}) is listed twice", field=field)
        out[key] = GrantSpec(resource, action, scope, effect, clauses)
    return list(out.values())


def specs_of(role: Any) -> list[GrantSpec]:
    """Return a role's own grants as specs (not its parents')."""
    return [GrantSpec(g.resource, g.action, g.scope, g.effect,
                      tuple((c["field"], c["op"], tuple(c["value"]) if isinstance(c["value"], list)
                             else c["value"]) for c in (g.condition or [])))
            for g in role.grants]


def ancestry(role: Any) -> list[Any]:
    """``role`` and its parents, nearest first (a cycle is walked once)."""
    chain: list[Any] = []
    seen: set[int] = set()
    while role is not None and id(role) not in seen:
        seen.add(id(role))
        chain.append(role)
        role = role.parent
    return chain


def effective_specs(role: Any) -> list[GrantSpec]:
    """Return a role's grants with those inherited from its parents."""
    return [spec for node in ancestry(role) for spec in specs_of(node)]


def merge_specs(specs: Iterable[GrantSpec]) -> list[GrantSpec]:
    """Flatten inherited grants into one cell per (resource, action, effect)."""
    out: dict[tuple[str, str, str], GrantSpec] = {}
    for spec in specs:
        key = (spec.resource, spec.action, spec.effect)
        if key not in out:  # the role's own grant comes before its parents'
            out[key] = spec
    return list(out.values())
