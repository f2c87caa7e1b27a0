"""Editing a workspace's security policy: who may, what a change would affect, the lockout rules.

The Security page, the JSON API (``/security-policy``) and ``flask rbac
security set`` all call :func:`save`, so they keep the same rules:

* **Who.** Only an Owner changes the policy (:func:`may_edit`); an Owner or a
  member holding ``settings.manage`` (an Admin) reads it (:func:`may_read`).
  Anyone else is refused: the policy tells an attacker which networks and
  timeouts guard the workspace.
* **Valid values only**, through :func:`.policy.validate_policy`: the first
  bad value is a 400 naming its field, and nothing is written.
* **No self-lockout** (:func:`check_lockout`, a 409): an allowlist that leaves
  out the saver's own current address is refused, and so is a device policy
  that leaves out the device type of the saver's session, and an MFA policy
  that would require MFA of the saver before they have enrolled, because
  each would send the saver away on their next request. The CLI has no
  address and no device, so only the MFA rule applies there; it stays the
  way back in. Nor does an API token have a device (:mod:`.devices`): a
  PATCH made with one is not checked against the device policy.
* **Audited**: a save that changes something writes one
  ``security_policy.changed`` event (resource ``settings``, ``detail =
  {"changes": {field: [old, new]}}``, changed fields only) and sends the
  :data:`..signals.security_policy_changed` signal; a save that changes
  nothing writes and sends nothing.

:func:`preview` reads what a change would do before it is saved: members who
would have to enrol in MFA and have not, live sessions the new timeouts or
session cap would end at once, members whose last known addresses fall
outside the new allowlist, and members whose live sessions are on a device
type the new policy refuses. Passwords are stored hashed, so which of them
break a stricter password rule cannot be known: they meet it at their next
change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app, has_app_context

from .. import audit, gate, signals
from ..config import request_settings
from ..errors import PermissionDenied, RuleConflict
from ..loader import BYPASS
from ..models import utcnow
from ..policy import Access
from . import network, sessions
from .devices import NAMES, describe, device_allowed, device_type
from .policy import FIELDS, Policy, policy_for, save_policy, validate_policy
from .stepup import is_privileged, must_enrol

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["Preview", "check_lockout", "diff", "may_edit", "may_read", "preview", "save"]


def may_read(rbac: RBACProtocol, access: Access | None) -> bool:
    """Whether ``access`` may read the policy: an Owner, or ``settings.manage`` (an Admin)."""
    if access is None or not access.active:
        return False
    return access.is_owner or bool(rbac.decide(access, "manage", "settings"))


def may_edit(access: Access | None) -> bool:
    """Whether ``access`` may change the policy: active Owners only."""
    return access is not None and access.active and access.is_owner


def diff(old: Policy, new: Policy) -> dict[str, list[Any]]:
    """``{field: [old, new]}`` for each field whose value differs, in :data:`FIELDS` order."""
    return {name: [getattr(old, name), getattr(new, name)] for name in FIELDS
            if getattr(old, name) != getattr(new, name)}


@dataclass(frozen=True)
class Person:
    """A member named in a preview."""

    membership_id: int
    name: str
    email: str


@dataclass(frozen=True)
class EndedSession:
    """A live session the new policy ends at once: ``reason`` is idle, expired or cap."""

    person: Person
    session_id: int
    ip: str
    reason: str


@dataclass(frozen=True)
class Preview:
    """What saving ``policy`` would change and whom it would affect."""

    old: Policy
    policy: Policy
    changes: dict[str, list[Any]]
    must_enrol: list[Person] = field(default_factory=list)
    sessions_ended: list[EndedSession] = field(default_factory=list)
    outside_allowlist: list[tuple[Person, str]] = field(default_factory=list)
    #: Members with a live session on a refused device type, and the device in words.
    refused_devices: list[tuple[Person, str]] = field(default_factory=list)

    @property
    def passwords_note(self) -> str:
        """Why a stricter password rule names nobody."""
        return ("Passwords are stored hashed, so which ones miss the new rule cannot be known: "
                "every member meets it the next time they set a password.")


def _members(rbac: RBACProtocol, workspace_id: int) -> list[tuple[Any, Person, Access | None]]:
    """The workspace's active memberships, each with its person and effective access."""
    M = rbac.models.Membership
    rows = rbac.db.session.scalars(sa.select(M).where(
        M.workspace_id == workspace_id, M.status == "active").order_by(M.id),
        execution_options=BYPASS)
    return [(m, Person(m.id, m.display_name, str(getattr(m.user, "email", "") or "")),
             rbac.access_for(m)) for m in rows]


def _unenrolled(rbac: RBACProtocol, policy: Policy,
                members: list[tuple[Any, Person, Access | None]]) -> list[Person]:
    if policy.mfa == "nobody":
        return []
    C = rbac.models.MfaCredential
    ids = [m.user_id for m, _, _ in members]
    enrolled = set(rbac.db.session.scalars(sa.select(C.user_id).where(
        C.user_id.in_(ids), C.confirmed_at.is_not(None)), execution_options=BYPASS)) if ids else set()
    hook = rbac.hooks.mfa_verified
    return [person for m, person, access in members
            if must_enrol(policy.mfa, access) and m.user_id not in enrolled
            and (hook is None or hook(m.user) is None)]


