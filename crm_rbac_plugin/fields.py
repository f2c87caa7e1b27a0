"""Field rules at the data layer: hidden columns never reach a member's code.

A role's field rule ``hidden`` removes a column of a resource from what the
member may see. Pages, exports and APIs leave such fields out, but a page
that forgets to (an aggregate, a title, an ``aria-label``) would leak them,
so the rule is enforced where rows are loaded, as row rules are:

* **Loaded records.** An instance of a protected model loaded while a member
  is in force keeps no hidden value: the ``load`` and ``refresh`` instance
  events turn each hidden attribute into a *deferred* one (value dropped,
  an instance-level loader installed). Reading it later emits a column load,
  which the ``do_orm_execute`` listener refuses for the member with
  :class:`~.errors.PermissionDenied` (a 403), and serves normally inside
  ``rbac.system()``. So a forgotten template fails closed instead of leaking.
  Such attributes are remembered on the instance; when the session expires
  the instance (a commit), they, and those hidden from the member in force,
  stay deferred rather than expired, so a reload of the other attributes
  never brings them back.
* **The identity map.** A member's statement over a resource with hidden
  fields runs with ``populate_existing``: an instance already in the session
  (loaded earlier in the system context) is reloaded and hidden again, never
  handed over as it is. Unflushed changes of such instances are overwritten
  by the reload, as ``populate_existing`` does; autoflush (on by default)
  writes them first. ``Session.get()`` of an instance already in the identity
  map emits no statement and is not covered, as for row rules.
* **Statements.** A member's statement that names a hidden column in its
  columns, WHERE, ORDER BY, GROUP BY, HAVING, a join condition or an
  aggregate is refused with :class:`~.errors.PermissionDenied` (403): its
  result would reveal the values (a per-stage count reveals the stage). A
  plain entity select (``select(Lead)``) is allowed; its hidden columns are
  dropped on load as above. The criteria the plugin adds itself (role and
  sharing conditions, which may test a field hidden from the same member)
  are trusted and not inspected: only the host's statement is. The walk is
  remembered by the statement's SQL cache key and skipped altogether when
  the member has no hidden field on the statement's resources.
* **Decisions.** :func:`readable` gives the policy (``can()``, the flush
  guard) the stored values of a record's hidden attributes, read in the
  system context without putting them on the instance, so that a condition
  on a hidden field decides the same way in Python as in SQL.

:func:`label` is a record's display text: its label field when the member
may see it, else ``"<Model> #<id>"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState

from .context import SYSTEM, current_override
from .errors import PermissionDenied
from .identity import acting_access
from .policy import Access

if TYPE_CHECKING:
    from .interface import RBACProtocol
    from .registry import Registry, Resource

#: Key under which an instance remembers the attributes hidden from a member.
_MARK = "_rbac_hidden_attrs"

#: Column walks by statement cache key: (resource name, column key) pairs named.
ColumnRefs = tuple[tuple[str, str], ...]


# -- the member in force --------------------------------------------------------

def member_in_force() -> Access | None:
    """Return the member whose rights apply now, or None (system context or none known).

    Reads only what is already resolved (an explicit override, or the
    request's access cached by the query listener): the instance events run
    in the middle of loading rows and must not query.
    """
    ctx = current_override()
    if ctx is SYSTEM:
        return None
    if isinstance(ctx, Access):
        return ctx
    access = acting_access()
    return access if isinstance(access, Access) else None


#: Key of a load's :attr:`QueryContext.attributes`: the member in force for its rows.
_LOAD_KEY = "rbac_member_in_force"
_UNASKED = object()


def _member_of_load(context: Any) -> Access | None:
    """:func:`member_in_force` for the rows of one load, asked once per load.

    Without ``yield_per`` the ORM turns every fetched row into an instance in
    one pass, before the caller sees any of them, so the member cannot change
    between its rows. With ``yield_per`` the caller runs between chunks (and
    may enter or leave a context): each row asks again.
    """
    attributes = getattr(context, "attributes", None)
    if attributes is None or context.yield_per:
        return member_in_force()
    access = attributes.get(_LOAD_KEY, _UNASKED)
    if access is _UNASKED:
        access = attributes[_LOAD_KEY] = member_in_force()
    return access  # type: ignore[no-any-return]


def hides_any(access: Access, resources: Iterable[Resource]) -> bool:
    """Whether ``access`` hides a field of one of ``resources`` (the rare case)."""
    return bool(access.hidden_fields) and any(access.hidden(r.name) for r in resources)


# -- statements -----------------------------------------------------------------

def _walk(element: Any) -> Iterator[Any]:
    """Yield the elements of ``element`` without descending into tables.

    A table's children are all its columns: an entity select would otherwise
    look as if it named every column.
    """
    stack = [element]
    seen: set[int] = set()
    while stack:
        el = stack.pop()
        if id(el) in seen:
            continue
        seen.add(id(el))
        yield el
        if isinstance(el, sa.sql.expression.TableClause):
            continue
        stack.extend(el.get_children())


def _base_table(selectable: Any) -> Any:
    while isinstance(selectable, sa.sql.expression.Alias):
        selectable = selectable.element
    return selectable


def column_references(registry: Registry, statement: Any) -> ColumnRefs:
    """Return the ``(resource, column)`` pairs that ``statement`` names explicitly."""
    tables = registry.tables
    found: dict[tuple[str, str], None] = {}
    for el in _walk(statement):
        if not isinstance(el, sa.sql.expression.ColumnClause):
            continue
        # A subquery's column stands for the table columns it proxies.
        for col in el.proxy_set:
            table = _base_table(getattr(col, "table", None))
            res = tables.get(getattr(table, "fullname", ""))
            if res is not None and isinstance(col, sa.Column):
                found[(res.name, col.key)] = None
    return tuple(found)


def check_statement(rbac: RBACProtocol, access: Access | None, state: ORMExecuteState,
                    involved: list[Resource]) -> None:
    """Refuse a member's statement naming a hidden column; reload shared instances.

    Cheap when the member hides nothing on ``involved`` (the common case).
    """
    if access is None or not hides_any(access, involved):
        return
    refs = _cached_references(rbac, state.statement)
    named = sorted(f"{res}.{col}" for res, col in refs if col in access.hidden(res))
    if named:
        raise PermissionDenied(
            f"The field(s) {', '.join(named)} are hidden from you: a statement may not "
            "select, filter, sort, group or aggregate by them.", resource=named[0].split(".")[0])
    if state.is_select:
        state.update_execution_options(populate_existing=True)


def _cached_references(rbac: RBACProtocol, statement: Any) -> ColumnRefs:
    memo: dict[Any, ColumnRefs] = rbac.statements.columns
    key = statement._generate_cache_key()
    refs = memo.get(key.key) if key is not None else None
    if refs is None:
        refs = column_references(rbac.registry, statement)
        if key is not None and len(memo) < 10_000:
            memo[key.key] = refs
    return refs


def check_column_load(rbac: RBACProtocol, state: ORMExecuteState) -> None:
    """Refuse a member's load of hidden attributes of an instance (403).

    Hidden attributes are deferred on the member's instances, so reading one
    emits this load; inside ``rbac.system()`` it runs as usual.
    """
    mapper = state.bind_mapper
    res = rbac.registry.for_model(mapper.class_) if mapper is not None else None
    if res is None:
        return
    access = member_in_force()
    hidden = access.hidden(res.name) if access is not None else frozenset()
    if not hidden:
        return
    props = state.statement._compile_options._only_load_props
    wanted = set(props) if props else {a.key for a in mapper.column_attrs}
    if wanted & hidden and not (wanted - hidden - _pk_keys(mapper)):
        raise PermissionDenied(
            f"The field(s) {', '.join(sorted(f'{res.name}.{k}' for k in wanted & hidden))} "
            "are hidden from you.", resource=res.name, action="view")


def _pk_keys(mapper: Any) -> set[str]:
    return {mapper.get_property_by_column(c).key for c in mapper.primary_key}


# -- instances ------------------------------------------------------------------

def watch(rbac: RBACProtocol, model: type) -> None:
    """Hide the member's hidden attributes on every instance of ``model`` they load.

    The listeners receive the instance's state (``raw=True``): an expired
    instance may already be garbage-collected.
    """
    def on_load(state: Any, context: Any, attrs: Any = None) -> None:
        access = _member_of_load(context)
        if access is None or not access.hidden_fields:
            return
        res = rbac.registry.for_model(state.class_)
        if res is not None and access.hidden(res.name):
            _hide(state, access.hidden(res.name))

    def on_expire(state: Any, attrs: Iterable[str] | None) -> None:
        # Attributes hidden when loaded, or from the member expiring the instance
        # (a commit in their request), stay deferred instead of expired: a reload
        # of the others must not bring them back.
        keys = set(state.dict.get(_MARK, ()))
        access = member_in_force()
        if access is not None and access.hidden_fields:
            res = rbac.registry.for_model(state.class_)
            keys |= access.hidden(res.name) if res is not None else frozenset()
        if keys:
            _hide(state, keys if attrs is None else keys & set(attrs))

    event.listen(model, "load", on_load, propagate=True, raw=True)
    event.listen(model, "refresh", on_load, propagate=True, raw=True)
    event.listen(model, "expire", on_expire, propagate=True, raw=True)


def _hide(state: Any, keys: Iterable[str]) -> None:
    """Drop the values of ``keys`` and make them load on access (deferred)."""
    attrs = state.mapper.column_attrs
    marked = set(state.dict.get(_MARK, ()))
    for key in keys:
        if key not in attrs:
            continue
        state.dict.pop(key, None)
        state.expired_attributes.discard(key)
        attrs[key]._deferred_column_loader(state, state.dict, None)  # load on access
        marked.add(key)
    state.dict[_MARK] = frozenset(marked)


# -- decisions ------------------------------------------------------------------

class _Stored:
    """A record as the policy reads it: its loaded values, and the stored ones of
    the attributes it does not hold (read unfiltered, never set on the instance)."""

    def __init__(self, record: Any, state: Any, keys: set[str]) -> None:
        self._record, self._state, self._keys = record, state, keys
        self._values: dict[str, Any] | None = None

    def __getattr__(self, name: str) -> Any:
        if name not in self._keys:
            return getattr(self._record, name)
        if self._values is None:
            self._values = stored_values(self._state, sorted(self._keys))
        return self._values[name]


def stored_values(state: Any, keys: list[str]) -> dict[str, Any]:
    """Read columns ``keys`` of a persistent object's row, unfiltered and without flushing."""
    mapper, session = state.mapper, state.session
    stmt = sa.select(*(mapper.column_attrs[k].class_attribute for k in keys)).where(
        *(col == value for col, value in zip(mapper.primary_key, state.identity, strict=True)))
    with session.no_autoflush:
        row = session.execute(stmt, execution_options={"rbac_bypass": True}).first()
    return dict(zip(keys, row, strict=True)) if row is not None else dict.fromkeys(keys)


def readable(rbac: RBACProtocol, record: Any) -> Any:
    """Return ``record`` as the policy may read it, hidden attributes included.

    A persistent instance whose hidden attributes (deferred as hidden, or
    hidden from the member in force) are not loaded is wrapped so that they
    are read from the database; anything else is returned as is.
    """
    # The instance state as ``sa.inspect`` finds it, without the registry walk
    # it makes per call: ``rbac.can`` on a record starts here.
    state = getattr(record, "_sa_instance_state", None)
    if state is None or not getattr(state, "is_instance", False):
        return record
    keys = set(state.dict.get(_MARK, ()))
    access = member_in_force()
    res = rbac.registry.for_model(type(record)) if access is not None else None
    if res is not None:
        keys |= access.hidden(res.name)  # type: ignore[union-attr]
    if not keys or not state.has_identity or state.session is None:
        return record
    keys &= state.unloaded
    return _Stored(record, state, keys) if keys else record


# -- forms ----------------------------------------------------------------------

def hidden_attributes(model: type, hidden: Iterable[str]) -> frozenset[str]:
    """``hidden`` columns of ``model`` plus the relationships that read one of them."""
    hidden = frozenset(hidden)
    mapper = sa.inspect(model)
    related = {rel.key for rel in mapper.relationships
               if any(mapper.get_property_by_column(c).key in hidden
                      for c in rel.local_columns if c in mapper.columns.values())}
    return hidden | related


class VisibleView:
    """A record as a form may read it: hidden attributes look absent.

    WTForms and Flask-Admin fill a form from ``obj`` with ``hasattr`` /
    ``getattr``; through this view a hidden field is simply not there, so
    the form neither shows it nor trips over its refusal.
    """

    def __init__(self, record: Any, hidden: Iterable[str]) -> None:
        self._record = record
        self._absent = hidden_attributes(type(record), hidden)

    def __getattr__(self, name: str) -> Any:
        if name in self._absent:
            raise AttributeError(name)
        return getattr(self._record, name)


# -- labels ---------------------------------------------------------------------

def required_unset(record: Any, names: Iterable[str]) -> list[str]:
    """The ``names`` of ``record``'s columns the database requires (NOT NULL, no default
    of any kind) that hold no value: a new record cannot be stored without them."""
    columns = sa.inspect(type(record)).columns
    out = []
    for name in sorted(names):
        column = columns.get(name)
        if (column is not None and not column.nullable and column.default is None
                and column.server_default is None and not column.primary_key
                and getattr(record, name, None) is None):
            out.append(name)
    return out


def fill_defaults(record: Any) -> None:
    """Give each empty column of a new ``record`` its Python-side default, as the
    INSERT would.

    The policy judges the row that is stored: a deny on ``status = "new"`` must
    see the ``"new"`` an omitted status becomes, or leaving a field out would
    create what sending its default is refused. Scalar defaults and callables
    that need no execution context are applied; SQL expressions and server
    defaults are not known before the INSERT and are left to it.
    """
    state = sa.inspect(record)
    for prop in state.mapper.column_attrs:
        column = prop.columns[0]
        default = getattr(column, "default", None)
        if default is None or state.dict.get(prop.key) is not None or column.primary_key:
            continue
        if default.is_scalar:
            value = default.arg
        elif default.is_callable:
            try:
                value = default.arg(None)
            except Exception:  # noqa: BLE001 (a default that needs the INSERT's context)
                continue
        else:
            continue
        setattr(record, prop.key, value)


def label(record: Any, field: str | None = None, hidden: Iterable[str] | None = None) -> str:
    """Return ``record``'s label field as text, or ``"<Model> #<id>"`` when it is hidden.

    ``field`` defaults to the model's ``__rbac_label__``; ``hidden`` to the
    fields the member in force may not see (through the current app's
    extension). A field deferred as hidden and refused on reading counts as
    hidden too. Never raises for a hidden field, so a model's ``__str__`` may
    use it.
    """
    field = field or getattr(type(record), "__rbac_label__", None)
    if hidden is None:
        hidden = _hidden_of(record)
    if field is not None and field not in hidden:
        try:
            value = getattr(record, field)
        except PermissionDenied:
            pass
        else:
            return "" if value is None else str(value)
    state = sa.inspect(record, raiseerr=False)
    ident = state.identity[0] if state is not None and state.identity else getattr(
        record, "id", None)
    return f"{type(record).__name__} #{ident}" if ident is not None else type(record).__name__


def _hidden_of(record: Any) -> frozenset[str]:
    access = member_in_force()
    if access is None or not access.hidden_fields or not has_app_context():
        return frozenset()
    state = current_app.extensions.get("rbac")
    res = state.rbac.registry.for_model(type(record)) if state is not None else None
    return access.hidden(res.name) if res is not None else frozenset()


def record_label(rbac: RBACProtocol, record: Any, field: str | None = None) -> str:
    """:func:`label` with ``rbac``'s field rules for the member in force (``RBAC.label``)."""
    res = rbac.registry.for_model(type(record))
    access = member_in_force()
    return label(record, field, access.hidden(res.name)
                 if access is not None and res is not None else ())
