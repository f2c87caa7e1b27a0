"""The receivers of the notification signals other services send.

``approval_requested``, ``approval_decided``, ``alert_raised`` and
``review_due`` (:mod:`..signals`) each carry ``workspace_id``,
``recipients`` (membership ids), ``summary`` and ``link``; they are sent
inside the transaction of the change, and the receiver adds the rows to the
session of the row the signal carries (``request`` or ``alert``; the app's
session otherwise): refusal alerts are written after the request, in a
session of their own (:mod:`..audit.refusals`). The rows commit or roll back
with the change (:func:`.queue.enqueue`).
A decided approval is not told to the member who decided it: they know.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import object_session

from .. import signals
from .queue import enqueue

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: Signal -> (category, event name, or None to build it from ``outcome``).
SIGNALS = (
    (signals.approval_requested, "approvals", "approval.requested"),
    (signals.approval_decided, "approvals", None),
    (signals.alert_raised, "security", "alert.raised"),
    (signals.review_due, "reviews", "review.due"),
)


def connect(rbac: RBACProtocol) -> None:
    """Connect the receivers for ``rbac`` (strongly: the extension lives as long as the app)."""
    for signal, category, event_name in SIGNALS:
        signal.connect(partial(receive, rbac, category, event_name), weak=False)


def receive(rbac: RBACProtocol, category: str, event_name: str | None, sender: Any,
            **kwargs: Any) -> None:
    """Queue the notification a signal carries, for the apps ``rbac`` serves."""
    state = getattr(sender, "extensions", {}).get("rbac")
    if state is None or state.rbac is not rbac:
        return
    recipients = set(kwargs.get("recipients") or ())
    if event_name is None:
        event_name = f"approval.{kwargs.get('outcome', 'decided')}"
        acting = kwargs.get("actor")
        if acting is not None and getattr(acting, "membership_id", None) is not None:
            recipients.discard(acting.membership_id)
    carried = kwargs.get("alert", kwargs.get("request"))
    session = (object_session(carried) if carried is not None else None) or rbac.db.session
    enqueue(session, rbac.models, workspace_id=kwargs["workspace_id"],
            recipients=recipients, category=category, event_name=event_name,
            summary=str(kwargs.get("summary") or event_name), link=str(kwargs.get("link") or ""))
