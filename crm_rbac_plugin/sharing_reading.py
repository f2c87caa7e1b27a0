"""Reading sharing agreements: their state as members read it, one or a side's list,
their JSON, a permission in words, and the agreement a record reaches a member
through. :mod:`.sharing` re-exports every name, the way callers use them."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import conditions
from .loader import BYPASS
from .models import utcnow
from .policy import Access

if TYPE_CHECKING:
    from .interface import RBACProtocol

__all__ = ["agreement_in", "agreements", "describe_permission", "shared_from", "state",
           "to_json"]


def state(agreement: Any, now: dt.datetime | None = None) -> str:
    """The status as a member reads it: ``expired`` for an active one past its date."""
    now = now or utcnow()
    if agreement.status == "active" and agreement.expires_at is not None \
            and agreement.expires_at <= now:
        return "expired"
    return str(agreement.status)


def agreement_in(rbac: RBACProtocol, workspace_id: int, agreement_id: Any) -> Any:
    """The agreement if ``workspace_id`` is one of its two sides, else None (a 404)."""
    SA = rbac.models.SharingAgreement
    try:
        agreement_id = int(agreement_id)
    except (TypeError, ValueError):
        return None
    return rbac.db.session.scalar(sa.select(SA).where(
        SA.id == agreement_id,
        sa.or_(SA.granting_workspace_id == workspace_id,
               SA.receiving_workspace_id == workspace_id)),
        execution_options=BYPASS)


def agreements(rbac: RBACProtocol, workspace_id: int, side: str) -> list[Any]:
    """Agreements shared by (``side="granting"``) or with (``"receiving"``) a workspace."""
    SA = rbac.models.SharingAgreement
    column = SA.granting_workspace_id if side == "granting" else SA.receiving_workspace_id
    return list(rbac.db.session.scalars(
        sa.select(SA).where(column == workspace_id).order_by(SA.id.desc()),
        execution_options=BYPASS))


def to_json(agreement: Any) -> dict[str, Any]:
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() + "Z" if value is not None else None
    return {
        "id": agreement.id,
        "granting_workspace": {"id": agreement.granting_workspace_id,
                               "name": agreement.granting_workspace.name,
                               "slug": agreement.granting_workspace.slug},
        "receiving_workspace": {"id": agreement.receiving_workspace_id,
                                "name": agreement.receiving_workspace.name,
                                "slug": agreement.receiving_workspace.slug},
        "status": agreement.status, "state": state(agreement),
        "notes": agreement.notes or "",
        "expires_at": iso(agreement.expires_at), "created_at": iso(agreement.created_at),
        "decided_at": iso(agreement.decided_at),
        "permissions": [{"resource": p.resource, "action": p.action,
                         "condition": p.condition or None} for p in agreement.permissions],
    }


def describe_permission(rbac: RBACProtocol, perm: Any) -> str:
    """``clients.view where region = 'north'``, for pages and the CLI."""
    text = f"{perm.resource}.{perm.action}"
    model = rbac.registry.get(perm.resource).model if perm.resource in rbac.registry else None
    if perm.condition and model is not None:
        text += f" where {conditions.describe(conditions.stored(model, perm.condition))}"
    return text


def shared_from(rbac: RBACProtocol, access: Access | None, record: Any) -> Any:
    """The :class:`~.policy.Share` a record reaches ``access`` through, or None if it is
    one of the member's own (for "shared by ..." marks in lists)."""
    if access is None:
        return None
    res = rbac.registry.for_model(type(record))
    if res is None:
        return None
    ws = res.workspace_of(record)
    if ws is None or ws == access.workspace_id:
        return None
    return next((s for s in access.shares if s.workspace_id == ws), None)
