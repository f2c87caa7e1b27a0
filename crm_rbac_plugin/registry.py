"""The resource registry: which host models are protected, and how.

A *resource* is a name (``"leads"``) bound to a mapped model and the columns
the policy needs: the workspace column (it isolates workspaces; None only in
single-tenant mode, ``RBAC_SINGLE_TENANT``, where every row belongs to the
one workspace),
the owner column (for the own/team/department scopes), an optional
department column and an optional parent resource whose visibility a child
record inherits (a task on a client is visible to whoever sees the client).

Resources without a model (``members``, ``roles``, ``settings`` ...) are
*administrative*: they only take part in resource-level decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .errors import ConfigurationError, UnknownResource

#: The actions every resource understands.
STANDARD_ACTIONS: tuple[str, ...] = ("view", "create", "edit", "delete", "export", "manage")

#: Data scopes from the narrowest to the widest.
SCOPES: tuple[str, ...] = ("own", "team", "department", "all")


@dataclass(frozen=True)
class Resource:
    """A protected resource and the columns the policy reads from it."""

    name: str
    model: type | None = None
    module: str = "general"
    label: str = ""
    workspace_column: str | None = "workspace_id"
    owner_column: str | None = "owner_id"
    department_column: str | None = None
    parent: str | None = None
    parent_column: str | None = None
    actions: tuple[str, ...] = STANDARD_ACTIONS
    fields: tuple[str, ...] = field(default=())
    #: ``(column, values)`` pairs: setting the column to one of its values is a
    #: sensitive action, which needs ``manage`` on the record (:meth:`sensitive_changes`).
    sensitive: tuple[tuple[str, frozenset[Any]], ...] = ()

    @property
    def is_model(self) -> bool:
        return self.model is not None

    @property
    def scopes(self) -> tuple[str, ...]:
        """Return the scopes a grant on this resource may take.

        Own, team and department pick records by their owner. A model without
        an owner column has no owned records, so only ``all`` applies: a
        narrower scope would match no record, and is refused when a role is
        saved rather than read as ``all``.
        """
        if self.model is not None and self.owner_column is None:
            return ("all",)
        return SCOPES

    def sensitive_changes(self, record: Any, before: Any = None) -> list[str]:
        """Return the sensitive columns that ``record`` sets to one of their values.

        ``before`` is the record as stored (None for a new record): a column
        that already held the value is not changed by this write, so keeping
        a sent invoice sent while editing its due date needs no ``manage``.
        """
        out = []
        for column, values in self.sensitive:
            value = getattr(record, column, None)
            if value in values and (before is None or getattr(before, column, None) != value):
                out.append(f"{column} {value}")
        return out

    def column(self, name: str) -> Any:
        """Return the mapped attribute ``name`` of the model."""
        return getattr(self.model, name)

    @property
    def table(self) -> sa.Table:
        return self.model.__table__  # type: ignore[union-attr]

    def workspace_of(self, record: Any, default: Any = None) -> Any:
        """Return ``record``'s workspace id; ``default`` for a resource without the column.

        A resource registered with ``workspace=None`` (single-tenant mode)
        keeps all its rows in the one workspace: callers pass that
        workspace's id (usually the member's) as ``default``.
        """
        if self.workspace_column is None:
            return default
        return getattr(record, self.workspace_column, None)


class Registry:
    """Resources of one extension instance, by name and by model."""

    def __init__(self) -> None:
        self._by_name: dict[str, Resource] = {}
        self._by_model: dict[type, Resource] = {}
        self._by_table: dict[str, Resource] = {}
        self._reachable: dict[frozenset[str], list[Resource]] = {}
        self._references: dict[str, tuple[tuple[str, Resource], ...]] = {}

    def add(self, resource: Resource) -> Resource:
        if resource.name in self._by_name:
            raise ConfigurationError(f"resource {resource.name!r} is registered twice")
        if resource.model is not None:
            self._check_model(resource)
            self._by_model[resource.model] = resource
            self._by_table[resource.table.fullname] = resource
        self._by_name[resource.name] = resource
        self._reachable.clear()
        self._references.clear()
        return resource

    def _check_model(self, res: Resource) -> None:
        cols = set(sa.inspect(res.model).columns.keys())  # type: ignore[union-attr]
        needed = [res.workspace_column, res.owner_column, res.department_column,
                  res.parent_column, *(column for column, _ in res.sensitive)]
        for name in needed:
            if name is not None and name not in cols:
                raise ConfigurationError(
                    f"resource {res.name!r}: model {res.model.__name__} has no column {name!r}"  # type: ignore[union-attr]
                )
        if (res.parent is None) != (res.parent_column is None):
            raise ConfigurationError(
                f"resource {res.name!r}: give both parent and parent_column, or neither")
        # Walk the parent chain now so that a cycle or a typo fails at start-up.
        seen = {res.name}
        parent = res.parent
        while parent is not None:
            if parent in seen:
                raise ConfigurationError(f"resource {res.name!r}: parent cycle through {parent!r}")
            seen.add(parent)
            parent_res = self._by_name.get(parent)
            if parent_res is None:
                raise ConfigurationError(
                    f"resource {res.name!r}: parent {parent!r} must be registered first")
            parent = parent_res.parent

    def get(self, name: str) -> Resource:
        try:
            return self._by_name[name]
        except KeyError:
            raise UnknownResource(f"unknown resource {name!r}") from None

    def for_model(self, model: type) -> Resource | None:
        return self._by_model.get(model)

    @property
    def tables(self) -> dict[str, Resource]:
        """Resources by their table's full name."""
        return self._by_table

    def references(self, res: Resource) -> tuple[tuple[str, Resource], ...]:
        """``(attribute, resource)`` of each column of ``res``'s model that holds a key of
        a workspace-scoped resource's rows (a deal's client, a task's parent)."""
        found = self._references.get(res.name)
        if found is None:
            mapper = sa.inspect(res.model)
            out = []
            for column in res.table.columns:
                for fk in column.foreign_keys:
                    target = self._by_table.get(fk.column.table.fullname)
                    if target is not None and target.workspace_column is not None:
                        out.append((mapper.get_property_by_column(column).key, target))
            found = self._references[res.name] = tuple(out)
        return found

    def reachable(self, resources: list[Resource]) -> list[Resource]:
        """Return ``resources`` and the protected models reachable from them.

        Reachable by relationships (lazy and eager loads) and through the SQL of
        ``column_property`` expressions, which a statement naming the model
        does not show.
        """
        key = frozenset(r.name for r in resources)
        cached = self._reachable.get(key)
        if cached is not None:
            return cached
        seen: dict[str, Resource] = {}
        todo = list(resources)
        while todo:
            res = todo.pop()
            if res.name in seen or res.model is None:
                continue
            seen[res.name] = res
            mapper = sa.inspect(res.model)
            for rel in mapper.relationships:
                target = self._by_model.get(rel.mapper.class_)
                if target is not None:
                    todo.append(target)
            for prop in mapper.column_attrs:
                for element in sa.sql.visitors.iterate(prop.expression):
                    target = (self._by_table.get(element.fullname)
                              if isinstance(element, sa.Table) else None)
                    if target is not None:
                        todo.append(target)
        self._reachable[key] = found = list(seen.values())
        return found

    def check_action(self, resource: str, action: str) -> Resource:
        res = self.get(resource)
        if action not in res.actions:
            raise UnknownResource(f"resource {resource!r} has no action {action!r}")
        return res

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._by_name.values())

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return list(self._by_name)

    def modules(self) -> dict[str, list[Resource]]:
        """Resources grouped by module, in registration order."""
        out: dict[str, list[Resource]] = {}
        for res in self._by_name.values():
            out.setdefault(res.module, []).append(res)
        return out


def split_permission(resource: str, action: str | None) -> tuple[str, str]:
    """Accept ``("leads", "edit")`` as well as ``("leads.edit", None)``."""
    if action is None:
        resource, sep, action = resource.rpartition(".")
        if not sep or not resource or not action:
            raise ValueError(f"permission {resource + sep + action!r} is not 'resource.action'")
    return resource, action
