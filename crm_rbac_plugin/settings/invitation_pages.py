"""What the invitation pages tell the person holding the link.

Every state of the link's page (accept, sign in to accept, already used,
expired, revoked, replaced) names the workspace, who invited them and the
role(s) they get, so they know what they are joining before they act; the
password rule is stated under the field before it can be broken.

An error page shows those details only for a link whose signature verifies
(its age aside): the person holds a link the workspace really sent, whose
email already named the workspace and roles. A forged or garbled token
learns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.routing import BuildError

from .. import security, team
from ..urls import safe_next
from .blueprint import render

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["InvitationSummary", "error_context",
           "error_page", "page_context", "sign_in_url", "summary"]

@dataclass(frozen=True)
class InvitationSummary:
    """The workspace, the inviter's name and the roles an invitation gives."""

    workspace: str
    inviter: str | None
    roles: tuple[str, ...]
    email: str


def summary(rbac: RBACProtocol, invitation: Any) -> InvitationSummary:
    """Describe ``invitation`` for the person it invites."""
    workspace = rbac.db.session.get(rbac.models.Workspace, invitation.workspace_id)
    inviter = invitation.invited_by.display_name if invitation.invited_by is not None else None
    membership = invitation.membership
    roles = tuple(sorted(mr.role.name for mr in membership.member_roles)) if membership else ()
    return InvitationSummary(workspace.name if workspace is not None else "the workspace",
                             inviter, roles, invitation.email)


def sign_in_url(next_url: str | None = None) -> str | None:
    """The host's sign-in page (Flask-Login's ``login_view``), or None when it has none."""
    manager = getattr(current_app, "login_manager", None)
    view = getattr(manager, "login_view", None)
    if not view:
        return None
    try:
        if next_url:
            return url_for(view, next=safe_next(next_url, "/"))
        return url_for(view)
    except BuildError:
        return None


def page_context(rbac: RBACProtocol, invitation: Any, form: Any) -> dict[str, Any]:
    """The accept page's extra context: the summary, the password rule (also set as
    the help text of ``form``'s password field), the sign-in link.

    The rule is the one :func:`..team.accept` applies: the strictest of the
    workspaces the account belongs to and the one it joins."""
    membership = invitation.membership
    rules = security.password_rules_for_user(
        rbac, membership.user_id if membership is not None else None, [invitation.workspace_id])
    form.password.description = security.describe_rules(rules)
    return {"about": summary(rbac, invitation), "password_help": form.password.description,
            "password_min": rules.min_length,
            "sign_in_url": sign_in_url(request.full_path.rstrip("?"))}


def _signed_invitation(rbac: RBACProtocol, token: str) -> Any:
    """The invitation a genuinely signed token names, however old, or None."""
    serializer = URLSafeTimedSerializer(current_app.secret_key,  # type: ignore[arg-type]
                                        salt=team.INVITE_SALT)
    try:
        data = serializer.loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int):
        return None
    return rbac.db.session.get(rbac.models.Invitation, data["i"])


def error_context(rbac: RBACProtocol, token: str, message: str) -> dict[str, Any]:
    """The error page's context: what went wrong, the invitation's summary when the link
    is genuine, and a sign-in link (an invitation already used is most often one's own)."""
    invitation = _signed_invitation(rbac, token)
    used = invitation is not None and invitation.accepted_at is not None
    return {"message": message, "used": used,
            "about": summary(rbac, invitation) if invitation is not None else None,
            "sign_in_url": sign_in_url()}


def error_page(rbac: RBACProtocol, token: str, error: team.InvalidInvitation) -> tuple[str, int]:
    """Render the page of a link that cannot be used, with ``error``'s status."""
    return render("team/invitation_error.html", error.status,
                  **error_context(rbac, token, error.message))
