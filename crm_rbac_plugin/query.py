"""The query filter: the policy of :mod:`.policy` as SQL criteria.

Every function here mirrors its twin in :mod:`.policy` and must stay
equivalent to it, NULLs included; ``tests/test_agreement.py`` checks that
property with Hypothesis. :func:`record_criteria` is what the
``do_orm_execute`` listener adds, through ``with_loader_criteria``, to every
ORM SELECT, UPDATE and DELETE that touches a protected model.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute, RelationshipProperty
from sqlalchemy.sql.elements import False_, True_
from sqlalchemy.sql.functions import FunctionElement

from . import conditions
from .policy import ALLOW, Access, Rule
from .registry import Registry, Resource

#: The share of rows SQLite's planner is told a :class:`rarely` clause matches.
RARE_SHARE = "0.001"


class rarely(FunctionElement[bool]):  # noqa: N801 (an SQL function, named like one)
    """A clause few rows match: on SQLite, ``likelihood(clause, 0.001)``.

    SQLite's planner knows only the average number of rows per owner
    (``sqlite_stat1``), so it takes "unowned" for as common as any owner
    and, when ``owner_id IN (...) OR owner_id IS NULL`` has more than one
    owner, walks the whole workspace in id order instead of reading the
    owner index. Unowned records are the exception in a CRM (every record
    should have an owner), and saying so turns the plan into an index read
    of the owners' and the unowned rows. Other databases get the clause
    unchanged; the result is the same everywhere (``likelihood`` returns its
    first argument).
    """

    #: Untyped, not Boolean: a dialect without a boolean type would compare a
    #: Boolean function with 1 (``likelihood(...) = 1``), which hides the
    #: clause from SQLite's planner.
    type = sa.types.NullType()
    name = "rarely"
    inherit_cache = True


@compiles(rarely)
def _rarely_plain(element: rarely, compiler: Any, **kw: Any) -> str:
    (clause,) = element.clauses.clauses
    return f"({compiler.process(clause, **kw)})"


@compiles(rarely, "sqlite")
def _rarely_sqlite(element: rarely, compiler: Any, **kw: Any) -> str:
    (clause,) = element.clauses.clauses
    return f"likelihood({compiler.process(clause, **kw)}, {RARE_SHARE})"


def _not_null_in(col: Any, values: Any) -> sa.ColumnElement[bool]:
    return sa.and_(col.is_not(None), col.in_(values))


def all_of(*parts: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """``AND`` of ``parts``, with the constant ``true``/``false`` folded away.

    SQLAlchemy keeps a ``true()`` nested in a one-element group (an all-scope
    rule without conditions rendered ``workspace_id = ? AND true AND true``),
    and every term is walked again for the SQL cache key of every execution.
    """
    kept = [p for p in parts if not isinstance(p, True_)]
    if any(isinstance(p, False_) for p in kept):
        return sa.false()
    if not kept:
        return sa.true()
    return kept[0] if len(kept) == 1 else sa.and_(*kept)


def any_of(*parts: sa.ColumnElement[bool]) -> sa.ColumnElement[bool]:
    """``OR`` of ``parts``, with the constant ``true``/``false`` folded away."""
    kept = [p for p in parts if not isinstance(p, False_)]
    if any(isinstance(p, True_) for p in kept):
        return sa.true()
    if not kept:
        return sa.false()
    return kept[0] if len(kept) == 1 else sa.or_(*kept)


def scope_criteria(access: Access, res: Resource, scope: str, entity: Any,
                   membership_table: Any) -> sa.ColumnElement[bool]:
    """SQL twin of :func:`.policy.scope_matches`.

    Team and department scopes name their members' ids inline, the ids the
    Access holds (a membership change bumps the workspace's policy version,
    so a cached Access never outlives them). ``membership_table`` is kept for
    callers and is not read.
    """
    if scope == "all":
        return sa.true()
    if res.owner_column is None:
        return sa.false()
    owner = getattr(entity, res.owner_column)
    me = access.user_id
    if scope == "own":
        return sa.and_(owner.is_not(None), owner == me)
    if scope == "team":
        return _not_null_in(owner, sorted(access.team_user_ids | {me}))
    if scope == "department":
        own = sa.and_(owner.is_not(None), owner == me)
        if access.department_id is None:
            return own
        if res.department_column is not None:
            # An unowned record is nobody's department's, as in the policy twin
            # (unowned records are reached by RBAC_UNOWNED_VISIBLE alone).
            dept = getattr(entity, res.department_column)
            return sa.or_(sa.and_(owner.is_not(None), dept.is_not(None),
                                  dept == access.department_id), own)
        # The department's members as a list of ids, not a subquery: the Access
        # already holds them (the policy twin decides from the same set), and a
        # planner can estimate and index an ``IN`` list, whereas ``IN (SELECT
        # ...)`` under an ``OR`` becomes a filter run on every row of the
        # workspace (PostgreSQL's hashed SubPlan), so a small department's page
        # walked the whole table (docs/query-plans.md).
        return sa.or_(own, _not_null_in(owner, sorted(access.department_user_ids)))
    return sa.false()


def _rule_criteria(access: Access, registry: Registry, res: Resource, action: str, rule: Rule,
                   entity: Any, membership_table: Any) -> sa.ColumnElement[bool]:
    """SQL twin of :func:`.policy._rule_matches`."""
    in_scope = [scope_criteria(access, res, scope, entity, membership_table)
                for scope in access.scopes_for(rule)]
    if (action == "view" and rule.effect == ALLOW and access.unowned_visible
            and res.owner_column is not None):
        in_scope.append(rarely(getattr(entity, res.owner_column).is_(None)))
    if rule.effect == ALLOW and res.parent is not None:
        parent_res = registry.get(res.parent)
        parent = parent_res.model
        pk = sa.inspect(parent).primary_key[0]
        reach = access if action == "view" else access.owned_only()
        visible_parents = sa.select(pk).where(
            record_criteria(reach, registry, parent_res, "view", parent, membership_table))
        fk = getattr(entity, res.parent_column)  # type: ignore[arg-type]
        in_scope.append(_not_null_in(fk, visible_parents.scalar_subquery()))
    return all_of(any_of(*in_scope), conditions.to_sql(entity, rule.conditions))


def _action_criteria(access: Access, registry: Registry, res: Resource, action: str,
                     entity: Any, membership_table: Any) -> sa.ColumnElement[bool]:
    """SQL twin of :func:`.policy._action_allowed`."""
    allows, denies = access.rules_for(res.name, action)
    if not allows:
        return sa.false()
    allowed = any_of(*(_rule_criteria(access, registry, res, action, r, entity, membership_table)
                       for r in allows))
    if denies:
        denied = any_of(*(_rule_criteria(access, registry, res, action, r, entity,
                                         membership_table) for r in denies))
        return all_of(allowed, sa.not_(denied))
    return allowed


def record_criteria(access: Access | None, registry: Registry, res: Resource, action: str,
                    entity: Any, membership_table: Any) -> sa.ColumnElement[bool]:
    """SQL twin of :func:`.policy.decide` for a record: the rows ``action`` may touch."""
    if access is None or not access.active or not access.in_plan(res):
        return sa.false()
    member = _member_criteria(access, registry, res, action, entity, membership_table)
    if res.workspace_column is None:
        # Single-tenant mode: every row is in the one workspace, nothing is shared.
        return member
    ws = getattr(entity, res.workspace_column)
    own = all_of(ws == access.workspace_id, member)
    shared = [all_of(ws == s.workspace_id,
                     *(conditions.to_sql(entity, s.permissions[(res.name, a)])
                       for a in sorted({"view", action})))
              for s in access.shares if s.covers(res, action)]
    if not shared:
        return own
    # As :func:`.policy._shared_allowed`: no unowned rows of another workspace.
    shared_member = _member_criteria(access.owned_only(), registry, res, action, entity,
                                     membership_table)
    return any_of(own, all_of(any_of(*shared), shared_member))


def _member_criteria(access: Access, registry: Registry, res: Resource, action: str,
                     entity: Any, membership_table: Any) -> sa.ColumnElement[bool]:
    """SQL twin of :func:`.policy._member_allowed` (the workspace test left out)."""
    if access.is_owner:
        return sa.true()
    view = _action_criteria(access, registry, res, "view", entity, membership_table)
    if action == "view":
        return view
    return all_of(view, _action_criteria(access, registry, res, action, entity,
                                         membership_table))


def referenced_resources(registry: Registry, statement: Any) -> list[Resource]:
    """Return the protected resources whose tables appear anywhere in ``statement``."""
    tables = registry.tables
    found: dict[str, Resource] = {}
    for element in sa.sql.visitors.iterate(statement):
        # ORM statements hold annotated copies of the Table: match by name.
        res = tables.get(element.fullname) if isinstance(element, sa.Table) else None
        if res is not None:
            found[res.name] = res
    return list(found.values())


def aliased_resources(registry: Registry, statement: Any) -> list[tuple[Any, Resource]]:
    """Return ``(aliased class, resource)`` for each explicit alias of a protected model."""
    tables = registry.tables
    found: dict[int, tuple[Any, Resource]] = {}
    for element in sa.sql.visitors.iterate(statement):
        if not isinstance(element, sa.sql.selectable.Alias):
            continue
        insp = element._annotations.get("parententity")
        if insp is None or not getattr(insp, "is_aliased_class", False):
            continue
        res = tables.get(getattr(element.element, "fullname", ""))
        if res is not None:
            found[id(insp.entity)] = (insp.entity, res)
    return list(found.values())


class StatementMemo:
    """What the listener remembers of statements, by SQL cache key.

    ``tables`` and ``filtered_tables`` hold (protected resources, aliases
    one of them, tables out of the criteria's reach) of a statement and of a statement with the filter's
    options added (see :func:`.listener.tables_of`); ``columns`` holds the columns a
    statement names (see :func:`.fields.check_statement`). Registering a
    resource clears them all.
    """

    def __init__(self) -> None:
        self.tables: dict[Any, tuple[list[Resource], bool, tuple[str, ...]]] = {}
        self.filtered_tables: dict[Any, tuple[list[Resource], bool, tuple[str, ...]]] = {}
        self.columns: dict[Any, Any] = {}

    def clear(self) -> None:
        self.tables.clear()
        self.filtered_tables.clear()
        self.columns.clear()


# -- where the criteria cannot reach ---------------------------------------------------------
#
# ``with_loader_criteria`` reaches the entities a SELECT names: its columns
# (``select(func.sum(Deal.amount))``), ``select_from`` and ``join`` targets.
# A protected table that is in a SELECT's FROM list only because the WHERE
# clause mentions it (``select(func.count()).where(Deal.id > 0)``), through
# ``exists().where(...)`` (``SELECT *``), or through a Core ``Table`` or alias
# in a subquery, is read with no criteria at all. :func:`unreached_tables`
# finds such tables so that the listener refuses the statement (fail closed).

_NESTED = (sa.sql.selectable.Select, sa.sql.selectable.CompoundSelect)


def _children(element: Any) -> Any:
    """Walk ``element``'s subtree without entering tables or nested SELECTs."""
    stack = list(element.get_children())
    while stack:
        el = stack.pop()
        yield el
        if not isinstance(el, (sa.sql.expression.TableClause, *_NESTED)):
            stack.extend(el.get_children())


def _entity_names(insp: Any) -> set[str]:
    """The tables of a mapped entity, or the name of an ORM alias (it gets its own criteria)."""
    if getattr(insp, "is_aliased_class", False):
        return {str(insp.selectable.name)}
    mapper = getattr(insp, "mapper", None)
    return {t.fullname for t in mapper.tables if hasattr(t, "fullname")} if mapper else set()


def _covered(select: Any) -> set[str]:
    """Tables (and ORM aliases) whose criteria ``select`` receives: its column,
    select_from and join entities."""
    covered: set[str] = set()
    for element in (*select._raw_columns, *select._from_obj,
                    *(j[0] for j in select._setup_joins if hasattr(j[0], "get_children"))):
        for el in (element, *_children(element)):
            covered |= _entity_names(getattr(el, "_annotations", {}).get("parententity"))
    for join in select._setup_joins:
        covered |= _entity_names(sa.inspect(join[0], raiseerr=False))
        for on in join[:2]:  # join(Campaign.leads), join(Lead, Campaign.leads)
            covered |= _relationship_parent(on)
    return covered


def _relationship_parent(element: Any) -> set[str]:
    """The left side a join on a relationship attribute brings into the FROM: the ORM
    gives it its criteria too (``join(Campaign.leads)`` reads campaign filtered)."""
    prop = getattr(element, "property", None)
    if not isinstance(element, QueryableAttribute) or not isinstance(prop, RelationshipProperty):
        return set()
    return _entity_names(element.parent)


def _read_tables(select: Any, covered: frozenset[str]) -> set[str]:
    """Names of the tables ``select`` itself reads: named as FROMs, joined, or implied by a
    column anywhere in its clauses (nested SELECTs excepted; covered ORM aliases excepted;
    a Core alias stands for its table).

    Walked on the statement as written: the ORM's ``get_final_froms`` would add the
    joined eager loads, whose aliases the criteria do reach.
    """
    names: set[str] = set()
    stack = list(select.get_children())
    seen: set[int] = set()
    while stack:
        el = stack.pop()
        if id(el) in seen or isinstance(el, _NESTED):
            continue
        seen.add(id(el))
        if isinstance(el, sa.sql.expression.ColumnClause) and el.table is not None:
            stack.append(el.table)
        if isinstance(el, sa.sql.expression.Alias) and not isinstance(
                el, (sa.sql.expression.Subquery, sa.sql.expression.CTE)):
            if str(el.name) not in covered:
                stack.append(el.element)  # a Core alias reads its table
            continue
        if isinstance(el, sa.Table):
            names.add(el.fullname)
        elif not isinstance(el, (sa.sql.expression.TableClause, sa.sql.expression.Subquery,
                                 sa.sql.expression.CTE)):
            stack.extend(el.get_children())
    return names


def unreached_tables(registry: Registry, statement: Any, outer: frozenset[str] = frozenset(),
                     ) -> set[str]:
    """Protected tables that ``statement`` reads where the loader criteria cannot reach.

    A nested SELECT may correlate a table its enclosing SELECT covers.
    """
    if isinstance(statement, sa.sql.selectable.CompoundSelect):
        return set().union(*(unreached_tables(registry, s, outer) for s in statement.selects))
    if not isinstance(statement, sa.sql.selectable.Select):
        return set()
    covered = frozenset(outer | _covered(statement))
    bad = {name for name in _read_tables(statement, covered)
           if name in registry.tables and name not in covered}
    for el in _children(statement):
        if isinstance(el, _NESTED):
            bad |= unreached_tables(registry, el, covered)
    return bad
