"""Team management: invitations, member lifecycle, departments, record reassignment.

Plain functions in the style of :mod:`.roles`: each takes the *actor* (the
:class:`~.policy.Access` of whoever asks), refuses with
:class:`~.errors.PermissionDenied` (403) or :class:`~.errors.ValidationError`
(400) before changing anything, adds to the session and flushes; the caller
commits. The settings pages (:mod:`.settings.team_views`) and the
``flask rbac members`` commands are thin wrappers over them.

- An invitation creates the Pending membership at once, with its roles given
  through :func:`.roles.assign_role` under the inviter's own rights, so an
  invite never gives more than the inviter may grant. The emailed link holds
  a signed, expiring token (invitation id + nonce); only the nonce's hash is
  stored, so resending (a new nonce) kills the old link and accepting or
  revoking kills every link.
- Deactivation is ``Membership.status = "inactive"``: the member's access is
  computed per request from that status (and the flush bumps the policy
  version), so open sessions and API tokens lose access on their next request.
- :func:`reassign` moves records from one owner to another through the ORM,
  as the actor, so the flush guard checks every row; it runs in one SAVEPOINT.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa
from flask import (
    Flask,
    current_app,
    has_request_context,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from . import roles
from .errors import PermissionDenied, ValidationError
from .loader import BYPASS
from .models import utcnow
from .policy import Access
from .signals import member_invited, records_reassigned

if TYPE_CHECKING:
    from .extension import RBAC

INVITE_SALT = "rbac-invite"
EMAIL_MAX = 255


def init_app(app: Flask) -> None:
    """Record each member's last activity."""
    app.extensions["rbac_team"] = {"seen": {}}
    app.before_request(_touch_last_seen)


def _rbac() -> RBAC:
    return current_app.extensions["rbac"].rbac  # type: ignore[no-any-return]


def _audit(rbac: RBAC, who: Any, action: str, **details: Any) -> None:
    """Add to the audit trail when the extension has one.

    ``who`` is the actor's Access (or the membership acting on its own, as
    when accepting an invitation), so CLI runs are attributed too.
    """
    record = getattr(rbac, "audit", None)
    if record is not None:
        user_id = getattr(who, "user_id", None)
        membership_id = getattr(who, "membership_id", None) or getattr(who, "id", None)
        record(action, actor_ids=(user_id, membership_id), **details)


# -- last activity --------------------------------------------------------------


def _touch_last_seen() -> None:
    """Write ``Membership.last_seen_at`` at most once per interval per member and process.

    A conditional Core UPDATE (no flush, so no policy-version bump: cached
    access stays valid) committed at the start of the request, when the
    session holds nothing else.
    """
    if request.endpoint == "static":
        return
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if not user or not user.is_authenticated:
        return
    rbac = _rbac()
    ws = rbac.current_workspace_id()
    if ws is None:
        return
    key = (rbac.user_pk(user), str(ws))
    seen: dict[tuple[Any, str], dt.datetime] = current_app.extensions["rbac_team"]["seen"]
    now = utcnow()
    interval = dt.timedelta(seconds=current_app.config["RBAC_LAST_SEEN_INTERVAL"])
    last = seen.get(key)
    if last is not None and now - last < interval:
        return
    seen[key] = now
    M = rbac.models.Membership.__table__
    try:
        rbac.db.session.execute(
            sa.update(M).where(M.c.user_id == key[0], M.c.workspace_id == int(key[1]),
                               M.c.status == "active",
                               sa.or_(M.c.last_seen_at.is_(None),
                                      M.c.last_seen_at < now - interval))
            .values(last_seen_at=now))
        rbac.db.session.commit()
    except (ValueError, sa.exc.SQLAlchemyError):  # a stale session value: not worth a 500
        rbac.db.session.rollback()


# -- checks ----------------------------------------------------------------------


require = roles.require


_same_workspace = roles.same_workspace


def _privileged(membership: Any) -> bool:
    return any(roles.is_privileged(mr.role) for mr in membership.member_roles)


