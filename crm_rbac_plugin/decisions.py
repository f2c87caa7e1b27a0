"""Decision shortcuts: may the current member do this, and which fields may they see?

Each function takes the extension first and is also a method of
:class:`~.extension.RBAC` (``rbac.can("leads.edit", record=lead)`` calls
``can(rbac, "leads.edit", record=lead)``), bound at class level so that the
hottest question, a warm resource-level ``rbac.can``, costs no extra call.

Without an explicit ``access``, the member is the one in force
(:meth:`~.extension.RBAC.resolve_context`): the system context may do anything and sees
every field; outside a request and any explicit context the answer fails
closed with :class:`~.errors.NoAccessContext`. The decisions themselves are
:func:`.policy.decide` and, for SQL, :func:`.query.record_criteria`; this
module only finds the member, the record's readable state and the parents.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from . import fields, policy
from .context import SYSTEM
from .loader import BYPASS
from .policy import Access, Decision, ParentLoader
from .query import record_criteria
from .record_checks import check_for
from .registry import Resource, split_permission

if TYPE_CHECKING:
    from .interface import RBACProtocol

#: The default of ``access=``: the member in force.
MISSING: Any = object()


def decide(rbac: RBACProtocol, access: Access | None, action: str, resource: str, record: Any = None,
           load_parent: ParentLoader | None = None) -> Decision:
    """Return the decision for ``access`` (explicit, None: nobody) with its reasons."""
    if record is not None and load_parent is None:
        load_parent = rbac.parent_loader(rbac.db.session)
    if record is not None:
        record = fields.readable(rbac, record)
    return policy.decide(access, rbac.registry, action, resource, record, load_parent)


def explain(rbac: RBACProtocol, action: str, resource: str | None = None, record: Any = None, *,
            access: Any = MISSING) -> Decision:
    """Return the decision for the current member (or ``access``) with its reasons.

    ``explain("leads.edit", record=lead)`` and ``explain("edit", "leads", lead)``
    are the same question.
    """
    if resource is None or "." in action:
        resource, action = split_permission(action, None)
    if access is MISSING:
        ctx = rbac.resolve_context()
        if ctx is SYSTEM:
            rbac.registry.check_action(resource, action)
            return Decision(True, "system context", steps=["system context: no checks"])
        access = ctx
    return rbac.decide(access, action, resource, record)


def can(rbac: RBACProtocol, action: str, resource: str | None = None, record: Any = None, *,
        access: Any = MISSING) -> bool:
    """Return whether the current member (or ``access``) may do ``action``.

    Resource-level answers (no record) are memoised on the Access: they
    are asked for every menu entry and button. A record-level answer is
    the Access's compiled check (:mod:`.record_checks`), built once per
    (resource, action); when it cannot decide from the record's loaded
    values it is :func:`.policy.allowed`, which skips the reasons that
    ``explain`` builds: they cost far more than the decision itself.
    """
    if resource is not None and "." not in action:
        if access is MISSING:
            ctx = rbac.resolve_context()
            access = ctx if isinstance(ctx, Access) else access
        if isinstance(access, Access):
            if record is not None:
                check = access.record_checks.get((resource, action))
                if check is None:
                    check = check_for(access, rbac.registry, resource, action)
                answer = check(record)
                if answer is not None:
                    return answer
                return policy.allowed(access, rbac.registry, action, resource,
                                      fields.readable(rbac, record), _LazyParents(rbac))
            key = (resource, action)
            allowed = access.can_cache.get(key)
            if allowed is None:
                allowed = rbac.explain(action, resource, access=access).allowed
                access.can_cache[key] = allowed
            return allowed
    return rbac.explain(action, resource, record, access=access).allowed


class _LazyParents:
    """The session's parent loader, built only when a decision reads a parent."""

    __slots__ = ("rbac",)

    def __init__(self, rbac: RBACProtocol) -> None:
        self.rbac = rbac

    def __call__(self, res: Resource, key: Any) -> Any:
        return self.rbac.parent_loader(self.rbac.db.session)(res, key)


def access_or_current(rbac: RBACProtocol, access: Any) -> Access | None:
    """Return ``access`` if given, else the member in force (None: the system context)."""
    if access is not MISSING:
        return access  # type: ignore[no-any-return]
    ctx = rbac.resolve_context()
    return None if ctx is SYSTEM else ctx


def hidden_fields(rbac: RBACProtocol, resource: str, *, access: Any = MISSING) -> frozenset[str]:
    """Fields of ``resource`` the member may not see (field-level security).

    Views, exports and APIs leave these out; the system context sees all.
    """
    acc = access_or_current(rbac, access)
    return acc.hidden(resource) if acc is not None else frozenset()


def readonly_fields(rbac: RBACProtocol, resource: str, *, access: Any = MISSING) -> frozenset[str]:
    """Fields of ``resource`` the member may see but not write."""
    acc = access_or_current(rbac, access)
    if acc is None:
        return frozenset()
    return acc.unwritable(resource) - acc.hidden(resource)


def visible_fields(rbac: RBACProtocol, resource: str, fields: Any, *,
                   access: Any = MISSING) -> list[str]:
    """Keep the names in ``fields`` that the member may see, in order."""
    hidden = rbac.hidden_fields(resource, access=access)
    return [f for f in fields if f not in hidden]


def redact(rbac: RBACProtocol, resource: str, record: Any, *, access: Any = MISSING) -> dict[str, Any]:
    """Return a record's columns as a dict, without the fields hidden from the member."""
    res = rbac.registry.get(resource)
    hidden = rbac.hidden_fields(resource, access=access)
    return {attr.key: getattr(record, attr.key)
            for attr in sa.inspect(res.model).column_attrs if attr.key not in hidden}


def label(rbac: RBACProtocol, record: Any, field: str | None = None) -> str:
    """Return the text that names ``record`` on a page, never a hidden field.

    ``field`` defaults to the model's ``__rbac_label__`` attribute; when
    the member may not see it, the label is ``"<Model> #<id>"``. Templates
    use the ``rbac_label`` filter: ``{{ record | rbac_label }}``.
    """
    return fields.record_label(rbac, record, field)


def parent_loader(rbac: RBACProtocol, db_session: Session) -> ParentLoader:
    """Return a loader of parent records that bypasses the filter."""
    def load(res: Resource, pk: Any) -> Any:
        with db_session.no_autoflush:
            return fields.readable(rbac, db_session.get(
                res.model, pk, execution_options=BYPASS))  # type: ignore[arg-type]
    return load


def criteria(rbac: RBACProtocol, access: Access | None, resource: str | Resource, action: str = "view",
             entity: Any = None) -> sa.ColumnElement[bool]:
    """Return the SQL criteria of the rows ``access`` may ``action``.

    Criteria for the model itself are cached on the Access object.
    """
    res = resource if isinstance(resource, Resource) else rbac.registry.get(resource)
    membership_table = rbac.models.Membership.__table__
    if entity is not None or access is None:
        return record_criteria(access, rbac.registry, res, action,
                               entity if entity is not None else res.model, membership_table)
    key = (res.name, action)
    crit = access.sql_cache.get(key)
    if crit is None:
        crit = record_criteria(access, rbac.registry, res, action, res.model,
                               membership_table)
        access.sql_cache[key] = crit
    return crit
