"""Record reassignment: move records from one owner to another.

:func:`reassign` changes records through the ORM, as the actor (inside
``rbac.as_member``), so the flush guard checks every row; it runs in one
SAVEPOINT, so an error anywhere leaves no record changed. Only records the
actor may ``manage`` move.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from .. import gate
from ..config import setting
from ..errors import PermissionDenied, ValidationError
from ..policy import Access
from ..signals import records_reassigned
from .checks import audit_action, membership_of, require

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["owned_counts", "reassign", "reassign_preview", "reassignable"]


def reassignable(rbac: RBACProtocol) -> list[Any]:
    """Resources whose records have an owner column."""
    return [r for r in rbac.registry if r.model is not None and r.owner_column]


def _resources(rbac: RBACProtocol, names: Iterable[str] | None, actor: Access) -> list[Any]:
    """The named resources, or every one the workspace's plan includes.

    Records of a module the plan leaves out are invisible to everyone there,
    the Owner included: "reassign everything" leaves them as they are rather
    than refusing the whole reassignment.
    """
    available = {r.name: r for r in reassignable(rbac)}
    if not names:
        return [r for r in available.values() if actor.in_plan(r)]
    out = []
    for name in names:
        if name not in available:
            raise ValidationError(f"{name!r} has no owned records to reassign", field="resources")
        out.append(available[name])
    return out


def _owner_stmt(res: Any, actor: Access, from_user_id: Any, ids: Sequence[int] | None) -> Any:
    model = res.model
    stmt = sa.select(model).where(getattr(model, res.owner_column) == from_user_id)
    if res.workspace_column is not None:
        stmt = stmt.where(getattr(model, res.workspace_column) == actor.workspace_id)
    if ids is not None:
        stmt = stmt.where(model.id.in_(list(ids)))
    return stmt.execution_options(rbac_action="manage")


def _check_reassign(rbac: RBACProtocol, actor: Access | None, from_user_id: Any, to_user_id: Any,
                    resources: Iterable[str] | None, ids: Sequence[int] | None,
                    ) -> tuple[Access, list[Any]]:
    actor = require(rbac, actor, "members", "view")
    if from_user_id == to_user_id:
        raise ValidationError("choose a different new owner", field="to_user_id")
    source = membership_of(rbac, actor.workspace_id, from_user_id)
    if source is None:
        raise ValidationError("the current owner is not a member of this workspace",
                              field="from_user_id")
    target = membership_of(rbac, actor.workspace_id, to_user_id)
    if target is None or target.status != "active":
        raise ValidationError("the new owner must be an active member of this workspace",
                              field="to_user_id")
    chosen = _resources(rbac, resources, actor)
    if ids is not None and len(chosen) != 1:
        raise ValidationError("record ids need exactly one resource", field="resources")
    for res in chosen:
        decision = rbac.decide(actor, "manage", res.name)
        if not decision:
            raise PermissionDenied(f"You may not reassign {res.name}: {decision.reason}",
                                   resource=res.name, action="manage")
    return actor, chosen


def reassign_preview(rbac: RBACProtocol, actor: Access | None, from_user_id: Any, to_user_id: Any,
                     resources: Iterable[str] | None = None,
                     ids: Sequence[int] | None = None) -> dict[str, int]:
    """Count, per resource, the records :func:`reassign` would move (nothing changes)."""
    actor, chosen = _check_reassign(rbac, actor, from_user_id, to_user_id, resources, ids)
    out = {}
    with rbac.as_member(actor):
        for res in chosen:
            out[res.name] = len(_record_ids(rbac, res, actor, from_user_id, ids))
    return out


def owned_counts(rbac: RBACProtocol, actor: Access, user_id: Any, *,
                 action: str = "view") -> dict[str, int]:
    """Count, per resource, the records ``user_id`` owns that the actor may ``action``.

    The confirmations of deactivating (``view``: what stays theirs) and of
    reassigning (``manage``: what would move) say these numbers; counting
    only what the actor reaches keeps them from disclosing other records.
    """
    out = {}
    with rbac.as_member(actor):
        for res in reassignable(rbac):
            if not rbac.decide(actor, action, res.name):
                continue
            pk = res.model.id
            stmt = (_owner_stmt(res, actor, user_id, None).with_only_columns(sa.func.count(pk))
                    .execution_options(rbac_action=action))
            out[res.name] = int(rbac.db.session.scalar(stmt) or 0)
    return out


def _record_ids(rbac: RBACProtocol, res: Any, actor: Access, from_user_id: Any,
                ids: Sequence[int] | None) -> list[Any]:
    """Ids of the records the actor may manage that ``from_user_id`` owns."""
    pk = res.model.id
    stmt = _owner_stmt(res, actor, from_user_id, ids).with_only_columns(pk).order_by(pk)
    return list(rbac.db.session.scalars(stmt))


def _set_owner(res: Any, record: Any, user_id: Any) -> None:
    """Change one record's owner (a seam for tests that force a failure midway)."""
    setattr(record, res.owner_column, user_id)


