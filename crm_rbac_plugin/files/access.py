"""The access rule of attachments: a right on a file is a right on its record.

An attachment has no grant, owner or scope of its own. Each operation names
the actions it needs on the parent record (:data:`ACTION_NEEDS`), and the
parent is loaded through the query filter, so everything that decides who
sees the record (roles, scopes, conditions, denies, sharing agreements,
plans, view-as) decides who sees its files, and a reassignment or a new
agreement applies at once, with nothing copied. A record the member cannot
see answers 404 for its files too (their existence is not disclosed); a
visible record whose needed actions are not all allowed answers 403.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..decorators import by_primary_key
from ..errors import PermissionDenied
from ..policy import Decision

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: What each attachment operation needs on the parent record, all of it.
ACTION_NEEDS: dict[str, tuple[str, ...]] = {
    "upload": ("edit",),
    "download": ("view",),
    "delete": ("edit", "delete"),
}


def record_key(record: Any) -> str:
    """The parent's primary key as stored in ``rbac_attachment.record_id``."""
    return str(sa.inspect(record).identity[0])


def workspace_of(rbac: RBACProtocol, resource: str, record: Any) -> Any:
    """The workspace an attachment of ``record`` belongs to: the record's own.

    A resource without a workspace column (single tenant) gives the member's.
    """
    access = rbac.current_access()
    return rbac.registry.get(resource).workspace_of(record, getattr(access, "workspace_id", None))


def parent_record(rbac: RBACProtocol, resource: str, record_id: str) -> Any:
    """Load the parent record through the query filter: None when the member cannot see it."""
    pk_type, statement = by_primary_key(rbac.registry.get(resource).model)
    try:
        ident = pk_type.python_type(record_id)
    except (TypeError, ValueError):
        return None
    with rbac.db.session.no_autoflush:
        return rbac.db.session.execute(statement, {"rbac_ident": ident}).scalar_one_or_none()


def refusal(rbac: RBACProtocol, operation: str, resource: str, record: Any) -> Decision:
    """The first needed action on ``record`` the member lacks, as a refusal (or an allow)."""
    for action in ACTION_NEEDS[operation]:
        decision = rbac.explain(action, resource, record)
        if not decision:
            return Decision(False, decision.reason or f"{operation} needs {action} on the record")
    return Decision(True, "")


def may(rbac: RBACProtocol, operation: str, resource: str, record: Any) -> bool:
    """Whether the current member may ``operation`` (upload, download, delete) on ``record``'s files."""
    return all(rbac.can(action, resource, record) for action in ACTION_NEEDS[operation])


def check(rbac: RBACProtocol, operation: str, resource: str, record: Any) -> None:
    """Raise :class:`PermissionDenied` unless the member may ``operation`` on ``record``'s files."""
    decision = refusal(rbac, operation, resource, record)
    if not decision:
        raise PermissionDenied(decision.reason, action=ACTION_NEEDS[operation][-1],
                               resource=resource)


def attachment_or_404(rbac: RBACProtocol, attachment_id: int, operation: str) -> tuple[Any, Any]:
    """Load an attachment and its parent for ``operation``, or refuse (404/403).

    404 when the attachment does not exist or its record is outside the
    member's view, the same answer in both cases whatever right the member
    holds on the resource, so the id discloses nothing; 403 only when the
    record is visible and an action :data:`ACTION_NEEDS` names is not
    allowed on it.
    """
    attachment = rbac.db.session.get(rbac.models.Attachment, attachment_id)
    parent = (parent_record(rbac, attachment.resource, attachment.record_id)
              if attachment is not None and attachment.resource in rbac.registry else None)
    if parent is None:
        if attachment is not None:
            rbac.signal_denied(rbac.current_access(), "view", attachment.resource, None,
                               f"attachment #{attachment_id}: its record is not visible")
        rbac.refuse(Decision(False, "not found"), 404)
    decision = refusal(rbac, operation, attachment.resource, parent)
    if not decision:
        rbac.signal_denied(rbac.current_access(), ACTION_NEEDS[operation][-1],
                           attachment.resource, parent, decision.reason)
        rbac.refuse(decision, 403)
    return attachment, parent
