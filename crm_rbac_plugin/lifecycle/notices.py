"""The notifications of the lifecycle's events, queued in the change's transaction.

Like the plugin's other events (:mod:`..notify.sources`), each is a row per
recipient written by :func:`..notify.queue.enqueue` into the session of the
change, so a rollback drops it with the change.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..loader import BYPASS
from ..notify.queue import enqueue, path_for
from ..notify.sources import agreement_recipients

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def active_members(rbac: RBACProtocol, workspace_id: int, *, but: Iterable[int] = ()) -> list[int]:
    """Ids of the workspace's active memberships, but ``but``."""
    M = rbac.models.Membership
    skip = set(but)
    return [mid for mid in rbac.db.session.scalars(
        sa.select(M.id).where(M.workspace_id == workspace_id, M.status == "active")
        .order_by(M.id), execution_options=BYPASS) if mid not in skip]


def tell_admins(rbac: RBACProtocol, workspace_id: int, *, category: str, event: str,
                summary: str, endpoint: str, extra: Iterable[int] = ()) -> None:
    """Tell the workspace's Owners and settings managers (not the actor), and ``extra``."""
    recipients = set(agreement_recipients(rbac, rbac.db.session, workspace_id)) | set(extra)
    enqueue(rbac.db.session, rbac.models, workspace_id=workspace_id, recipients=recipients,
            category=category, event_name=event, summary=summary, link=path_for(endpoint))


def tell_members(rbac: RBACProtocol, workspace_id: int, *, event: str, summary: str,
                 but: Iterable[int] = ()) -> None:
    """Tell every active member (but ``but``) that the workspace itself changed."""
    enqueue(rbac.db.session, rbac.models, workspace_id=workspace_id,
            recipients=active_members(rbac, workspace_id, but=but), category="membership",
            event_name=event, summary=summary, link=path_for("rbac_settings.workspaces"))