def _moves_in_bulk(rbac: RBACProtocol, actor: Access, res: Any, from_user_id: Any,
                   ids: Sequence[int]) -> bool:
    """Whether moving the records ``ids`` is what the policy's "reassigning all of a
    member's records" guards: more than one record of the member.

    The rule follows what moves, not how it is named: spelling out every id of
    a member is "all", and any list of ids is one step from it. One record,
    from its own page, moves at once.
    """
    with rbac.as_member(actor):
        return len(_record_ids(rbac, res, actor, from_user_id, ids)) > 1


def reassign(rbac: RBACProtocol, actor: Access | None, from_user_id: Any, to_user_id: Any,
             resources: Iterable[str] | None = None, ids: Sequence[int] | None = None, *,
             progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Move records of ``resources`` (all by default) from one owner to another.

    Needs ``manage`` (the reassign right) on each resource; only records the
    actor may manage move. All of a member's records, and chosen ``ids`` that
    move more than one record, pass the approval policy's ``reassign``
    (:func:`_moves_in_bulk`). Records change one by one through the ORM inside
    ``rbac.as_member(actor)``, flushed in batches, so the write guard checks
    every row; everything runs in one SAVEPOINT, so an error anywhere leaves
    no record changed. ``progress(n)`` is called after each batch of ``n``.
    Returns the number moved per resource.
    """
    actor, chosen = _check_reassign(rbac, actor, from_user_id, to_user_id, resources, ids)
    payload = {"from_user_id": from_user_id, "to_user_id": to_user_id,
               "resources": [res.name for res in chosen]}
    if ids is None:  # all of a member's records
        gate.require(rbac, actor, "reassign", payload,
                     summary=f"Reassign all records of user {from_user_id} to user {to_user_id}")
    elif _moves_in_bulk(rbac, actor, chosen[0], from_user_id, ids):
        gate.require(rbac, actor, "reassign", {**payload, "ids": list(ids)},
                     summary=f"Reassign {len(set(ids))} chosen {chosen[0].name} records of user "
                             f"{from_user_id} to user {to_user_id}")
    session = rbac.db.session
    batch = max(1, int(setting("RBAC_REASSIGN_BATCH")))
    counts: dict[str, int] = {}
    with session.begin_nested(), rbac.as_member(actor):
        for res in chosen:
            pk = res.model.id
            record_ids = _record_ids(rbac, res, actor, from_user_id, ids)
            counts[res.name] = 0
            for start in range(0, len(record_ids), batch):
                chunk = record_ids[start:start + batch]
                records = session.scalars(_owner_stmt(res, actor, from_user_id, None)
                                          .where(pk.in_(chunk))).all()
                for record in records:
                    _set_owner(res, record, to_user_id)
                session.flush()
                counts[res.name] += len(records)
                if progress is not None:
                    progress(len(records))
    audit_action(rbac, actor, "records.reassigned", workspace_id=actor.workspace_id,
                 target=f"user {from_user_id} -> user {to_user_id}", after=counts,
                 from_user_id=from_user_id, to_user_id=to_user_id, ids=ids)
    records_reassigned.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                            workspace_id=actor.workspace_id, actor=actor,
                            from_user_id=from_user_id, to_user_id=to_user_id, counts=counts)
    return counts
