"""Deleting a workspace, with a grace period during which its Owners restore it.

An Owner deletes the workspace by typing its name (anything else is a 400
naming ``confirm``, and nothing changes). Deletion marks the row
(``deleted_at``, ``purge_after`` = now + ``RBAC_WORKSPACE_GRACE_DAYS``) and
deletes nothing: the loader then finds no membership in it
(:func:`..loader.membership_row`, :func:`..user_rows.user_with_membership`), so
every page, API call and token of every member is refused there at once,
and the switcher no longer offers it (:func:`..workspaces.switchable`).
Its sharing agreements end through the sharing service (revoked where it
shares, declined or left where it receives), whose notifications tell the
other side; the workspace's own Owners and Admins are told too.

Only its Owners see it while it waits (:func:`restorable_workspaces`), on
the Workspaces page, and only they restore it (:func:`restore_workspace`)
until ``purge_after``; ended agreements stay ended. After that,
``flask rbac workspaces purge`` removes it (:mod:`.purge`).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app, has_app_context

from .. import sharing, signals
from ..audit.events import record
from ..errors import PermissionDenied, RuleConflict, ValidationError
from ..inputs import MAX_ID
from ..loader import BYPASS
from ..models import naive_utc, utcnow
from ..policy import Access
from . import notices
from .ownership import _holds_owner, require_owner

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The field in which the Owner types the workspace's name.
CONFIRM_FIELD = "confirm"


def grace(rbac: RBACProtocol) -> dt.timedelta:
    """How long a deleted workspace stays restorable."""
    return dt.timedelta(days=int(rbac.config("RBAC_WORKSPACE_GRACE_DAYS")))


def _aware(when: dt.datetime) -> dt.datetime:
    return when.replace(tzinfo=dt.UTC)


def _send(signal: Any, **kwargs: Any) -> None:
    if has_app_context():
        signal.send(current_app._get_current_object(), **kwargs)  # type: ignore[attr-defined]


def _end_agreements(rbac: RBACProtocol, actor: Access) -> int:
    """End every open agreement of the actor's workspace, on either side."""
    SA = rbac.models.SharingAgreement
    ws = actor.workspace_id
    open_ones = rbac.db.session.scalars(
        sa.select(SA).where(sa.or_(SA.granting_workspace_id == ws, SA.receiving_workspace_id == ws),
                            SA.status.in_(("pending", "active"))).order_by(SA.id),
        execution_options=BYPASS).all()
    for agreement in open_ones:
        if agreement.granting_workspace_id == ws:
            sharing.revoke(rbac, actor, agreement)
        elif agreement.status == "pending":
            sharing.decline(rbac, actor, agreement)
        else:
            sharing.leave(rbac, actor, agreement)
    return len(open_ones)


def delete_workspace(rbac: RBACProtocol, actor: Access | None, confirm: Any, *,
                     now: dt.datetime | None = None) -> Any:
    """Delete the actor's workspace, restorable by its Owners until the grace period ends.

    ``confirm`` must be the workspace's name exactly (spaces around it
    aside). Audited as ``workspace.deleted``; sends ``workspace_deleted``.
    The caller commits.
    """
    actor = require_owner(actor)
    ws = rbac.db.session.get(rbac.models.Workspace, actor.workspace_id)
    if ws is None or ws.deleted_at is not None:
        raise RuleConflict("this workspace is deleted already", field=CONFIRM_FIELD)
    if not isinstance(confirm, str) or confirm.strip() != ws.name:
        raise ValidationError(f"type the workspace's name, {ws.name}, exactly to confirm",
                              field=CONFIRM_FIELD)
    at = naive_utc(now) if now is not None else utcnow()
    ended = _end_agreements(rbac, actor)
    ws.deleted_at, ws.purge_after = at, at + grace(rbac)
    record(rbac, "workspace.deleted", workspace_id=ws.id, resource="settings", target=ws.name,
           actor_ids=(actor.user_id, actor.membership_id), purge_after=ws.purge_after,
           agreements_ended=ended)
    notices.tell_members(rbac, ws.id, event="workspace.deleted", but=[actor.membership_id],
                         summary=f"{ws.name} was deleted by an Owner. Its Owners can restore "
                                 f"it until {ws.purge_after:%Y-%m-%d %H:%M} UTC.")
    rbac.db.session.flush()
    _send(signals.workspace_deleted, workspace_id=ws.id, actor=actor,
          purge_after=_aware(ws.purge_after))
    return ws


def owner_membership(rbac: RBACProtocol, user: Any, workspace_id: Any) -> Any:
    """The active membership through which ``user`` owns workspace ``workspace_id``, or None.

    Read directly, not through the loader, so it answers for a deleted
    workspace too (where the loader finds nobody).
    """
    if (user is None or not isinstance(workspace_id, int) or isinstance(workspace_id, bool)
            or not 0 < workspace_id <= MAX_ID):
        return None
    M = rbac.models.Membership
    membership = rbac.db.session.scalar(
        sa.select(M).where(M.workspace_id == workspace_id, M.user_id == rbac.user_pk(user),
                           M.status == "active"), execution_options=BYPASS)
    return membership if membership is not None and _holds_owner(membership) else None


def restorable_workspaces(rbac: RBACProtocol, user: Any) -> list[Any]:
    """The deleted workspaces ``user`` owns, soonest purge first: the only ones shown to them."""
    if user is None:
        return []
    M, W = rbac.models.Membership, rbac.models.Workspace
    found = rbac.db.session.scalars(
        sa.select(W).join(M, M.workspace_id == W.id)
        .where(M.user_id == rbac.user_pk(user), M.status == "active", W.deleted_at.is_not(None))
        .order_by(W.purge_after, W.id), execution_options=BYPASS).all()
    return [ws for ws in found if owner_membership(rbac, user, ws.id) is not None]


def restore_workspace(rbac: RBACProtocol, user: Any, workspace_id: Any, *,
                      now: dt.datetime | None = None) -> Any:
    """Restore a deleted workspace that ``user`` owns, before its grace period ends.

    Anyone else gets the same refusal as for a workspace that does not
    exist (404 on the pages and the API): a deleted workspace is disclosed
    to its Owners only. Audited as ``workspace.restored``; sends
    ``workspace_restored``. The caller commits.
    """
    membership = owner_membership(rbac, user, workspace_id)
    ws = rbac.db.session.get(rbac.models.Workspace, workspace_id) if membership else None
    if ws is None or ws.deleted_at is None:
        raise PermissionDenied("No deleted workspace of yours has that id.",
                               field="workspace_id")
    at = naive_utc(now) if now is not None else utcnow()
    if ws.purge_after is not None and at >= ws.purge_after:
        raise RuleConflict("the grace period of this workspace is over: it is being purged",
                           field="workspace_id")
    deleted_at = ws.deleted_at
    ws.deleted_at, ws.purge_after = None, None
    record(rbac, "workspace.restored", workspace_id=ws.id, resource="settings", target=ws.name,
           actor_ids=(rbac.user_pk(user), membership.id), deleted_at=deleted_at)
    notices.tell_members(rbac, ws.id, event="workspace.restored", but=[membership.id],
                         summary=f"{ws.name} was restored by an Owner.")
    rbac.db.session.flush()
    _send(signals.workspace_restored, workspace_id=ws.id, actor=rbac.access_for(membership))
    return ws