def normalise_email(email: Any) -> str:
    if not isinstance(email, str):
        raise ValidationError("an email address is required", field="email")
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > EMAIL_MAX or " " in email:
        raise ValidationError(f"{email or 'that'} is not an email address", field="email")
    return email


def user_by_email(rbac: RBAC, email: str) -> Any:
    U = rbac.user_model
    return rbac.db.session.scalar(sa.select(U).where(sa.func.lower(U.email) == email.lower()))


def membership_of(rbac: RBAC, workspace_id: int, user_id: Any) -> Any:
    M = rbac.models.Membership
    return rbac.db.session.scalar(sa.select(M).where(M.workspace_id == workspace_id,
                                                     M.user_id == user_id))


# -- invitations -------------------------------------------------------------------


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
    invitation.expires_at = now + dt.timedelta(seconds=current_app.config["RBAC_INVITE_MAX_AGE"])
    return _serializer().dumps({"i": invitation.id, "n": nonce})


def invite(rbac: RBAC, actor: Access | None, email: str, role_objs: Sequence[Any], *,
           send: bool = True) -> tuple[Any, str]:
    """Invite ``email`` to the actor's workspace with ``role_objs``; return (invitation, token).

    Needs ``members.create``; every role is given by :func:`.roles.assign_role`
    as the actor, so only an Owner invites Owners or Admins and nobody gives a
    role wider than their own. The user account is created now (with no
    password, so nobody can sign in with it) when the address is new, and
    completed on acceptance.
    """
    actor = require(rbac, actor, "members", "create")
    email = normalise_email(email)
    role_objs = list(role_objs)
    if not role_objs:
        raise ValidationError("choose at least one role", field="roles")
    _same_workspace(actor, *role_objs)
    session = rbac.db.session
    user = user_by_email(rbac, email)
    new_user = user is None
    if user is None:
        user = rbac_create_user(rbac, email)
    elif membership_of(rbac, actor.workspace_id, user.id) is not None:
        existing = membership_of(rbac, actor.workspace_id, user.id)
        raise ValidationError(
            f"{email} is already invited; resend the invitation instead" if existing.status ==
            "pending" else f"{email} is already a member of this workspace", field="email")
    membership = rbac.models.Membership(workspace_id=actor.workspace_id, user=user,
                                        status="pending")
    session.add(membership)
    session.flush()
    for role in role_objs:
        roles.assign_role(rbac, actor, membership, role)
    invitation = rbac.Invitation(workspace_id=actor.workspace_id, email=email,
                                 role_ids=[r.id for r in role_objs],
                                 membership_id=membership.id,
                                 invited_by_id=actor.membership_id, new_user=new_user,
                                 nonce_hash="", expires_at=utcnow())
    session.add(invitation)
    session.flush()
    token = _new_token(invitation)
    session.flush()
    _audit(rbac, actor, "member.invited", workspace_id=actor.workspace_id, target=email,
           after={"roles": [r.name for r in role_objs]})
    if send:
        send_invitation(rbac, invitation, token)
    member_invited.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                        invitation=invitation, actor=actor)
    return invitation, token


def rbac_create_user(rbac: RBAC, email: str) -> Any:
    """Create the host user for an invited address (``rbac.create_user_from_invite`` if set)."""
    hook = getattr(rbac, "create_user_from_invite", None)
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


def invitation_in(rbac: RBAC, workspace_id: int, invitation_id: Any) -> Any:
    if not isinstance(invitation_id, int):
        return None
    I = rbac.Invitation
    return rbac.db.session.scalar(sa.select(I).where(I.id == invitation_id,
                                                     I.workspace_id == workspace_id))


def open_invitations(rbac: RBAC, workspace_id: int) -> list[Any]:
    """Invitations neither accepted nor revoked, newest first (expired ones included)."""
    I = rbac.Invitation
    return list(rbac.db.session.scalars(
        sa.select(I).where(I.workspace_id == workspace_id, I.accepted_at.is_(None),
                           I.revoked_at.is_(None)).order_by(I.id.desc())))


