"""Signals sent by the extension, on a blinker namespace of its own.

Connect with ``access_denied.connect(receiver, app)``; each receiver gets the
Flask app as sender and the keyword arguments documented below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from blinker import Namespace
from flask import current_app, has_app_context

if TYPE_CHECKING:
    from .models import Models

_signals = Namespace()

#: Sent when a decision refuses a member, from a decorator, a record check
#: or the flush guard. Arguments: ``access`` (the :class:`~.policy.Access`, or
#: None for an anonymous user), ``action``, ``resource``, ``record`` (or None)
#: and ``reason`` (text).
access_denied = _signals.signal("rbac-access-denied")

#: Sent after a flush that created, changed or deleted roles, grants or role
#: assignments. Arguments: ``workspace_ids`` (list) and ``objects`` (the
#: changed model instances).
role_changed = _signals.signal("rbac-role-changed")

#: Sent after a flush that changed memberships, departments or manager
#: assignments. Arguments: ``workspace_ids`` and ``objects``.
member_changed = _signals.signal("rbac-member-changed")

#: Sent after an invitation is created or resent (:func:`.team.invite`,
#: :func:`.team.resend`). Arguments: ``invitation`` (the ``Invitation`` row)
#: and ``actor`` (the inviter's :class:`~.policy.Access`).
member_invited = _signals.signal("rbac-member-invited")

#: Sent after :func:`.team.reassign` moved records to a new owner. Arguments:
#: ``workspace_id``, ``actor`` (:class:`~.policy.Access`), ``from_user_id``,
#: ``to_user_id`` and ``counts`` (``{resource name: records moved}``).
records_reassigned = _signals.signal("rbac-records-reassigned")

#: Sent after ``rbac.auth.failed`` counted a failed sign-in. Arguments:
#: ``email`` (as typed), ``ip``, ``user`` (the account, or None for an
#: unknown address) and ``throttle`` (the :class:`~.security.throttle.Throttle`
#: now in force: its ``wait_seconds`` is 0 until the allowance is used up).
sign_in_failed = _signals.signal("rbac-sign-in-failed")

#: Sent when ``rbac.auth.check`` refused an attempt because its account or its
#: address must wait. Arguments: ``email``, ``ip``, ``user`` (or None) and
#: ``throttle``. The password was not checked.
sign_in_throttled = _signals.signal("rbac-sign-in-throttled")

#: Sent after ``rbac.auth.succeeded`` recorded a sign-in. Arguments: ``user``,
#: ``email`` and ``ip``.
signed_in = _signals.signal("rbac-signed-in")

#: Sent after sessions were revoked (:mod:`.security.sessions`: a sign-out,
#: "sign out everywhere", an admin's sign-out, a timeout, the session cap, a
#: password change, too many wrong MFA codes). Arguments: ``user_id`` (the
#: account), ``session_ids`` (the ``rbac_session`` ids asked for), ``count``
#: (how many were still live), ``reason`` (``"signed_out"``,
#: ``"sign_out_everywhere"``, ``"admin"``, ``"idle"``, ``"expired"``,
#: ``"cap"``, ``"password_changed"`` or ``"mfa_failed"``) and ``by`` (the acting
#: :class:`~.policy.Access`, or None when the account itself or the clock
#: ended them).
session_revoked = _signals.signal("rbac-session-revoked")


def send_policy_changed(models: Models, workspace_ids: list[int], objects: list[Any]) -> None:
    """Send ``role_changed`` for changed roles, grants and assignments, ``member_changed``
    for the other policy rows (nothing outside an app context)."""
    role_objs = [o for o in objects if isinstance(o, (models.Role, models.Grant, models.MemberRole))]
    member_objs = [o for o in objects if o not in role_objs]
    if not has_app_context():
        return
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if role_objs:
        role_changed.send(app, workspace_ids=workspace_ids, objects=role_objs)
    if member_objs:
        member_changed.send(app, workspace_ids=workspace_ids, objects=member_objs)

#: Sent after an Owner saved a change to a workspace's security policy
#: (:func:`.security.editing.save`: the Security page, the API or the CLI).
#: Arguments: ``workspace_id``, ``actor`` (the Owner's :class:`~.policy.Access`),
#: ``changes`` (``{field: [old, new]}``, changed fields only) and ``policy``
#: (the saved :class:`~.security.policy.Policy`).
security_policy_changed = _signals.signal("rbac-security-policy-changed")

# The signals below carry a notification: each has ``workspace_id``,
# ``recipients`` (the membership ids to tell), ``summary`` (one sentence that
# names what happened) and ``link`` (the path of the page where one acts on
# it), besides the arguments named. They are sent inside the transaction that
# made the change, so a receiver that writes rows (the notification queue)
# writes them in that transaction: a rollback drops them with the change.

#: Sent after an operation that needs approval was recorded as a pending
#: request. Arguments: ``request`` (the approval request row) and the
#: notification arguments (``recipients`` are the eligible approvers).
approval_requested = _signals.signal("rbac-approval-requested")

#: Sent after an approval request changed state. Arguments: ``request``,
#: ``outcome`` (``"approved"`` (one of two approvals given), ``"executed"``,
#: ``"failed"``, ``"rejected"``, ``"expired"`` or ``"cancelled"``), ``actor``
#: (the deciding :class:`~.policy.Access`, or None for the clock), ``reason``
#: and the notification arguments (the requester and the approvers). An
#: executed export is followed by ``"download_ready"``, sent to the requester
#: alone, whose ``link`` is the single-use download (its token is in no other
#: message and stored only hashed).
approval_decided = _signals.signal("rbac-approval-decided")

#: Sent after an alert rule raised an alert. Arguments: ``alert`` (the alert
#: row), ``severity`` and the notification arguments (the workspace's Owners
#: and Admins).
alert_raised = _signals.signal("rbac-alert-raised")

#: Sent when a workspace's access review falls due (``flask rbac review
#: remind``). Arguments: ``due_at`` and the notification arguments (the
#: workspace's Owners and Admins).
review_due = _signals.signal("rbac-review-due")

#: Sent after a workspace was marked for deletion by its Owner; it stays
#: restorable for ``RBAC_WORKSPACE_GRACE_DAYS``. Arguments: ``workspace_id``,
#: ``actor`` (the Owner's :class:`~.policy.Access`) and ``purge_after`` (the
#: aware UTC datetime after which ``flask rbac workspaces purge`` removes it).
workspace_deleted = _signals.signal("rbac-workspace-deleted")

#: Sent after a workspace marked for deletion was restored within its grace
#: period. Arguments: ``workspace_id`` and ``actor``.
workspace_restored = _signals.signal("rbac-workspace-restored")

#: Sent by the purge, inside its transaction and before the workspace's rows
#: are deleted, so a host removes what it keeps outside the database (stored
#: files, for example) and its own rows that point at the workspace.
#: Arguments: ``workspace_id`` and ``session`` (the SQLAlchemy session of the
#: purge). A receiver that raises aborts the purge, which changes nothing.
workspace_purging = _signals.signal("rbac-workspace-purging")