def _sessions(rbac: RBACProtocol, policy: Policy, members: list[tuple[Any, Person, Access | None]],
              now: dt.datetime) -> tuple[list[EndedSession], list[tuple[Person, str]], list[Any]]:
    """Live sessions the policy ends at once, members whose live addresses it refuses,
    and the live sessions it leaves alive (their devices are checked by :func:`_devices`)."""
    S = rbac.models.AuthSession
    by_user = {m.user_id: (person, access) for m, person, access in members}
    rows = list(rbac.db.session.scalars(sa.select(S).where(
        S.user_id.in_(list(by_user)), S.revoked_at.is_(None))
        .order_by(S.user_id, S.last_seen_at.desc(), S.id.desc()),
        execution_options=BYPASS)) if by_user else []
    ended: list[EndedSession] = []
    outside: list[tuple[Person, str]] = []
    alive: list[Any] = []
    kept: dict[Any, int] = {}
    networks = network.networks_of(policy.ip_allowlist)
    touch = request_settings().session_touch
    for row in rows:
        person, access = by_user[row.user_id]
        kind = "privileged" if is_privileged(access) else "member"
        # The same verdict as the request gate's, so the preview names the sessions it ends.
        lifetimes = sessions.Lifetimes(getattr(policy, f"idle_minutes_{kind}"),
                                       getattr(policy, f"absolute_minutes_{kind}"))
        record = sessions.SessionRecord(has_id=True, id=row.id, created_at=row.created_at,
                                        last_seen_at=row.last_seen_at, revoked_at=None)
        reason = sessions.verdict(record, lifetimes, now, touch)
        if reason is None:
            kept[row.user_id] = kept.get(row.user_id, 0) + 1
            if policy.max_sessions is not None and kept[row.user_id] > policy.max_sessions:
                reason = "cap"
        if reason is not None:
            ended.append(EndedSession(person, row.id, row.ip or "", reason))
        else:
            alive.append((person, row))
        if row.ip and not network.address_allowed(row.ip, networks) and (
                (person, row.ip) not in outside):
            outside.append((person, row.ip))
    return ended, outside, alive


def _devices(policy: Policy, alive: list[Any]) -> list[tuple[Person, str]]:
    """Each member with a live session on a device type ``policy`` refuses, and the device."""
    refused: list[tuple[Person, str]] = []
    for person, row in alive:
        agent = row.user_agent or ""
        if device_allowed(device_type(agent), policy.allowed_devices):
            continue
        entry = (person, describe(agent))
        if entry not in refused:
            refused.append(entry)
    return refused


def preview(rbac: RBACProtocol, workspace_id: int, changes: Mapping[str, Any],
            now: dt.datetime | None = None) -> Preview:
    """Validate ``changes`` and say whom they would affect; nothing is written.

    A bad value raises the ValidationError that :func:`save` would raise.
    """
    old = policy_for(rbac, workspace_id)
    new = validate_policy(changes, old)
    members = _members(rbac, workspace_id)
    ended, outside, alive = _sessions(rbac, new, members, now or utcnow())
    return Preview(old=old, policy=new, changes=diff(old, new),
                   must_enrol=_unenrolled(rbac, new, members), sessions_ended=ended,
                   outside_allowlist=outside, refused_devices=_devices(new, alive))


def check_lockout(policy: Policy, access: Access, *, ip: str | None, enrolled: bool,
                  agent: str | None = None) -> None:
    """Refuse (409) a policy that would send its saver away on their next request.

    ``ip`` is the saver's current address (None outside a request: not
    checked); ``agent`` the user agent of the saver's session (None: no
    session, as for the CLI or an API token: not checked); ``enrolled``
    whether the saver has MFA (the plugin's or the host's).
    """
    networks = network.networks_of(policy.ip_allowlist)
    if ip is not None and not network.address_allowed(ip, networks):
        raise RuleConflict(f"The allowlist leaves out your own address, {ip}: add it (for "
                           f"example {ip}/32) so that saving does not lock you out.",
                           field="ip_allowlist")
    kind = device_type(agent) if agent is not None else None
    if kind is not None and not device_allowed(kind, policy.allowed_devices):
        raise RuleConflict(f"The allowed devices leave out the one you are using, "
                           f"{NAMES[kind]}: allow it so that saving does not lock "
                           "you out.", field="allowed_devices")
    if must_enrol(policy.mfa, access) and not enrolled:
        raise RuleConflict("This MFA policy would require two-factor authentication of you, "
                           "and you have not set it up: enrol first (Two-factor "
                           "authentication, under Your account).", field="mfa")


def save(rbac: RBACProtocol, access: Access, changes: Mapping[str, Any], *, ip: str | None,
         enrolled: bool, agent: str | None = None) -> Preview:
    """Save ``changes`` to ``access``'s workspace policy as that Owner; return what changed.

    Refused: a non-Owner (PermissionDenied), a bad value (400), a lockout
    (409, see :func:`check_lockout` for ``ip``, ``agent`` and ``enrolled``);
    nothing is written then. The caller commits.
    """
    if not may_edit(access):
        raise PermissionDenied("Only an Owner can change the security policy.",
                               resource="settings", action="manage")
    old = policy_for(rbac, access.workspace_id)
    new = validate_policy(changes, old)
    check_lockout(new, access, ip=ip, enrolled=enrolled, agent=agent)
    changed = diff(old, new)
    if not changed:
        return Preview(old=old, policy=old, changes={})
    gate.require(rbac, access, "security_policy",
                 {"changes": {k: getattr(new, k) for k in changed}},
                 summary=f"Change the security policy ({', '.join(sorted(changed))})")
    save_policy(rbac, access.workspace_id, changes, membership_id=access.membership_id)
    audit.record(rbac, "security_policy.changed", workspace_id=access.workspace_id,
                 resource="settings", target="security policy",
                 actor_ids=(access.user_id, access.membership_id), changes=changed)
    if has_app_context():
        signals.security_policy_changed.send(
            current_app._get_current_object(),  # type: ignore[attr-defined]
            workspace_id=access.workspace_id, actor=access, changes=changed, policy=new)
    return Preview(old=old, policy=new, changes=changed)