def _check_open(invitation: Any) -> None:
    if invitation.accepted_at is not None:
        raise ValidationError("this invitation was already accepted", field="invitation")
    if invitation.revoked_at is not None:
        raise ValidationError("this invitation was revoked", field="invitation")


def resend(rbac: RBAC, actor: Access | None, invitation: Any, *, send: bool = True) -> str:
    """Send a new link (new nonce, new expiry); the previous link stops working."""
    actor = require(rbac, actor, "members", "create")
    _same_workspace(actor, invitation)
    _check_open(invitation)
    token = _new_token(invitation)
    rbac.db.session.flush()
    _audit(rbac, actor, "member.invite_resent", workspace_id=actor.workspace_id,
           target=invitation.email, invitation_id=invitation.id,
           expires_at=invitation.expires_at)
    if send:
        send_invitation(rbac, invitation, token)
    member_invited.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                        invitation=invitation, actor=actor)
    return token


def revoke(rbac: RBAC, actor: Access | None, invitation: Any) -> None:
    """End an invitation and remove its Pending membership (and the unused account).

    The account goes only when this invitation created it, nobody has set its
    password, and no other membership (another workspace's invitation
    included) refers to it: a link still open elsewhere keeps working.
    """
    actor = require(rbac, actor, "members", "create")
    _same_workspace(actor, invitation)
    _check_open(invitation)
    invitation.revoked_at = utcnow()
    membership = invitation.membership
    if membership is not None and membership.status == "pending":
        user = membership.user
        rbac.db.session.delete(membership)
        rbac.db.session.flush()
        M = rbac.models.Membership
        others = rbac.db.session.scalar(sa.select(sa.func.count()).select_from(M)
                                        .where(M.user_id == user.id))
        if invitation.new_user and not others and not has_password(user):
            rbac.db.session.delete(user)
    rbac.db.session.flush()
    _audit(rbac, actor, "member.invite_revoked", workspace_id=actor.workspace_id,
           target=invitation.email, invitation_id=invitation.id)


