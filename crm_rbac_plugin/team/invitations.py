"""Invitations: invite, resend, revoke and accept.

An invitation creates the Pending membership at once, with its roles given
through :func:`.roles.assign_role` under the inviter's own rights, so an
invite never gives more than the inviter may grant. The emailed link holds a
signed, expiring token (invitation id + nonce); only the nonce's hash is
stored, so resending (a new nonce) kills the old link and accepting or
revoking kills every link.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from .. import roles
from ..config import setting
from ..errors import PermissionDenied, ValidationError
from ..models import utcnow
from ..policy import Access
from ..roles.escalation import is_privileged, require_role_covered
from ..security import password_rules_for_user, require_password, user_inputs_of
from ..signals import member_invited
from .checks import (
    audit_action,
    has_password,
    membership_of,
    normalise_email,
    require,
    same_workspace,
    set_password,
    user_by_email,
)
from .mail import send_invitation

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["INVITE_SALT", "InvalidInvitation", "accept", "has_password", "invitation_for_token",
           "invitation_in", "invite", "needs_password", "open_invitations", "rbac_create_user",
           "resend", "revoke"]

INVITE_SALT = "rbac-invite"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=INVITE_SALT)  # type: ignore[arg-type]


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode()).hexdigest()


def _new_token(invitation: Any) -> str:
    """Give the invitation a new nonce (old links die) and return its signed token."""
    nonce = secrets.token_urlsafe(24)
    invitation.nonce_hash = _hash(nonce)
    now = utcnow()
    invitation.sent_at = now
    invitation.expires_at = now + dt.timedelta(seconds=setting("RBAC_INVITE_MAX_AGE"))
    return _serializer().dumps({"i": invitation.id, "n": nonce})


def invite(rbac: RBACProtocol, actor: Access | None, email: str, role_objs: Sequence[Any], *,
           send: bool = True, department: Any = None,
           expires_at: dt.datetime | None = None) -> tuple[Any, str]:
    """Invite ``email`` to the actor's workspace with ``role_objs``; return (invitation, token).

    Needs ``members.create``; every role is given by :func:`.roles.assign_role`
    as the actor, so only an Owner invites Owners or Admins and nobody gives a
    role wider than their own. The user account is created now (with no
    password, so nobody can sign in with it) when the address is new, and
    completed on acceptance.

    ``department`` places the member in one of the workspace's departments;
    ``expires_at`` limits every role given to that UTC instant (the Owner
    role, which is never time-limited, refuses it), so a temporary member
    loses access then without anyone having to remember.
    """
    actor = require(rbac, actor, "members", "create")
    email = normalise_email(email)
    role_objs = list(role_objs)
    if not role_objs:
        raise ValidationError("choose at least one role", field="roles")
    same_workspace(actor, *role_objs, department)
    if not roles.department_in_scope(actor, getattr(department, "id", None)):
        raise PermissionDenied("You may invite only into your own department: choose it.",
                               resource="members", action="create", field="department_id")
    session = rbac.db.session
    user, new_user = _invitee(rbac, actor, email)
    membership = rbac.models.Membership(workspace_id=actor.workspace_id, user=user,
                                        status="pending",
                                        department_id=getattr(department, "id", None))
    session.add(membership)
    session.flush()
    for role in role_objs:
        roles.assign_role(rbac, actor, membership, role, expires_at=expires_at)
    # The department's own roles come with it: the inviter must be able to give them.
    roles.check_joining(rbac, actor, membership, department, placed=True)
    invitation = rbac.models.Invitation(workspace_id=actor.workspace_id, email=email,
                                 role_ids=[r.id for r in role_objs],
                                 membership_id=membership.id,
                                 invited_by_id=actor.membership_id, new_user=new_user,
                                 nonce_hash="", expires_at=utcnow())
    session.add(invitation)
    session.flush()
    token = _new_token(invitation)
    session.flush()
    audit_action(rbac, actor, "member.invited", workspace_id=actor.workspace_id, target=email,
                 after={"roles": [r.name for r in role_objs],
                        **({"department": department.name} if department is not None else {}),
                        **({"expires_at": expires_at.isoformat()} if expires_at else {})})
    if send:
        send_invitation(rbac, invitation, token)
    member_invited.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                        invitation=invitation, actor=actor)
    return invitation, token


def _invitee(rbac: RBACProtocol, actor: Access, email: str) -> tuple[Any, bool]:
    """The user invited at ``email`` and whether the account is new (created now,
    without a password); an address already invited or a member is a 400."""
    user = user_by_email(rbac, email)
    if user is None:
        return rbac_create_user(rbac, email), True
    existing = membership_of(rbac, actor.workspace_id, rbac.user_pk(user))
    if existing is not None:
        raise ValidationError(
            f"{email} is already invited; resend the invitation instead" if existing.status ==
            "pending" else f"{email} is already a member of this workspace", field="email")
    return user, False


def rbac_create_user(rbac: RBACProtocol, email: str) -> Any:
    """Create the host user for an invited address (``@rbac.invited_user_factory`` if set)."""
    hook = rbac.hooks.invited_user
    if hook is not None:
        user = hook(email)
    else:
        fields = {"email": email}
        if hasattr(rbac.user_model, "name"):
            fields["name"] = email.partition("@")[0]
        user = rbac.user_model(**fields)
    rbac.db.session.add(user)
    rbac.db.session.flush()
    return user


def invitation_in(rbac: RBACProtocol, workspace_id: int, invitation_id: Any) -> Any:
    if not isinstance(invitation_id, int):
        return None
    Invitation = rbac.models.Invitation
    return rbac.db.session.scalar(sa.select(Invitation).where(
        Invitation.id == invitation_id, Invitation.workspace_id == workspace_id))


def open_invitations(rbac: RBACProtocol, workspace_id: int) -> list[Any]:
    """Invitations neither accepted nor revoked, newest first (expired ones included)."""
    Invitation = rbac.models.Invitation
    return list(rbac.db.session.scalars(
        sa.select(Invitation).where(Invitation.workspace_id == workspace_id,
                                    Invitation.accepted_at.is_(None),
                                    Invitation.revoked_at.is_(None))
        .order_by(Invitation.id.desc())))


def _check_open(invitation: Any) -> None:
    if invitation.accepted_at is not None:
        raise ValidationError("this invitation was already accepted", field="invitation")
    if invitation.revoked_at is not None:
        raise ValidationError("this invitation was revoked", field="invitation")


def _require_invitation_in_scope(actor: Access, invitation: Any) -> None:
    """Refuse (403) an invitation outside the scope of the actor's ``members.create``.

    Resending or revoking acts on the invitee's Pending membership, read
    against ``members.create`` as inviting it was: a Manager handles the
    invitations into their own department, not one an Owner sent elsewhere.
    """
    membership = invitation.membership
    if membership is not None:
        roles.require_member_in_scope(actor, "create", membership)
    elif not roles.department_in_scope(actor, None):
        raise PermissionDenied("Only a member who may invite anyone can handle this invitation.",
                               resource="members", action="create")


def _invited_roles(rbac: RBACProtocol, invitation: Any) -> list[Any]:
    """The roles the invitation gives: those it names and those its Pending membership
    holds (its department's included), each once."""
    R = rbac.models.Role
    ids = set(invitation.role_ids or ())
    membership = invitation.membership
    if membership is not None:
        ids.update(mr.role_id for mr in membership.member_roles)
    ids = {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}
    if not ids:
        return []
    return list(rbac.db.session.scalars(sa.select(R).where(
        R.id.in_(sorted(ids)), R.workspace_id == invitation.workspace_id).order_by(R.id)))


def _require_may_give_roles(rbac: RBACProtocol, actor: Access, invitation: Any,
                            verb: str) -> None:
    """Refuse (403) resending or revoking an invitation whose roles the actor could not give.

    A new link gives the roles again, and a revocation takes them back, so
    both follow the rule of inviting (:func:`.roles.assign_role`): only an
    Owner handles an invitation to a privileged role (Owner, Admin or one
    managing members, roles or settings), and nobody one to a role wider
    than their own.
    """
    if actor.is_owner:
        return
    for role in _invited_roles(rbac, invitation):
        if is_privileged(role):
            raise PermissionDenied(f"Only an Owner can {verb} an invitation that gives the "
                                   f"{role.name} role.", resource="members", action="create")
        require_role_covered(actor, role, f"{verb} an invitation that gives {role.name}")


def resend(rbac: RBACProtocol, actor: Access | None, invitation: Any, *, send: bool = True) -> str:
    """Send a new link (new nonce, new expiry); the previous link stops working.

    Refused (403) outside the actor's ``members.create`` scope, and for an
    invitation to a role the actor could not give themselves.
    """
    actor = require(rbac, actor, "members", "create")
    same_workspace(actor, invitation)
    _check_open(invitation)
    _require_invitation_in_scope(actor, invitation)
    _require_may_give_roles(rbac, actor, invitation, "resend")
    token = _new_token(invitation)
    rbac.db.session.flush()
    audit_action(rbac, actor, "member.invite_resent", workspace_id=actor.workspace_id,
                 target=invitation.email, invitation_id=invitation.id,
                 expires_at=invitation.expires_at)
    if send:
        send_invitation(rbac, invitation, token)
    member_invited.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                        invitation=invitation, actor=actor)
    return token


