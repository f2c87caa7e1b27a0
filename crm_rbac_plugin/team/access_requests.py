"""Access requests: what a refused member is missing, who can grant it, and asking them.

The refusal page says in plain words what is missing and who can grant it
("You need export on leads. Ask Olivia Owens (Owner) to grant it.") and
offers to ask. The same functions serve any page that wants to (an
approvals queue reads the ``access.requested`` events).

Rules:

* Only an **active member** of the workspace is told anything: names of
  colleagues are the workspace's to show. The caller passes the member's
  own :class:`~..policy.Access`; nobody else gets :func:`refusal_help`.
* **Who can grant** a permission is an active member who may assign roles
  (``members.edit``) to the requester, whose scope reaches them, and who
  holds the permission themselves, since nobody grants more than they hold.
  Owners come first. A privileged permission (one that makes a role
  privileged: :func:`..roles.escalation.privileged_permission`) only an
  Owner gives, so only Owners are named and asked for it.
* A request is **audited** (``access.requested``, target ``resource.action``)
  and **mailed** to those members (at most :data:`MAX_RECIPIENTS`).
* One request per member and permission per :data:`THROTTLE`: the trail
  itself is the rate limit's memory, so it holds across processes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from werkzeug.routing import BuildError

from ..errors import RBACError, ValidationError
from ..loader import BYPASS
from ..models import utcnow
from ..policy import Access
from ..roles.escalation import APPROVER_PERMISSION, member_in_scope, privileged_permission
from .mail import _external_url, send_mail

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["AccessRequest", "Help", "TooSoon", "grantors", "notify", "refusal_help",
           "request_access"]

#: How long a member waits before asking again for the same permission.
THROTTLE = dt.timedelta(hours=1)
#: Most members named on the refusal page, and most mailed by one request.
SHOWN = 3
MAX_RECIPIENTS = 10
NOTE_LENGTH = 500


class TooSoon(ValidationError):
    """The member asked for this permission less than :data:`THROTTLE` ago (a 429)."""

    status = 429


@dataclass
class Help:
    """What a refused member needs, and who can grant it (names of at most :data:`SHOWN`)."""

    action: str
    resource: str
    text: str
    grantors: list[str] = field(default_factory=list)
    #: Whether asking makes sense: someone can grant it and the member lacks it entirely.
    can_request: bool = False


@dataclass
class AccessRequest:
    """A recorded request, and the memberships to notify."""

    requester: Any
    workspace: Any
    action: str
    resource: str
    note: str
    recipients: list[Any]

    @property
    def permission(self) -> str:
        return f"{self.resource}.{self.action}"


def _name(membership: Any) -> str:
    roles = [mr.role.name for mr in sorted(membership.member_roles, key=lambda mr: mr.id)]
    return f"{membership.display_name} ({roles[0]})" if roles else membership.display_name


def grantors(rbac: RBACProtocol, workspace_id: int, action: str, resource: str, *,
             limit: int = SHOWN, requester: int | None = None) -> list[Any]:
    """Active members who may assign roles to ``requester`` and hold ``resource.action``;
    Owners first.

    ``requester`` (a membership id) is left out, and must lie in each
    grantor's ``members.edit`` scope: a Manager whose grant reaches only
    their team cannot give a role to anyone else, so the page never sends a
    member to them. A privileged permission is given only by an Owner
    (:func:`..roles.escalation.privileged_permission`), so only Owners are
    named for it: an Admin asked would be refused when trying.
    """
    P = rbac.models.ApprovalPolicy
    named = rbac.db.session.scalar(sa.select(P.approver_permission).where(
        P.workspace_id == workspace_id), execution_options=BYPASS)
    owners_only = privileged_permission(action, resource,
                                        {APPROVER_PERMISSION} | ({named} if named else set()))
    M = rbac.models.Membership
    members = list(rbac.db.session.scalars(sa.select(M).where(
        M.workspace_id == workspace_id, M.status == "active").order_by(M.id),
        execution_options=BYPASS))
    asking = next((m for m in members if m.id == requester), None)
    found: list[tuple[bool, Any]] = []
    for membership in members:
        if membership.id == requester:
            continue
        access = rbac.access_for(membership)
        if access is None or (owners_only and not access.is_owner) \
                or not rbac.can("edit", "members", access=access) \
                or not rbac.can(action, resource, access=access) \
                or (asking is not None and not member_in_scope(access, "edit", asking)):
            continue
        found.append((not access.is_owner, membership))
    found.sort(key=lambda pair: pair[0])
    return [m for _, m in found[:limit]]


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def refusal_help(rbac: RBACProtocol, access: Access, action: str, resource: str) -> Help | None:
    """Say what ``access`` (an active member) lacks for ``resource.action``; None if unknown."""
    if not access.active or resource not in rbac.registry:
        return None
    res = rbac.registry.get(resource)
    if action not in res.actions:
        return None
    if rbac.can(action, resource, access=access):
        return Help(action, resource, f"You may {action} some {resource}, but not this one.")
    people = [_name(m) for m in grantors(rbac, access.workspace_id, action, resource,
                                         requester=access.membership_id)]
    need = f"You need {action} on {resource}."
    if not people:
        return Help(action, resource, f"{need} Ask the workspace's owner to grant it.")
    return Help(action, resource, f"{need} Ask {_join(people)} to grant it.", people,
                can_request=True)


def _recent(rbac: RBACProtocol, access: Access, permission: str) -> bool:
    A = rbac.models.AuditEvent
    return rbac.db.session.scalar(sa.select(A.id).where(
        A.workspace_id == access.workspace_id, A.action == "access.requested",
        A.actor_membership_id == access.membership_id, A.target == permission,
        A.at >= utcnow() - THROTTLE).limit(1)) is not None


def request_access(rbac: RBACProtocol, access: Access | None, action: Any, resource: Any,
                   note: Any = "") -> AccessRequest:
    """Record that ``access`` asks for ``resource.action`` (the caller commits, then
    :func:`notify`). Refuses a non-member, an unknown permission, one already
    held, one nobody can grant, and a repeat within :data:`THROTTLE` (:class:`TooSoon`)."""
    if access is None or not access.active:
        raise ValidationError("only an active member of this workspace can ask", field="member")
    if not isinstance(action, str) or not isinstance(resource, str):
        raise ValidationError("choose a permission", field="permission")
    try:
        rbac.registry.check_action(resource, action)
    except RBACError:
        raise ValidationError(f"{resource}.{action} is not a permission",
                              field="permission") from None
    text = note.strip()[:NOTE_LENGTH] if isinstance(note, str) else ""
    if rbac.can(action, resource, access=access):
        raise ValidationError(f"you may already {action} {resource}", field="permission")
    permission = f"{resource}.{action}"
    if _recent(rbac, access, permission):
        raise TooSoon(f"You asked for {action} on {resource} less than an hour ago; "
                      "your admins have it.", field="permission")
    recipients = grantors(rbac, access.workspace_id, action, resource, limit=MAX_RECIPIENTS,
                          requester=access.membership_id)
    if not recipients:
        raise ValidationError("nobody in this workspace can grant it", field="permission")
    requester = rbac.db.session.get(rbac.models.Membership, access.membership_id)
    rbac.audit("access.requested", workspace_id=access.workspace_id, resource=resource,
               target=permission, permission=permission, note=text or None,
               notified=[m.id for m in recipients])
    workspace = rbac.db.session.get(rbac.models.Workspace, access.workspace_id)
    return AccessRequest(requester, workspace, action, resource, text, recipients)


def notify(rbac: RBACProtocol, req: AccessRequest) -> list[str]:
    """Mail each recipient of ``req``; return the names to show ("Request sent to ...")."""
    try:
        link = _external_url("rbac_settings.member_access", membership_id=req.requester.id)
    except BuildError:  # the host mounted no settings pages
        link = None
    for membership in req.recipients:
        email = getattr(membership.user, "email", None)
        if email:
            send_mail(f"{req.requester.display_name} asks for {req.action} on {req.resource}",
                      email, "access_request", request=req, link=link)
    return [m.display_name for m in req.recipients[:SHOWN]]