class InvalidInvitation(ValidationError):
    """A link that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, field="token")
        self.status = status


def invitation_for_token(rbac: RBAC, token: str, *, max_age: int | None = None) -> Any:
    """Return the open invitation a token names, or raise :class:`InvalidInvitation`."""
    max_age = current_app.config["RBAC_INVITE_MAX_AGE"] if max_age is None else max_age
    try:
        data = _serializer().loads(token, max_age=max_age)
    except SignatureExpired:
        raise InvalidInvitation("This invitation link has expired. Ask for a new one.") from None
    except BadSignature:
        raise InvalidInvitation("This invitation link is not valid.", 404) from None
    if not isinstance(data, dict) or not isinstance(data.get("i"), int) or not isinstance(
            data.get("n"), str):
        raise InvalidInvitation("This invitation link is not valid.", 404)
    invitation = rbac.db.session.get(rbac.Invitation, data["i"])
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
    return invitation


def has_password(user: Any) -> bool:
    """Return whether ``user`` can already sign in with a password.

    The host says so through ``user.has_usable_password`` (a bool or a
    method); otherwise a non-empty ``password_hash`` counts. A user model with
    neither is taken to have one, so that an invitation never sets the
    password of an account that signs in some other way.
    """
    usable = getattr(user, "has_usable_password", None)
    if usable is not None:
        return bool(usable() if callable(usable) else usable)
    if hasattr(user, "password_hash"):
        return bool(user.password_hash)
    return True


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


def accept(rbac: RBAC, invitation: Any, *, user: Any = None, name: str | None = None,
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
        if not isinstance(password, str) or len(password) < 8:
            raise ValidationError("choose a password of at least 8 characters",
                                  field="password")
        if hasattr(invited_user, "name"):
            invited_user.name = name.strip()
        set_password(invited_user, password)
    elif user is None or rbac.user_pk(user) != rbac.user_pk(invited_user):
        raise PermissionDenied(f"Sign in as {invitation.email} to accept this invitation.")
    membership.status = "active"
    invitation.accepted_at = utcnow()
    rbac.db.session.flush()
    _audit(rbac, membership, "member.joined", workspace_id=invitation.workspace_id,
           target=invitation.email)
    return membership


def set_password(user: Any, password: str) -> None:
    setter = getattr(user, "set_password", None)
    if setter is None:
        raise ValidationError("this application's users have no password to set",
                              field="password")
    setter(password)


# -- mail --------------------------------------------------------------------------


def _external_url(endpoint: str, **values: Any) -> str:
    if has_request_context():
        return url_for(endpoint, _external=True, **values)
    with current_app.test_request_context(base_url=current_app.config["RBAC_BASE_URL"]):
        return url_for(endpoint, _external=True, **values)


def send_mail(subject: str, recipient: str, template: str, **context: Any) -> Any:
    """Send a mail through Flask-Mail (``rbac/mail/<template>.txt``/``.html``).

    Also printed to the console, or appended to the file ``RBAC_MAIL_CONSOLE``
    names (default: the console when no ``MAIL_SERVER`` is configured).
    """
    from flask_mail import Message

    body = render_template(f"rbac/mail/{template}.txt", **context)
    html = render_template(f"rbac/mail/{template}.html", **context)
    message = Message(subject=subject, recipients=[recipient], body=body, html=html)
    mail = current_app.extensions.get("mail")
    if mail is not None:
        mail.send(message)
    console = current_app.config["RBAC_MAIL_CONSOLE"]
    if console is None:
        console = "MAIL_SERVER" not in current_app.config or mail is None
    text = f"--- mail to {recipient}: {subject}\n{body}\n---\n"
    if isinstance(console, str):
        with open(console, "a", encoding="utf-8") as out:
            out.write(text)
    elif console:
        click.echo(text, err=True, nl=False)
    return message


def send_invitation(rbac: RBAC, invitation: Any, token: str) -> Any:
    ws = rbac.db.session.get(rbac.models.Workspace, invitation.workspace_id)
    inviter = invitation.invited_by.user if invitation.invited_by is not None else None
    Role = rbac.models.Role
    role_names = list(rbac.db.session.scalars(
        sa.select(Role.name).where(Role.id.in_(invitation.role_ids or [-1])).order_by(Role.id)))
    link = _external_url("rbac_settings.accept_invitation", token=token)
    return send_mail(f"You are invited to {ws.name}", invitation.email, "invitation",
                     workspace=ws, inviter=inviter, roles=role_names, link=link,
                     expires_at=invitation.expires_at)


# -- deactivation -----------------------------------------------------------------------


def deactivate(rbac: RBAC, actor: Access | None, membership: Any) -> None:
    """Make a member Inactive: no access from their next request on; records stay theirs."""
    actor = require(rbac, actor, "members", "edit")
    _same_workspace(actor, membership)
    if membership.id == actor.membership_id:
        raise PermissionDenied("You cannot deactivate yourself.")
    if membership.status == "pending":
        raise ValidationError("this member has not joined yet; revoke the invitation instead",
                              field="status")
    if membership.status == "inactive":
        raise ValidationError(f"{membership.display_name} is already inactive", field="status")
    if _privileged(membership) and not actor.is_owner:
        raise PermissionDenied("Only an Owner can deactivate an Owner or an Admin.")
    roles.ensure_owner_remains(rbac, membership.workspace_id, excluding_membership=membership.id)
    membership.status = "inactive"
    rbac.db.session.flush()
    _audit(rbac, actor, "member.deactivated", workspace_id=actor.workspace_id,
           target=membership.display_name, before={"status": "active"},
           after={"status": "inactive"})


def reactivate(rbac: RBAC, actor: Access | None, membership: Any) -> None:
    """Restore an Inactive member's access (with the roles they held)."""
    actor = require(rbac, actor, "members", "edit")
    _same_workspace(actor, membership)
    if membership.status != "inactive":
        raise ValidationError(f"{membership.display_name} is not inactive", field="status")
    if _privileged(membership) and not actor.is_owner:
        raise PermissionDenied("Only an Owner can reactivate an Owner or an Admin.")
    membership.status = "active"
    rbac.db.session.flush()
    _audit(rbac, actor, "member.reactivated", workspace_id=actor.workspace_id,
           target=membership.display_name, before={"status": "inactive"},
           after={"status": "active"})


