"""Deleting a record never changes records its deleter may not change.

A foreign key declared ``ON DELETE SET NULL`` (a deal's client) or
``CASCADE`` makes the database rewrite, or delete, the records that point
at a deleted one: outside the ORM, so outside the flush guard and the audit
trail. Deleting a client would then unlink deals, tasks and invoices of
other members that the deleter may neither see nor edit, and a receiving
workspace deleting a shared client would rewire the sharing workspace's own
records.

So :func:`before_flush` looks, for every protected record a member deletes,
at the protected records whose foreign key the database would change, read
past the query filter. The delete is refused, whole, with
:class:`~.errors.LinkedRecords` (a 409 naming what stands in the way) when
one of them belongs to another workspace than the
member's, or the member may not ``edit`` it (``delete`` it, for ``CASCADE``).
The answer counts only the records the member may see; those they may not
are named as "records you cannot see", never counted or given a kind, so
that the refusal says no more than that some exist (which refusing already
says). Records deleted in the same flush do not count; records the member may change
are unlinked by the database, as before. Trusted code (``rbac.system()``)
is not judged.
"""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .errors import LinkedRecords
from .loader import BYPASS
from .registry import Registry, Resource

if TYPE_CHECKING:
    from .interface import RBACProtocol

#: The ``ondelete`` rules by which the database changes a referring row, and the action
#: that change is to the row.
DB_ACTIONS = {"SET NULL": "edit", "CASCADE": "delete"}


def referrers(registry: Registry, target: Resource) -> list[tuple[Resource, Any, str]]:
    """``(resource, column, action)`` of each protected column the database changes when a
    ``target`` row is deleted."""
    out = []
    for res in registry:
        if res.model is None:
            continue
        for column in res.table.columns:
            for fk in column.foreign_keys:
                rule = (fk.ondelete or "").upper()
                if fk.column.table is target.table and rule in DB_ACTIONS:
                    out.append((res, column, DB_ACTIONS[rule]))
    return out


def before_flush(rbac: RBACProtocol, session: Session, flush_context: Any, instances: Any) -> None:
    """Refuse a member's delete that would make the database change records they may not."""
    registry = rbac.registry
    deleted = [(obj, res) for obj in session.deleted
               if (res := registry.for_model(type(obj))) is not None and res.model is not None]
    if not deleted:
        return
    ctx = rbac.resolve_context()
    if ctx is rbac.SYSTEM:
        return
    gone = {id(obj) for obj in session.deleted}
    loader = rbac.parent_loader(session)
    for obj, res in deleted:
        blocked: collections.Counter[str] = collections.Counter()
        unseen = False
        key = sa.inspect(obj).identity
        if key is None:
            continue
        ws = getattr(ctx, "workspace_id", None)
        for ref_res, column, action in referrers(registry, res):
            with session.no_autoflush:
                rows = session.scalars(sa.select(ref_res.model).where(column == key[0]),
                                       execution_options=BYPASS).all()
            for row in rows:
                if id(row) in gone:
                    continue
                if ref_res.workspace_of(row, ws) != ws or not rbac.decide(
                        ctx, "view", ref_res.name, row, loader):
                    unseen = True
                elif not rbac.decide(ctx, action, ref_res.name, row, loader):
                    blocked[ref_res.label.lower()] += 1
        if blocked or unseen:
            raise LinkedRecords(_refusal(res.name, blocked, unseen),
                                resource=res.name, action="delete")


def _refusal(name: str, blocked: collections.Counter[str], unseen: bool) -> str:
    """The 409's message: the kinds and counts the member may see, then the rest unnamed."""
    parts = [f"{n} {kind} that you may not change" for kind, n in sorted(blocked.items())]
    if unseen:
        parts.append("records you cannot see")
    return (f"This {name} record is linked to {' and to '.join(parts)}: deleting it would "
            "unlink them. Nothing was deleted; ask who manages them to relink or delete "
            "them first.")