def revoke(rbac: RBACProtocol, actor: Access | None, invitation: Any) -> None:
    """End an invitation and remove its Pending membership (and the unused account).

    The account goes only when this invitation created it, nobody has set its
    password, and no other membership (another workspace's invitation
    included) refers to it: a link still open elsewhere keeps working.
    Refused (403) as :func:`resend` is.
    """
    actor = require(rbac, actor, "members", "create")
    same_workspace(actor, invitation)
    _check_open(invitation)
    _require_invitation_in_scope(actor, invitation)
    _require_may_give_roles(rbac, actor, invitation, "revoke")
    invitation.revoked_at = utcnow()
    membership = invitation.membership
    if membership is not None and membership.status == "pending":
        user = membership.user
        rbac.db.session.delete(membership)
        rbac.db.session.flush()
        M = rbac.models.Membership
        others = rbac.db.session.scalar(sa.select(sa.func.count()).select_from(M)
                                        .where(M.user_id == rbac.user_pk(user)))
        if invitation.new_user and not others and not has_password(user):
            rbac.db.session.delete(user)
    rbac.db.session.flush()
    audit_action(rbac, actor, "member.invite_revoked", workspace_id=actor.workspace_id,
                 target=invitation.email, invitation_id=invitation.id)


class InvalidInvitation(ValidationError):
    """A link that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, field="token")
        self.status = status


def invitation_for_token(rbac: RBACProtocol, token: str, *, max_age: int | None = None) -> Any:
    """Return the open invitation a token names, or raise :class:`InvalidInvitation`."""
    max_age = setting("RBAC_INVITE_MAX_AGE") if max_age is None else max_age
    try:
        data = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidInvitation("This invitation link has expired. Ask for a new one.") from None
    except BadSignature:
        raise InvalidInvitation("This invitation link is not valid.", 404) from None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int) or not isinstance(
            data.get("n"), str):
        raise InvalidInvitation("This invitation link is not valid.", 404)
    invitation = rbac.db.session.get(rbac.models.Invitation, data["i"])
    if invitation is None:
        raise InvalidInvitation("This invitation no longer exists.", 404)
    if invitation.accepted_at is not None:
        raise InvalidInvitation("This invitation has already been used.")
    if invitation.revoked_at is not None:
        raise InvalidInvitation("This invitation was revoked.")
    if not secrets.compare_digest(invitation.nonce_hash, _hash(data["n"])):
        raise InvalidInvitation("This link was replaced by a newer invitation; "
                                "use the most recent email.")
    if invitation.expires_at <= utcnow():
        raise InvalidInvitation("This invitation link has expired. Ask for a new one.")
    if invitation.membership is None:
        raise InvalidInvitation("This invitation no longer exists.", 404)
    workspace = rbac.db.session.get(rbac.models.Workspace, invitation.workspace_id)
    if workspace is None or workspace.deleted_at is not None:
        # A deleted workspace has no members to join (see ..lifecycle).
        raise InvalidInvitation("This invitation no longer exists.", 404)
    return invitation


def needs_password(invitation: Any) -> bool:
    """Whether accepting ``invitation`` sets the account's name and password.

    An account without a password (created by some invitation, this one or
    another workspace's) is completed by whoever holds a valid link to it
    first; an account with a password joins only when its owner is signed in.
    The decision rests on the account, never on which invitation created it,
    so revoking or accepting another workspace's invitation does not strand
    this one.
    """
    membership = invitation.membership
    return membership is not None and not has_password(membership.user)


def accept(rbac: RBACProtocol, invitation: Any, *, user: Any = None, name: str | None = None,
           password: str | None = None) -> Any:
    """Accept an open invitation; return the now Active membership.

    An account without a password (:func:`needs_password`) needs ``name`` and
    ``password``; an account with one must be the signed-in ``user``.
    """
    _check_open(invitation)
    membership = invitation.membership
    invited_user = membership.user
    if needs_password(invitation):
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
            raise ValidationError("enter your name (up to 120 characters)", field="name")
        # The strictest password rules of the account's workspaces, this one included.
        require_password(password, field="password",
                         user_inputs=user_inputs_of(invited_user, invitation.email, name),
                         policy=password_rules_for_user(rbac, membership.user_id,
                                                        [invitation.workspace_id]))
        if hasattr(invited_user, "name"):
            invited_user.name = name.strip()
        set_password(invited_user, password)
    elif user is None or rbac.user_pk(user) != rbac.user_pk(invited_user):
        raise PermissionDenied(f"Sign in as {invitation.email} to accept this invitation.")
    membership.status = "active"
    invitation.accepted_at = utcnow()
    rbac.db.session.flush()
    audit_action(rbac, membership, "member.joined", workspace_id=invitation.workspace_id,
                 target=invitation.email)
    return membership