# -- record reassignment --------------------------------------------------------------


def reassignable(rbac: RBAC) -> list[Any]:
    """Resources whose records have an owner column."""
    return [r for r in rbac.registry if r.model is not None and r.owner_column]


def _resources(rbac: RBAC, names: Iterable[str] | None) -> list[Any]:
    available = {r.name: r for r in reassignable(rbac)}
    if not names:
        return list(available.values())
    out = []
    for name in names:
        if name not in available:
            raise ValidationError(f"{name!r} has no owned records to reassign", field="resources")
        out.append(available[name])
    return out


def _owner_stmt(res: Any, actor: Access, from_user_id: Any, ids: Sequence[int] | None) -> Any:
    model = res.model
    stmt = sa.select(model).where(getattr(model, res.owner_column) == from_user_id,
                                  getattr(model, res.workspace_column) == actor.workspace_id)
    if ids is not None:
        stmt = stmt.where(model.id.in_(list(ids)))
    return stmt.execution_options(rbac_action="manage")


def _check_reassign(rbac: RBAC, actor: Access | None, from_user_id: Any, to_user_id: Any,
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
    chosen = _resources(rbac, resources)
    if ids is not None and len(chosen) != 1:
        raise ValidationError("record ids need exactly one resource", field="resources")
    for res in chosen:
        decision = rbac.decide(actor, "manage", res.name)
        if not decision:
            raise PermissionDenied(f"You may not reassign {res.name}: {decision.reason}",
                                   resource=res.name, action="manage")
    return actor, chosen


def reassign_preview(rbac: RBAC, actor: Access | None, from_user_id: Any, to_user_id: Any,
                     resources: Iterable[str] | None = None,
                     ids: Sequence[int] | None = None) -> dict[str, int]:
    """Count, per resource, the records :func:`reassign` would move (nothing changes)."""
    actor, chosen = _check_reassign(rbac, actor, from_user_id, to_user_id, resources, ids)
    out = {}
    with rbac.as_member(actor):
        for res in chosen:
            out[res.name] = len(_record_ids(rbac, res, actor, from_user_id, ids))
    return out


def _record_ids(rbac: RBAC, res: Any, actor: Access, from_user_id: Any,
                ids: Sequence[int] | None) -> list[Any]:
    """Ids of the records the actor may manage that ``from_user_id`` owns."""
    pk = res.model.id
    stmt = _owner_stmt(res, actor, from_user_id, ids).with_only_columns(pk).order_by(pk)
    return list(rbac.db.session.scalars(stmt))


def _set_owner(res: Any, record: Any, user_id: Any) -> None:
    """Change one record's owner (a seam for tests that force a failure midway)."""
    setattr(record, res.owner_column, user_id)


def reassign(rbac: RBAC, actor: Access | None, from_user_id: Any, to_user_id: Any,
             resources: Iterable[str] | None = None, ids: Sequence[int] | None = None, *,
             progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Move records of ``resources`` (all by default) from one owner to another.

    Needs ``manage`` (the reassign right) on each resource; only records the
    actor may manage move. Records change one by one through the ORM inside
    ``rbac.as_member(actor)``, flushed in batches, so the write guard checks
    every row; everything runs in one SAVEPOINT, so an error anywhere leaves
    no record changed. ``progress(n)`` is called after each batch of ``n``.
    Returns the number moved per resource.
    """
    actor, chosen = _check_reassign(rbac, actor, from_user_id, to_user_id, resources, ids)
    session = rbac.db.session
    batch = max(1, int(current_app.config["RBAC_REASSIGN_BATCH"]))
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
    _audit(rbac, actor, "records.reassigned", workspace_id=actor.workspace_id,
           target=f"user {from_user_id} -> user {to_user_id}", after=counts,
           from_user_id=from_user_id, to_user_id=to_user_id, ids=ids)
    records_reassigned.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                            workspace_id=actor.workspace_id, actor=actor,
                            from_user_id=from_user_id, to_user_id=to_user_id, counts=counts)
    return counts


# -- departments and managers -------------------------------------------------------


def _department_name(rbac: RBAC, workspace_id: int, name: Any, dept_id: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
        raise ValidationError("a department needs a name of 1 to 120 characters", field="name")
    name = name.strip()
    D = rbac.models.Department
    clash = rbac.db.session.scalar(sa.select(D.id).where(
        D.workspace_id == workspace_id, sa.func.lower(D.name) == name.lower(),
        D.id != (dept_id or -1)))
    if clash is not None:
        raise ValidationError(f"a department named {name!r} already exists", field="name")
    return name


def create_department(rbac: RBAC, actor: Access | None, name: str) -> Any:
    actor = require(rbac, actor, "members", "edit")
    dept = rbac.models.Department(workspace_id=actor.workspace_id,
                                  name=_department_name(rbac, actor.workspace_id, name))
    rbac.db.session.add(dept)
    rbac.db.session.flush()
    return dept


def rename_department(rbac: RBAC, actor: Access | None, dept: Any, name: str) -> None:
    actor = require(rbac, actor, "members", "edit")
    _same_workspace(actor, dept)
    dept.name = _department_name(rbac, actor.workspace_id, name, dept.id)
    rbac.db.session.flush()


def department_members(rbac: RBAC, dept: Any) -> list[Any]:
    M = rbac.models.Membership
    return list(rbac.db.session.scalars(sa.select(M).where(M.department_id == dept.id)
                                        .order_by(M.id)))


def delete_department(rbac: RBAC, actor: Access | None, dept: Any) -> None:
    """Delete an empty department (members move first)."""
    actor = require(rbac, actor, "members", "edit")
    _same_workspace(actor, dept)
    if department_members(rbac, dept):
        raise ValidationError(f"{dept.name} still has members; move members first",
                              field="department")
    rbac.db.session.delete(dept)
    rbac.db.session.flush()


def set_department(rbac: RBAC, actor: Access | None, membership: Any, dept: Any) -> None:
    actor = require(rbac, actor, "members", "edit")
    _same_workspace(actor, membership, dept)
    if _privileged(membership) and not actor.is_owner and membership.id != actor.membership_id:
        raise PermissionDenied("Only an Owner can move an Owner or an Admin.")
    membership.department_id = dept.id if dept is not None else None
    rbac.db.session.flush()


#: Per-member visibility levels (seed: All / Department / Own); None: as the roles grant.
VISIBILITY_LEVELS: tuple[str, ...] = ("all", "department", "own")


def set_visibility(rbac: RBAC, actor: Access | None, membership: Any, level: str | None) -> None:
    """Cap what a member sees to a visibility level (Owners always see all)."""
    actor = require(rbac, actor, "members", "edit")
    _same_workspace(actor, membership)
    if level is not None and level not in VISIBILITY_LEVELS:
        raise ValidationError(f"visibility must be one of {', '.join(VISIBILITY_LEVELS)}",
                              field="visibility")
    if membership.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot change your own visibility.")
    if _privileged(membership) and not actor.is_owner:
        raise PermissionDenied("Only an Owner can change an Owner's or an Admin's visibility.")
    membership.visibility = level
    rbac.db.session.flush()


def assigned_members(rbac: RBAC, manager: Any) -> list[Any]:
    m = rbac.models
    return list(rbac.db.session.scalars(
        sa.select(m.Membership).join(m.ManagerAssignment,
                                     m.ManagerAssignment.member_id == m.Membership.id)
        .where(m.ManagerAssignment.manager_id == manager.id).order_by(m.Membership.id)))


def assign_to_manager(rbac: RBAC, actor: Access | None, manager: Any, member: Any) -> Any:
    """Let ``manager`` see and edit ``member``'s records (the ``team`` scope)."""
    actor = require(rbac, actor, "members", "edit")
    _same_workspace(actor, manager, member)
    if manager.id == member.id:
        raise ValidationError("a member cannot manage themselves", field="member_id")
    if manager.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot widen your own team.")
    A = rbac.models.ManagerAssignment
    if rbac.db.session.get(A, (manager.id, member.id)) is not None:
        raise ValidationError(f"{member.display_name} is already assigned", field="member_id")
    row = A(manager_id=manager.id, member_id=member.id)
    rbac.db.session.add(row)
    rbac.db.session.flush()
    return row


def unassign_from_manager(rbac: RBAC, actor: Access | None, manager: Any, member: Any) -> None:
    actor = require(rbac, actor, "members", "edit")
    _same_workspace(actor, manager, member)
    A = rbac.models.ManagerAssignment
    row = rbac.db.session.get(A, (manager.id, member.id))
    if row is None:
        raise ValidationError(f"{member.display_name} is not assigned", field="member_id")
    rbac.db.session.delete(row)
    rbac.db.session.flush()


# -- profile -----------------------------------------------------------------------------


def update_profile(rbac: RBAC, membership: Any, *, name: str | None = None,
                   notify_email: bool | None = None, current_password: str | None = None,
                   new_password: str | None = None) -> None:
    """A member edits their own name, password and notifications (never roles or status)."""
    user = membership.user
    if name is not None:
        if not name.strip() or len(name.strip()) > 120:
            raise ValidationError("enter a name of 1 to 120 characters", field="name")
        if hasattr(user, "name"):
            user.name = name.strip()
    if new_password:
        check = getattr(user, "check_password", None)
        if check is None or not check(current_password or ""):
            raise ValidationError("your current password is not correct",
                                  field="current_password")
        if len(new_password) < 8:
            raise ValidationError("choose a password of at least 8 characters",
                                  field="new_password")
        set_password(user, new_password)
    if notify_email is not None:
        membership.notify_email = bool(notify_email)
    rbac.db.session.flush()


# -- listing -----------------------------------------------------------------------


@dataclass(frozen=True)
class MemberFilter:
    status: str = ""
    role_id: int | None = None
    department_id: int | None = None
    q: str = ""


def list_members(rbac: RBAC, workspace_id: int, flt: MemberFilter | None = None) -> list[Any]:
    """Memberships of a workspace filtered by status, role, department and name/email."""
    flt = flt or MemberFilter()
    m = rbac.models
    U = rbac.user_model
    stmt = (sa.select(m.Membership).join(U, U.id == m.Membership.user_id)
            .where(m.Membership.workspace_id == workspace_id))
    if flt.status:
        stmt = stmt.where(m.Membership.status == flt.status)
    if flt.department_id is not None:
        stmt = stmt.where(m.Membership.department_id == flt.department_id)
    if flt.role_id is not None:
        stmt = stmt.where(m.Membership.id.in_(sa.select(m.MemberRole.membership_id)
                                              .where(m.MemberRole.role_id == flt.role_id)))
    if flt.q:
        like = f"%{flt.q.strip().lower()}%"
        conds = [sa.func.lower(U.email).like(like)]
        if hasattr(U, "name"):
            # A pending member's account name is not this workspace's to know (it may
            # come from another one): it is searchable only once they have joined.
            conds.append(sa.and_(m.Membership.status != "pending",
                                 sa.func.lower(U.name).like(like)))
        stmt = stmt.where(sa.or_(*conds))
    return list(rbac.db.session.scalars(stmt.order_by(m.Membership.id),
                                        execution_options=BYPASS))
