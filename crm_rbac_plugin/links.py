"""Many-to-many link tables of protected models: reads and writes.

A relationship with a ``secondary`` table (``Campaign.leads`` through
``campaign_lead``) joins two models through a table the registry does not
know. The query filter already gives the target's criteria to every load of
such a relationship (lazy, ``selectinload``, ``joinedload``, a join on the
relationship: the target model is in the statement, or reachable from it),
so a hidden lead never comes out of ``campaign.leads``. Two paths remain,
and this module closes them:

* **Reading the link table itself.** ``select(campaign_lead)`` returns the
  ids of hidden leads, and a count of its rows reveals how many there are.
  :func:`on_orm_execute` refuses a member's statement that names a link
  table unless it is a relationship load (SQLAlchemy builds it from a parent
  the member loaded, and the target gets its criteria) or an ORM ``SELECT``
  whose own FROM clause and joins hold the protected table of every side of
  the link, whose criteria then filter the joined rows (a side named only in
  a subquery does not count). Core statements and writes on a
  link table run only inside ``rbac.system()``.
* **Writing links.** Appending to or removing from a collection inserts or
  deletes link rows at flush, and the write guard sees no change of a
  column. :func:`before_flush` requires, for every link a member adds or
  removes, ``edit`` on the protected record whose collection changes and
  ``view`` on the protected record linked or unlinked. A lead the member
  cannot see cannot be linked, whatever path loaded the object. A link is
  added only between records of one workspace: a record shared by another
  workspace (a lead seen through a ``leads.view`` agreement) is visible but
  cannot be put in the receiver's campaign, which would hand the sharer's
  contacts to a mailing list the sharer never agreed to.

Deleting a record removes only the link rows the ORM loaded, that is, the
visible ones: a host declares its link foreign keys ``ondelete="CASCADE"``
and the relationship ``passive_deletes=True``, so the database removes the
rest. A ``backref`` changes both sides' collections, so a link written
through a relationship with a backref needs ``edit`` on both records.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import ORMExecuteState, Session, attributes

from .errors import PermissionDenied
from .registry import Registry, Resource

if TYPE_CHECKING:
    from .interface import RBACProtocol

#: Statements remembered per registry; beyond it, statements are walked every time.
MEMO_SIZE = 10_000


class LinkIndex:
    """The link tables of a registry's protected models, built on first use.

    ``tables`` maps a link table's full name to the protected resources on
    its sides; ``relationships`` maps a mapped class (of the protected
    models' declarative registries) to its relationships through a link
    table that has a protected side; ``statements`` remembers which link
    tables a statement names, by SQL cache key.
    """

    def __init__(self, registry: Registry) -> None:
        self.tables: dict[str, list[Resource]] = {}
        self.relationships: dict[type, list[Any]] = {}
        self.statements: dict[Any, tuple[str, ...]] = {}
        mappers = {m for res in registry if res.model is not None
                   for m in sa.inspect(res.model).registry.mappers}
        for mapper in mappers:
            for rel in mapper.relationships:
                if not isinstance(rel.secondary, sa.Table):
                    continue
                sides = [r for r in (registry.for_model(mapper.class_),
                                     registry.for_model(rel.mapper.class_)) if r is not None]
                if not sides:
                    continue
                names = self.tables.setdefault(rel.secondary.fullname, [])
                names.extend(r for r in sides if r not in names)
                self.relationships.setdefault(mapper.class_, []).append(rel)


#: The index of each registry (one per extension object), with the resource
#: names it was built from: registering a resource rebuilds it.
_INDEXES: weakref.WeakKeyDictionary[Registry, tuple[tuple[str, ...], LinkIndex]] = (
    weakref.WeakKeyDictionary())


def index_of(rbac: RBACProtocol) -> LinkIndex:
    """Return the link index of ``rbac``'s registry, rebuilt when a resource is added."""
    registry = rbac.registry
    names = tuple(registry.names())
    cached = _INDEXES.get(registry)
    if cached is None or cached[0] != names:
        cached = _INDEXES[registry] = (names, LinkIndex(registry))
    return cached[1]


def named_links(index: LinkIndex, statement: Any) -> tuple[str, ...]:
    """Return the link tables ``statement`` names, remembered by its SQL cache key."""
    key = statement._generate_cache_key()
    hit = index.statements.get(key.key) if key is not None else None
    if hit is None:
        found = {element.fullname for element in sa.sql.visitors.iterate(statement)
                 if isinstance(element, sa.Table) and element.fullname in index.tables}
        hit = tuple(sorted(found))
        if key is not None and len(index.statements) < MEMO_SIZE:
            index.statements[key.key] = hit
    return hit


def on_orm_execute(rbac: RBACProtocol, state: ORMExecuteState) -> None:
    """Refuse a member's statement on a link table whose rows no criteria filter."""
    if state.execution_options.get("rbac_bypass") or state.is_column_load:
        return
    index = index_of(rbac)
    if not index.tables:
        return
    links = named_links(index, state.statement)
    if not links:
        return
    if rbac.resolve_context() is rbac.SYSTEM:
        return
    if state.is_orm_statement and state.is_select:
        if state.is_relationship_load:
            return  # built from a loaded parent; the target carries its criteria
        named = joined_tables(state.statement)
        missing = sorted({r.name for link in links for r in index.tables[link]
                          if r.table.fullname not in named})
        if not missing:
            return
        reason = (f"a query of {', '.join(links)} must also select from (or join) "
                  f"{', '.join(missing)}, whose criteria filter its rows")
    else:
        reason = f"statements other than ORM SELECTs on {', '.join(links)}"
    raise PermissionDenied(f"Refused: {reason}; load the relationship instead, "
                           "or use rbac.system() for trusted code.")


def joined_tables(statement: Any) -> set[str]:
    """Return the names of the tables in the FROM clause and joins of ``statement`` itself.

    Tables of subqueries do not count: criteria on a table named only in a
    ``WHERE EXISTS (...)`` filter that subquery, not the link rows selected.
    """
    found: set[str] = set()
    todo = list(statement.get_final_froms())
    while todo:
        element = todo.pop()
        if isinstance(element, sa.Table):
            found.add(element.fullname)
        elif isinstance(element, sa.sql.selectable.Join):
            todo += [element.left, element.right]
    return found


def before_flush(rbac: RBACProtocol, session: Session, flush_context: Any, instances: Any) -> None:
    """Refuse a flush that links or unlinks a record the member may not touch."""
    index = index_of(rbac)
    if not index.relationships:
        return
    changes = list(changed_links(index, session))
    if not changes:
        return
    ctx = rbac.resolve_context()
    if ctx is rbac.SYSTEM:
        return
    loader = rbac.parent_loader(session)
    registry = rbac.registry
    for obj, rel, targets, added in changes:
        source = registry.for_model(type(obj))
        if source is not None and obj not in session.new and obj not in session.deleted:
            decision = rbac.decide(ctx, "edit", source.name, obj, loader)
            if not decision:
                rbac.signal_denied(ctx, "edit", source.name, obj, decision.reason)
                raise PermissionDenied(
                    f"You may not change the {rel.key} of this {source.name} record: "
                    f"{decision.reason}", resource=source.name, action="edit")
        target = registry.for_model(rel.mapper.class_)
        if target is None:
            continue
        for item in targets:
            decision = rbac.decide(ctx, "view", target.name, item, loader)
            if not decision:
                rbac.signal_denied(ctx, "view", target.name, item, decision.reason)
                raise PermissionDenied(
                    f"You may not link or unlink {target.name} #{record_id(item)} "
                    f"({rel.key}): it is not visible to you", resource=target.name,
                    action="view")
        if source is not None:
            _refuse_cross_workspace(rbac, ctx, source, obj, target, rel, added)


def _refuse_cross_workspace(rbac: RBACProtocol, ctx: Any, source: Resource, obj: Any,
                            target: Resource, rel: Any, added: list[Any]) -> None:
    """Refuse a new link between records of two workspaces (a shared record included)."""
    ws = getattr(ctx, "workspace_id", None)
    home = source.workspace_of(obj, ws)
    for item in added:
        if target.workspace_of(item, ws) != home:
            raise PermissionDenied(
                f"You may not link {target.name} #{record_id(item)} ({rel.key}): it belongs "
                "to another workspace", resource=target.name, action="view")


def record_id(item: Any) -> str:
    """Return the primary key of ``item`` as text, or ``"new"`` before its insert."""
    identity = sa.inspect(item).identity
    return "new" if identity is None else ",".join(str(v) for v in identity)


def changed_links(index: LinkIndex, session: Session) -> Any:
    """Yield ``(object, relationship, records linked or unlinked, records linked)``."""
    for obj in (*session.new, *session.dirty):
        for rel in index.relationships.get(type(obj), ()):
            history = attributes.get_history(obj, rel.key, passive=attributes.PASSIVE_NO_INITIALIZE)
            added = list(history.added or ())
            touched = [*added, *(history.deleted or ())]
            if touched:
                yield obj, rel, touched, added
