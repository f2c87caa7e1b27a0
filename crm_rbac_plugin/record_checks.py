"""Compiled record-level decisions: :func:`.policy.allowed` for one (resource, action).

``rbac.can(action, resource, record)`` is asked for every record a page shows
a button for. :func:`.policy.allowed` re-reads the member's rules, scopes and
visibility cap on every call; none of them changes during the life of an
:class:`~.policy.Access` (it is immutable), so :func:`compile_check` turns
them once into a :class:`RecordCheck`, kept on the Access by (resource, action).

A check reads the record's loaded values straight from the instance's
``__dict__`` (where SQLAlchemy keeps them) and answers True or False only
when every value the rules read is loaded, the record is an instance of the
resource's model, and the record belongs to the member's workspace. Anything
else answers None, and the caller asks :func:`.policy.allowed` (with the
hidden-field reads of :func:`.fields.readable`):

* a value that is not loaded (expired, deferred, hidden from a member): the
  full path reads it as it always did;
* a record of another workspace (sharing agreements, rule 7);
* a child record whose parent decides (an allow whose own scopes miss, on a
  resource with a parent): the full path loads the parent.

The rules are :func:`.policy.allowed`'s, step for step and in the same
order: ``view`` first, then the action; in each, any matching deny refuses,
then the first matching allow grants; a rule matches when the record is in
one of its scopes (after the visibility cap) or, for a ``view`` allow,
unowned with ``unowned_visible`` set, and every clause of its condition
holds. ``tests/test_record_checks.py`` checks the two agree over random
members, rules and records.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import base as orm_base
from sqlalchemy.orm import instrumentation

from . import conditions
from .policy import ALLOW, Access
from .registry import Registry, Resource

#: A compiled check: True or False, or None when :func:`.policy.allowed` must decide.
RecordCheck = Callable[[Any], "bool | None"]

#: One rule, compiled: (everyone, owner ids in scope besides the member, the
#: member's own records in scope, department id to match through the
#: department column (None: no such scope), unowned records match, the
#: condition's fields, its clauses, whether an allow may reach the record
#: through its parent).
_Compiled = tuple[bool, frozenset[Any], bool, Any, bool, tuple[str, ...],
                  tuple[conditions.Clause, ...], bool]

_NO_DEPARTMENT: Any = object()


def _undecided(record: Any) -> bool | None:
    return None


def _refused(record: Any) -> bool | None:
    return False


def _plain_dict(model: type) -> bool:
    """Whether the model's instances keep their values in ``__dict__`` (the default)."""
    manager = instrumentation.manager_of_class(model)
    return manager is not None and manager.dict_getter() is orm_base.instance_dict


def _union(a: frozenset[Any], b: frozenset[Any]) -> frozenset[Any]:
    """``a | b`` without copying ``b`` (a department's member ids) when ``a`` is empty."""
    return a | b if a else b


def _compile_rule(access: Access, res: Resource, action: str, rule: Any) -> _Compiled:
    """One rule as :func:`.policy._rule_matches` applies it to ``access``."""
    everyone, own, extra, dept = False, False, frozenset(), _NO_DEPARTMENT
    for scope in access.scopes_for(rule):
        if scope == "all":
            everyone = True
        elif res.owner_column is None or scope not in ("own", "team", "department"):
            continue  # matches no record (see policy.scope_matches)
        elif scope == "own":
            own = True
        elif scope == "team":
            own, extra = True, _union(extra, access.team_user_ids)
        elif res.department_column is not None:
            own, dept = True, access.department_id
        else:
            own, extra = True, _union(extra, access.department_user_ids)
    unowned = (action == "view" and rule.effect == ALLOW and access.unowned_visible
               and res.owner_column is not None)
    parent = rule.effect == ALLOW and res.parent is not None
    fields = tuple(dict.fromkeys(f for f, op, _ in rule.conditions if op != "never"))
    return (everyone, extra, own, dept, unowned, fields, rule.conditions, parent)


def compile_check(access: Access, registry: Registry, resource: str, action: str) -> RecordCheck:
    """Build the check of ``action`` on records of ``resource`` for ``access``.

    Raises :class:`~.errors.UnknownResource` for an unknown resource or
    action, as :func:`.policy.allowed` does.
    """
    res = registry.check_action(resource, action)
    if not access.active or not access.in_plan(res):
        return _refused
    model = res.model
    if model is None or not _plain_dict(model):
        return _undecided
    passes = tuple(
        (tuple(_compile_rule(access, res, act, r) for r in denies),
         tuple(_compile_rule(access, res, act, r) for r in allows))
        for act in (("view",) if action == "view" else ("view", action))
        for allows, denies in (access.rules_for(res.name, act),))
    return _make_check(access, res, model, passes)


def _make_check(access: Access, res: Resource, model: type,
                passes: tuple[tuple[tuple[_Compiled, ...], tuple[_Compiled, ...]], ...],
                ) -> RecordCheck:
    """The closure of :func:`compile_check`: every value it reads is bound here."""
    ws_col, ws, uid = res.workspace_column, access.workspace_id, access.user_id
    owner_col, dept_col, parent_col = res.owner_column, res.department_column, res.parent_column
    is_owner = access.is_owner

    def matches(rule: _Compiled, d: dict[str, Any], record: Any) -> bool | None:
        everyone, extra, own, dept, unowned, fields, clauses, parent = rule
        hit = everyone
        if not hit and owner_col is not None:
            owner = d[owner_col]
            if owner is None:
                hit = unowned
            elif own:
                hit = owner == uid or owner in extra
                if not hit and dept is not _NO_DEPARTMENT:
                    value = d[dept_col]  # type: ignore[index]
                    hit = value is not None and value == dept
        if not hit:
            if parent and d[parent_col] is not None:  # type: ignore[index]
                return None  # the parent record decides: the full path loads it
            return False
        for name in fields:
            if name not in d:
                return None
        return not clauses or conditions.matches(record, clauses)

    def check(record: Any) -> bool | None:
        if record.__class__ is not model:
            return None
        d = record.__dict__
        try:
            if ws_col is not None and d[ws_col] != ws:
                return None  # another workspace's record: sharing decides
            if is_owner:
                return True
            for denies, allows in passes:
                for rule in denies:
                    hit = matches(rule, d, record)
                    if hit is None or hit:
                        return None if hit is None else False
                for rule in allows:
                    hit = matches(rule, d, record)
                    if hit is None:
                        return None
                    if hit:
                        break
                else:
                    return False
            return True
        except KeyError:
            return None  # a value not loaded: the full path reads it

    return check


def check_for(access: Access, registry: Registry, resource: str, action: str) -> RecordCheck:
    """Return the Access's compiled check of (resource, action), compiling it once."""
    key = (resource, action)
    check = access.record_checks.get(key)
    if check is None:
        check = access.record_checks[key] = compile_check(access, registry, resource, action)
    return check

