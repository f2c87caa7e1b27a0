""""View as": an Owner or Admin sees the app exactly as a chosen member would.

Starting sets :data:`SESSION_KEY` in the Flask session; from then on
:meth:`~.extension.RBAC.current_access` returns the *member's* access (so every filter,
decorator and template helper answers as for them), the real access is kept
as ``real_access`` on the request state (:mod:`..identity`; the audit trail
names the real actor), every flush that would write anything but the
evidence of what the viewer does (:func:`_evidence`: audit events, the alerts
they raise and the notifications telling Owners of them) is refused
(read-only), and templates get ``rbac_view_as`` to show a
banner. Starting and stopping are audited. API token requests never view as
anyone.

Viewing as someone must never show the viewer more than they may see
themselves, so :func:`refusal` allows it only when:

- the viewer holds one of the roles of ``RBAC_VIEW_AS_ROLES`` (by default
  the built-in Owner and Admin roles, directly or through a role inheriting
  from one) and ``settings.view``;
- the target is another member of the same workspace, and an Owner only for
  an Owner;
- the target's access lies within the viewer's (:func:`wider`): every allow
  the target holds, with the scope it reaches under their visibility level,
  is covered by the viewer as the role editor requires for granting it
  (:func:`..roles.covers`: the action, a scope reaching at least the same
  owners, no extra condition, no deny), no field hidden from the viewer is
  visible to the target, and no sharing agreement reaches the target only.

The check runs again on every request while viewing as, so a viewer whose
access shrinks (or a target whose access grows) stops viewing as at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import has_request_context, request, session
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..audit.refusals import REFUSALS_SESSION
from ..config import setting
from ..errors import PermissionDenied
from ..guard import NO_POLICY_EFFECT, _changed_keys
from ..identity import request_state
from ..inputs import SAFE_METHODS
from ..loader import BYPASS
from ..policy import ALLOW, Access
from ..registry import Resource
from ..roles import GrantSpec, capped, covers

if TYPE_CHECKING:
    from ..interface import RBACProtocol

SESSION_KEY = "rbac_view_as"
#: The permission a viewer needs besides a role of ``RBAC_VIEW_AS_ROLES``.
PERMISSION = ("settings", "view")


def refusal(rbac: RBACProtocol, real: Access | None, target: Access | None) -> str | None:
    """Why ``real`` may not view as ``target`` (None: they may)."""
    if real is None or not real.active:
        return "You are not an active member of this workspace."
    if not holds_view_as_role(rbac, real) or not rbac.decide(real, PERMISSION[1], PERMISSION[0]):
        return "Only Owners and Admins can view the workspace as another member."
    if target is None or target.workspace_id != real.workspace_id:
        return "No such member in this workspace."
    if target.membership_id == real.membership_id:
        return "You are already yourself."
    if target.is_owner and not real.is_owner:
        return "Only an Owner can view the workspace as an Owner."
    beyond = wider(rbac, real, target)
    if beyond:
        shown = ", ".join(beyond[:6]) + (f" and {len(beyond) - 6} more" if len(beyond) > 6 else "")
        return ("You can only view as members whose access lies within your own; "
                f"this member's is wider ({shown}).")
    return None


def holds_view_as_role(rbac: RBACProtocol, access: Access) -> bool:
    """Whether ``access`` holds a built-in role listed in ``RBAC_VIEW_AS_ROLES``.

    ``Access.roles`` names the roles in force and their ancestors; a role's
    name is unique in its workspace, so the built-in rows of those names are
    the ones held.
    """
    keys = setting("RBAC_VIEW_AS_ROLES")
    if keys is None:
        return True
    if access.is_owner and "owner" in keys:
        return True
    if not keys or not access.roles:
        return False
    Role = rbac.models.Role
    held = rbac.db.session.scalar(
        sa.select(Role.id).where(Role.workspace_id == access.workspace_id, Role.builtin.is_(True),
                                 Role.key.in_(list(keys)), Role.name.in_(access.roles)).limit(1),
        execution_options=BYPASS)
    return held is not None


def wider(rbac: RBACProtocol, viewer: Access, target: Access) -> list[str]:
    """What ``target`` may see that ``viewer`` may not (empty: within the viewer's access)."""
    if viewer.is_owner:
        return []
    if target.is_owner:
        return ["everything (Owner)"]
    viewer_capped = capped(viewer)
    out: list[str] = []
    for (resource, action), rules in sorted(target.rules.items()):
        if resource not in rbac.registry:
            continue
        res = rbac.registry.get(resource)
        for rule in rules:
            if rule.effect != ALLOW:
                continue  # a deny only narrows the target's access
            for scope in target.scopes_for(rule):
                spec = GrantSpec(resource, action, _needed_scope(viewer, target, res, scope),
                                 ALLOW, rule.conditions)
                if not covers(viewer_capped, spec):
                    out.append(f"{resource}.{action} [{scope}]")
    out += _fields_wider(viewer, target)
    mine = {share.agreement_id for share in viewer.shares}
    out += [share.describe() for share in target.shares if share.agreement_id not in mine]
    return sorted(set(out))


def _owners(access: Access, scope: str) -> frozenset[int]:
    """The owners whose records an owner-based ``scope`` reaches for ``access``."""
    if scope == "team":
        return access.team_user_ids | {access.user_id}
    if scope == "department":
        return access.department_user_ids | {access.user_id}
    return frozenset({access.user_id})


def _needed_scope(viewer: Access, target: Access, res: Resource, scope: str) -> str:
    """The narrowest scope through which ``viewer`` reaches every record that
    ``scope`` reaches for ``target`` (scopes are relative to the member: the
    target's "own" is someone else's records for the viewer)."""
    if res.model is None:
        return "own"  # no records: every scope is the same
    if res.owner_column is None:
        return scope if scope == "all" else "own"  # only "all" reaches a record
    if scope == "all" or (scope == "department" and res.department_column is not None):
        return "all"
    wanted = _owners(target, scope)
    for candidate in ("own", "team", "department"):
        if candidate == "department" and res.department_column is not None:
            continue  # by the record's department, not its owner
        if wanted <= _owners(viewer, candidate):
            return candidate
    return "all"


def _fields_wider(viewer: Access, target: Access) -> list[str]:
    """Fields hidden from the viewer on a resource the target may view, that the target sees."""
    out = []
    for resource, hidden in viewer.hidden_fields.items():
        if not target.rules_for(resource, "view")[0]:
            continue  # the target sees no record of it at all
        out += [f"{resource}.{name} (a field hidden from you)"
                for name in sorted(hidden - target.hidden(resource))]
    return out


def resolve(rbac: RBACProtocol, real: Access | None) -> Access | None:
    """Return the access in force for this request: the viewed member's while viewing as."""
    state = request_state()
    state.real_access = None
    if real is None or state.token_auth or SESSION_KEY not in session:
        return real
    target = rbac.access_for(session[SESSION_KEY])
    if refusal(rbac, real, target) is not None:
        session.pop(SESSION_KEY, None)  # e.g. the viewer lost Admin meanwhile
        return real
    state.real_access = real
    return target


def active() -> bool:
    return has_request_context() and request_state().real_access is not None


def banner(rbac: RBACProtocol) -> dict[str, Any] | None:
    """Template context ``rbac_view_as``: who is being viewed, or None."""
    if not has_request_context():
        return None
    try:
        rbac.current_access()
    except Exception:  # noqa: BLE001 - a template helper must not break a page
        return None
    state = request_state()
    real = state.real_access
    if real is None:
        return None
    viewed = state.access
    membership = rbac.db.session.get(rbac.models.Membership, viewed.membership_id)
    return {"membership": membership, "access": viewed, "real": real,
            "roles": ", ".join(viewed.roles)}


#: Why a write is refused while viewing as.
READ_ONLY = ("You are viewing the workspace as another member: nothing can be changed. "
             "Stop viewing as to make changes.")
#: The one write a viewer may make: stopping.
STOP_ENDPOINT = "rbac_oversight.view_as_stop"


def stop(rbac: RBACProtocol) -> Any:
    """Stop viewing as (audited as ``view_as.stopped``, committed); return the viewed
    membership's id, or None when nobody was being viewed."""
    mid = session.pop(SESSION_KEY, None)
    if mid is not None:
        request_state().reset()
        access = rbac.current_access()
        rbac.audit("view_as.stopped", resource="members", target=f"member #{mid}",
                   workspace_id=access.workspace_id if access else None,
                   viewed_membership_id=mid)
        rbac.db.session.commit()
    return mid


def refuse_write_request(rbac: RBACProtocol, endpoint: str,
                         sign_out: frozenset[str] = frozenset()) -> None:
    """Refuse (PermissionDenied) a request that may change something while viewing as.

    The flush guard (:func:`install`) refuses what a request writes through
    the session, but a view also writes with Core statements, audit events
    alone, or side effects such as a mail or a single-use download, and
    each would act with the viewed member's rights. So every request but a
    GET, HEAD or OPTIONS is refused before its view runs, whatever the view
    does, except stopping. Signing out (an endpoint of ``sign_out``, the
    host's, ``RBAC_MFA_EXEMPT_ENDPOINTS``) is never refused: it stops viewing
    as first, so the sign-out writes as the member themselves. Called by the
    extension's ``before_request`` pass.
    """
    if (request.method in SAFE_METHODS or endpoint == STOP_ENDPOINT
            or SESSION_KEY not in session):
        return
    if endpoint in sign_out:
        stop(rbac)
        return
    rbac.current_access()  # view-as starts here, or ends if no longer allowed
    if active():
        raise PermissionDenied(READ_ONLY)


def install(rbac: RBACProtocol, db_session: Any) -> None:
    event.listen(db_session, "before_flush", lambda s, c, i: _refuse_writes(rbac, s))


def _evidence(rbac: RBACProtocol, obj: Any, new: bool) -> bool:
    """Whether ``obj`` records what the viewer does rather than changing the workspace: an
    audit event, an alert the event raises, the alert rules' counters, and the
    notification telling Owners of the alert. Refusing them would refuse the viewer's
    export (or any audited read) and roll back its event: the evidence would be lost."""
    m = rbac.models
    if isinstance(obj, m.AlertCounter | m.AlertSeenAddress):
        return True
    return new and (isinstance(obj, m.AuditEvent | m.Alert)
                    or (isinstance(obj, m.Notification) and obj.event == "alert.raised"))


def _refuse_writes(rbac: RBACProtocol, db_session: Session) -> None:
    if not active() or db_session.info.get(REFUSALS_SESSION):
        return
    for obj in (*db_session.new, *db_session.dirty, *db_session.deleted):
        if obj not in db_session.deleted and _evidence(rbac, obj, obj in db_session.new):
            continue
        if obj in db_session.dirty and not (_changed_keys(obj) - NO_POLICY_EFFECT):
            continue
        raise PermissionDenied(READ_ONLY)
