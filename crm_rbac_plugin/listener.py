"""The session's listeners: the query filter and the flush hooks.

The extension registers these functions on its session with ``rbac`` bound.
:func:`on_orm_execute`, the ``do_orm_execute`` listener, adds
``with_loader_criteria`` options built by :mod:`.query` for every protected
model a statement touches, and refuses the statement shapes whose rows
cannot be filtered (ORM INSERT, UPDATE by primary key with a parameter list,
``from_statement(text(...))``, Core statements) outside the system context.
Writes made by flush never pass there: :func:`before_flush` checks them
(:mod:`.inputs`, then :mod:`.guard`), and :func:`after_flush` bumps the
policy versions of the workspaces whose access changed.

The query filter runs for every query of the app, so it does no more than it
must: column loads and ``rbac_bypass`` statements return at once, the common
one-model statement looks its tables up by the SQL cache key SQLAlchemy
computes anyway, and the options are built once per member, action and set
of tables (kept on the immutable, cached :class:`~.policy.Access`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.orm.context import FromStatement
from sqlalchemy.orm.util import LoaderCriteriaOption
from sqlalchemy.sql.cache_key import NO_CACHE

from . import fields, guard, inputs
from .context import SYSTEM
from .errors import PermissionDenied
from .policy import Access
from .query import aliased_resources, referenced_resources, unreached_tables
from .registry import Registry, Resource

if TYPE_CHECKING:
    from .interface import RBACProtocol

#: Statements remembered per memo; beyond it, statements are walked every time.
MEMO_SIZE = 10_000


def on_orm_execute(rbac: RBACProtocol, state: ORMExecuteState) -> None:
    """Add the member's criteria to every statement touching protected tables.

    Statement shapes whose rows cannot be filtered (ORM INSERT, UPDATE by
    primary key with a parameter list, ``from_statement(text(...))``, Core
    statements) are refused outside the system context instead.
    """
    original = state.statement
    # Read once: ORMExecuteState derives each flag again on every read.
    is_update = original.is_dml and original.is_update
    is_delete = original.is_dml and original.is_delete
    execution_options = state.execution_options
    if not original.is_select:
        guard.bump_for_statement(rbac, state.session, original,
                                 execution_options.get(guard.POLICY_WORKSPACES))
    if execution_options.get("rbac_bypass"):
        return
    if state.is_column_load:
        fields.check_column_load(rbac, state)  # hidden attributes stay unread
        return
    registry = rbac.registry
    primary = getattr(state.bind_mapper, "class_", None)
    first = registry.for_model(primary) if primary is not None else None
    if first is not None and not (original.is_select and state.is_orm_statement
                                  and not isinstance(original, FromStatement)):
        first = None
    if first is None:
        involved, has_aliases, unreached = tables_of(rbac, original)
        if not involved:
            return
    if is_update:
        inputs.check_update_numbers(registry, primary, original, state.parameters)
    ctx = rbac.resolve_context()
    if ctx is SYSTEM:
        return
    access: Access | None = ctx
    action = ("edit" if is_update else "delete" if is_delete
              else execution_options.get("rbac_action", "view"))
    statement = None
    if first is not None:
        # The common case, one protected model (the bind mapper's): add its options,
        # then look the tables up by the cache key of the result, which SQLAlchemy
        # memoises and reuses for its SQL cache, instead of a key of our own.
        statement = original.options(*options(rbac, access, action, primary, [first]))
        involved, has_aliases, unreached = tables_of(rbac, original, statement)
        if has_aliases or len(involved) != 1 or involved[0].name != first.name:
            statement = None  # other protected tables too: the general case
    if statement is None or unreached:
        # The common case is an ORM SELECT: only unreached tables can refuse it.
        refuse_unfilterable(state, involved, unreached)
    fields.check_statement(rbac, access, state, involved)
    if is_update:
        check_bulk_update(rbac, access, state, primary)
    if statement is None:
        statement = filtered_statement(rbac, access, state, action, primary, involved,
                                       has_aliases)
    if (is_update or is_delete) and access is not None:
        statement = own_workspace_only(registry, access, primary, statement)
    state.statement = statement


def filtered_statement(rbac: RBACProtocol, access: Access | None, state: ORMExecuteState,
                       action: str, primary: Any, involved: list[Resource],
                       has_aliases: bool) -> Any:
    """Return ``state.statement`` with criteria for every protected model it touches.

    The general case of :func:`on_orm_execute`: several protected tables, or
    explicit aliases, which get criteria written for the alias itself (fixed
    criteria of the class are not adapted to an alias by SQLAlchemy).
    """
    opts = list(options(rbac, access, action, primary, involved))
    for alias, res in (aliased_resources(rbac.registry, state.statement)
                       if has_aliases else ()):
        opts.append(with_loader_criteria(
            alias, rbac.criteria(access, res, "view", entity=alias)))
    return state.statement.options(*opts)


def own_workspace_only(registry: Registry, access: Access, primary: Any, statement: Any) -> Any:
    """Restrict a bulk UPDATE or DELETE to the member's own workspace.

    A record shared with them changes one at a time, through the flush guard
    (which keeps its owner) and the audit trail of both workspaces.
    """
    res = registry.for_model(primary) if primary is not None else None
    if res is None or res.workspace_column is None:
        return statement
    return statement.where(getattr(primary, res.workspace_column) == access.workspace_id)


class KeyedCriteria(LoaderCriteriaOption):
    """A ``with_loader_criteria`` option that computes its part of the SQL cache key once.

    SQLAlchemy computes the cache key of every statement it executes, and
    walks each option's criteria again to do so: on the demo's lead pages,
    64,000-356,000 instructions per request (``bench/instructions.py``),
    more than the rest of the plugin's work. :func:`options` builds the options once per member,
    action and set of tables and keeps them on the immutable, cached Access,
    so an option's criteria and bound values never change. The option keeps
    its key and its bound parameters (in the order the walk finds them) and
    hands both out again. It computes the key with an anon map of its own,
    so the names the key gives the criteria's anonymous elements depend on
    the criteria alone, whatever statement carries the option; SQLAlchemy
    matches a cached statement's parameters by position, and every statement
    carrying equal options lists theirs in the same order. A criteria that
    cannot be cached (``NO_CACHE``) leaves every statement carrying it uncached.
    """

    __slots__ = ("_held_key",)
    #: The key is LoaderCriteriaOption's (SQLAlchemy looks these up in the class's own dict).
    _traverse_internals = LoaderCriteriaOption._traverse_internals

    def __init__(self, entity: Any, where_criteria: Any) -> None:
        super().__init__(entity, where_criteria)
        self._held_key: tuple[Any, tuple[Any, ...], bool] | None = None

    def _gen_cache_key(self, anon_map: Any, bindparams: list[Any]) -> Any:
        held = self._held_key
        if held is None:
            own_map, own_params = anon_map.__class__(), []
            key = super()._gen_cache_key(own_map, own_params)
            held = self._held_key = (key, tuple(own_params), NO_CACHE in own_map)
        key, params, uncacheable = held
        if uncacheable:
            anon_map[NO_CACHE] = True
        bindparams.extend(params)
        return key


def options(rbac: RBACProtocol, access: Access | None, action: str, primary: Any,
            involved: list[Resource]) -> tuple[Any, ...]:
    """Return the ``with_loader_criteria`` options for a statement's protected models.

    Criteria for the named models and every protected model reachable
    from them by relationships (they propagate to lazy loads and joined
    eager loads of those relationships), built once per member, action
    and set of tables and kept on the (immutable, cached) Access:
    building them, and above all letting SQLAlchemy walk every model's
    criteria for the cache key of every execution, cost more than a
    small query. The options are :class:`KeyedCriteria`, which walk their
    criteria for the cache key once.
    """
    names = ((involved[0].name,) if len(involved) == 1
             else tuple(sorted(r.name for r in involved)))
    key = ("__options__", action, primary, names)
    cached = access.sql_cache.get(key) if access is not None else None
    if cached is None:
        cached = tuple(
            KeyedCriteria(res.model, rbac.criteria(
                access, res, action if res.model is primary else "view"))
            for res in rbac.registry.reachable(involved))
        if access is not None:
            access.sql_cache[key] = cached
    return cached


def tables_of(rbac: RBACProtocol, statement: Any, filtered: Any = None,
              ) -> tuple[list[Resource], bool, tuple[str, ...]]:
    """Return the protected resources ``statement`` touches, whether it aliases one, and
    the protected tables it reads where the criteria cannot reach (:func:`.query.unreached_tables`).

    Walking the whole statement tree (twice: tables, then aliases) costs
    more than a small query. Equal SQL cache keys mean equal tables and
    aliases, so the answer is remembered by key: the key of ``filtered``
    (``statement`` with the filter's options added, whose key SQLAlchemy
    memoises and reuses to execute it) when given, else that of
    ``statement``. Only statements that do alias a protected model are
    walked again for their alias objects.
    """
    memo = rbac.statements.tables if filtered is None else rbac.statements.filtered_tables
    key = (statement if filtered is None else filtered)._generate_cache_key()
    hit = memo.get(key.key) if key is not None else None
    if hit is None:
        involved = referenced_resources(rbac.registry, statement)
        hit = (involved, bool(involved and aliased_resources(rbac.registry, statement)),
               tuple(sorted(unreached_tables(rbac.registry, statement))) if involved else ())
        if key is not None and len(memo) < MEMO_SIZE:
            memo[key.key] = hit
    return hit


def refuse_unfilterable(state: ORMExecuteState, involved: list[Resource],
                        unreached: tuple[str, ...] = ()) -> None:
    """Refuse a statement on ``involved`` whose rows the criteria cannot filter.

    ``unreached`` names protected tables the statement reads out of the criteria's
    reach (:func:`.query.unreached_tables`): an aggregate over them would count
    every row of the database.
    """
    if not state.is_orm_statement:
        reason = "Core statements on protected tables run only inside rbac.system()"
    elif state.is_insert:
        reason = ("ORM INSERT statements skip the write guard; add objects to the "
                  "session instead")
    elif state.is_update and isinstance(state.parameters, list):
        reason = "UPDATE by primary key with a parameter list cannot be filtered"
    elif isinstance(state.statement, FromStatement):
        reason = "from_statement() with textual SQL cannot be filtered"
    elif not (state.is_select or state.is_update or state.is_delete):
        reason = "this statement cannot be filtered"
    elif unreached:
        reason = (f"the table(s) {', '.join(unreached)} appear only in a WHERE clause, an "
                  "exists() or a Core subquery, where the query filter cannot reach them; "
                  "select from the entity (select_from, join, or select(Model.id))")
    else:
        return
    names = ", ".join(r.name for r in involved)
    raise PermissionDenied(f"{reason} ({names}); use rbac.system() for trusted code.")


def check_bulk_update(rbac: RBACProtocol, access: Access | None, state: ORMExecuteState,
                      model: Any) -> None:
    """Refuse bulk UPDATEs of the columns that decide who may see a row.

    Their new values cannot be checked row by row in SQL; per-record
    updates go through the flush guard instead.
    """
    res = rbac.registry.for_model(model) if model is not None else None
    if res is None:
        return
    keys: set[str] = set()
    for col in getattr(state.statement, "_values", None) or {}:
        keys.add(getattr(col, "key", str(col)))
    params = state.parameters
    if isinstance(params, dict):
        keys.update(params)
    elif isinstance(params, list):
        for p in params:
            keys.update(p)
    guarded = {res.workspace_column}  # never, not even for an Owner
    if access is None or not access.is_owner:
        guarded |= {res.owner_column, res.department_column, res.parent_column}
    if access is not None and not access.is_owner:
        guarded.update(access.unwritable(res.name))
        for (name, _), rules in access.rules.items():
            if name == res.name:
                guarded.update(c[0] for r in rules for c in r.conditions)
    touched = keys & {k for k in guarded if k}
    if touched:
        raise PermissionDenied(
            f"Bulk updates of {', '.join(sorted(touched))} on {res.name} are not allowed; "
            "change records one by one.", resource=res.name, action="edit")


def before_flush(rbac: RBACProtocol, db_session: Session, flush_context: Any, instances: Any) -> None:
    """Check the flushed values, then every write, and note the policy changes."""
    inputs.check_numbers(rbac.registry, db_session)
    guard.check_flush(rbac, db_session)
    guard.collect_policy_changes(rbac, db_session)


def after_flush(rbac: RBACProtocol, db_session: Session, flush_context: Any) -> None:
    """Bump the policy version of the workspaces whose access the flush changed."""
    guard.bump_policy_versions(rbac, db_session)


def after_rollback(db_session: Session) -> None:
    """Forget the policy changes of the rolled back transaction."""
    db_session.info.pop("rbac_changed", None)
