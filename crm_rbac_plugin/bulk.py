"""Bulk operations: every selected record must allow ``bulk`` *and* the action, or none runs.

A bulk operation (delete the selected leads) is two permissions at once: the
resource's ``bulk`` action and the per-record action (``delete``). Both are
decided **per record**, with everything that decides a record: scopes,
conditions, explicit denies, time windows and sharing agreements (an
agreement that shares ``delete`` but not ``bulk`` lets a receiving member
delete a shared record one at a time, never in bulk). Checking ``bulk`` for
the resource as a whole, or selecting rows with the action's criteria only,
would let a conditional deny of ``bulk`` (``region = north``) or an
agreement without ``bulk`` be bypassed.

:func:`select` loads the records of a bulk request, all or none:

* the member must hold both actions on the resource at all, else 403;
* every selected id must be a record the member sees, else 404 (an
  invisible record is not revealed by a 403);
* every record must match the SQL criteria of both actions (the query
  filter's twin of the policy) and be allowed both actions by the policy
  itself; one refusal refuses the whole request with 403, naming the record.

Nothing is written here: the caller deletes or changes the returned records
and commits, and the flush guard checks each row again. Resources that do not
declare a ``bulk`` action need the per-record action only.

::

    from crm_rbac_plugin import bulk

    records = bulk.select(rbac, "clients", request.form.getlist("ids"))
    for record in records:
        db.session.delete(record)
    db.session.commit()
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from werkzeug.exceptions import NotFound

from . import gate
from .context import SYSTEM
from .errors import PermissionDenied
from .inputs import typed_key

if TYPE_CHECKING:
    from .interface import RBACProtocol
    from .registry import Resource

__all__ = ["BULK", "actions_for", "allowed", "select"]

#: The action every bulk operation needs on the resources that declare it.
BULK = "bulk"


def actions_for(rbac: RBACProtocol, resource: str, action: str) -> tuple[str, ...]:
    """Return the actions a bulk ``action`` needs on ``resource`` (``bulk`` first)."""
    res = rbac.registry.get(resource)
    return (BULK, action) if BULK in res.actions and action != BULK else (action,)


def allowed(rbac: RBACProtocol, resource: str, record: Any, action: str = "delete") -> bool:
    """Return whether ``record`` may take part in a bulk ``action`` (for checkboxes)."""
    return all(rbac.can(a, resource, record) for a in actions_for(rbac, resource, action))


def _key(res: Resource) -> Any:
    """Return the mapped attribute of the resource's primary key (ORM, so filtered)."""
    mapper = sa.inspect(res.model)
    return mapper.get_property_by_column(mapper.primary_key[0]).class_attribute


def _typed_ids(res: Resource, ids: Iterable[Any]) -> set[Any]:
    """Convert the ids to the key's type; an id that cannot be one names no record."""
    pk = sa.inspect(res.model).primary_key[0]
    typed = set()
    for ident in ids:
        value = typed_key(pk.type, ident)
        if value is None:
            raise NotFound(f"No {res.name} record {ident!r}.")
        typed.add(value)
    return typed


def _refuse(rbac: RBACProtocol, access: Any, resource: str, action: str, record: Any,
            message: str) -> PermissionDenied:
    """Send the ``access_denied`` signal (the audit trail logs it) and build the refusal."""
    rbac.signal_denied(access, action, resource, record, message)
    return PermissionDenied(message, resource=resource, action=action)


def select(rbac: RBACProtocol, resource: str, ids: Iterable[Any], action: str = "delete") -> list[Any]:
    """Return the records ``ids`` of ``resource`` for a bulk ``action``, all or none.

    Raises :class:`~werkzeug.exceptions.NotFound` when an id is not a record
    the member sees and :class:`.PermissionDenied` when the member may not
    bulk-``action`` the resource or any one of the records (see the module
    docstring). Inside ``rbac.system()`` every visible id is returned.
    """
    res = rbac.registry.get(resource)
    needed = actions_for(rbac, resource, action)
    ctx = rbac.resolve_context()
    for name in needed:
        if not rbac.can(name, resource):
            raise _refuse(rbac, ctx, resource, name, None, f"You may not {name} {resource}.")
    wanted = _typed_ids(res, ids)
    model: Any = res.model
    pk = _key(res)
    records = rbac.db.session.scalars(sa.select(model).where(pk.in_(wanted))).all()
    if {getattr(r, pk.key) for r in records} != wanted:
        raise NotFound(f"Some of the selected {resource} records do not exist or are "
                       "not visible to you.")
    if ctx is SYSTEM:
        return list(records)
    for record in records:
        for name in needed:
            decision = rbac.explain(name, resource, record)
            if not decision.allowed:
                raise _refuse(rbac, ctx, resource, name, record,
                              f"You may not {name} {resource} record "
                              f"#{getattr(record, pk.key)}: {decision.reason}")
    _check_sql(rbac, res, ctx, wanted, needed)
    if action == "delete":
        gate.require(rbac, ctx, "bulk_delete", {"resource": resource, "ids": sorted(wanted, key=str)},
                     count=len(records), summary=f"Delete {len(records)} {resource} records")
    return list(records)


def _check_sql(rbac: RBACProtocol, res: Resource, access: Any, wanted: set[Any],
               needed: tuple[str, ...]) -> None:
    """Refuse unless every id matches the criteria of every needed action in SQL.

    The filter's criteria and the policy agree (a property test checks it);
    asking both keeps a bulk request refused if one of them ever drifts.
    """
    pk = _key(res)
    stmt = sa.select(pk).where(pk.in_(wanted),
                               *(rbac.criteria(access, res, name) for name in needed))
    matched = set(rbac.db.session.scalars(stmt.execution_options(rbac_action=needed[-1])))
    missing = wanted - matched
    if missing:
        first = min(missing, key=str)
        raise _refuse(rbac, access, res.name, needed[0], None,
                      f"You may not {' and '.join(needed)} {res.name} record #{first}.")
