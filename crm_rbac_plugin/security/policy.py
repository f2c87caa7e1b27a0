"""A workspace's security policy: read it (row or defaults) and validate an edit.

A workspace without a ``rbac_security_policy`` row has the defaults below,
which are the columns' defaults; reading never writes. An edit is checked
field by field before anything is saved, and the first bad value raises a
:class:`~crm_rbac_plugin.errors.ValidationError` naming its field, so a page
or the API places the message next to the input (a 400, nothing saved).

``allowed_devices`` is a tuple of :data:`.devices.DEVICE_TYPES`, in that
order, never empty (a policy allowing no device would let nobody in); the
row stores it as the names joined by commas (:func:`devices_text`).

A member of several workspaces sets one password for all of them, so the
password rules in force for an account are the strictest of its workspaces'
(:func:`password_rules_for_user`).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ValidationError
from ..models import MFA_POLICIES
from ..role_conditions import parse_networks
from .devices import DEVICE_TYPES

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["LIMITS", "Policy", "PasswordRules", "devices_text", "parse_allowlist", "parse_devices",
           "password_rules_for_user", "policy_for", "save_policy", "validate_policy"]

#: The accepted range of each numeric field, inclusive: (lowest, highest).
#: Timeouts are in minutes; an absolute lifetime beyond a year, or a session
#: cap beyond 100, is a typing slip rather than a policy.
LIMITS: dict[str, tuple[int, int]] = {
    "step_up_minutes": (1, 24 * 60),
    "idle_minutes_privileged": (1, 30 * 24 * 60),
    "absolute_minutes_privileged": (5, 365 * 24 * 60),
    "idle_minutes_member": (1, 30 * 24 * 60),
    "absolute_minutes_member": (5, 365 * 24 * 60),
    "max_sessions": (1, 100),
    "password_min_length": (8, 128),
    "password_min_score": (0, 4),
}
#: Largest number of CIDR lines in an allowlist.
MAX_ALLOWLIST_LINES = 200


@dataclass(frozen=True)
class PasswordRules:
    """What a new password must meet: at least ``min_length`` characters and a zxcvbn
    score of at least ``min_score`` (0-4)."""

    min_length: int = 12
    min_score: int = 3


@dataclass(frozen=True)
class Policy:
    """A workspace's security policy as values (a saved row's, or the defaults)."""

    workspace_id: int | None = None
    mfa: str = "nobody"
    step_up_minutes: int = 15
    idle_minutes_privileged: int = 30
    absolute_minutes_privileged: int = 720
    idle_minutes_member: int = 480
    absolute_minutes_member: int = 10080
    max_sessions: int | None = None
    ip_allowlist: str = ""
    password_min_length: int = 12
    password_min_score: int = 3
    #: The device types that may use the workspace (default: all of them).
    allowed_devices: tuple[str, ...] = DEVICE_TYPES
    #: Whether a row holds these values (False: the defaults, never saved).
    saved: bool = False

    @property
    def password_rules(self) -> PasswordRules:
        return PasswordRules(self.password_min_length, self.password_min_score)

    @property
    def networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The allowlist as networks (empty: every address is allowed)."""
        return parse_allowlist(self.ip_allowlist)


#: The fields an edit may change, in the order they are checked.
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Policy)
                                if f.name not in ("workspace_id", "saved"))


def policy_for(rbac: RBACProtocol, workspace_id: int) -> Policy:
    """Return ``workspace_id``'s policy: its row's values, or the defaults (nothing written)."""
    P = rbac.models.SecurityPolicy
    row = rbac.db.session.scalar(sa.select(P).where(P.workspace_id == workspace_id))
    if row is None:
        return Policy(workspace_id=workspace_id)
    values = {name: getattr(row, name) for name in FIELDS}
    values["allowed_devices"] = parse_devices(row.allowed_devices)
    return Policy(workspace_id=workspace_id, saved=True, **values)


def parse_devices(text: str | None) -> tuple[str, ...]:
    """The device types of a stored ``allowed_devices`` (None, a policy without a row: all).

    Unknown names are dropped, and a value naming no known type counts as
    all of them: the column only ever holds what :func:`validate_policy`
    accepted, so this guards against a hand-edited row locking everyone out.
    """
    if text is None:
        return DEVICE_TYPES
    named = {part.strip() for part in text.split(",")}
    return tuple(kind for kind in DEVICE_TYPES if kind in named) or DEVICE_TYPES


def devices_text(devices: Iterable[str]) -> str:
    """The stored form of ``allowed_devices``: the types joined by commas, in order."""
    return ",".join(devices)


def password_rules_for_user(rbac: RBACProtocol, user_id: Any,
                            extra_workspace_ids: Iterable[int] = ()) -> PasswordRules:
    """Return the strictest password rules of the workspaces where ``user_id`` is active.

    A pending invitation imposes nothing on the account until it is
    accepted: ``extra_workspace_ids`` adds the workspaces the account is
    joining (the invitation being accepted). An account in no workspace gets
    the defaults.
    """
    M, P = rbac.models.Membership, rbac.models.SecurityPolicy
    ws_ids = set(extra_workspace_ids)
    if user_id is not None:
        ws_ids |= set(rbac.db.session.scalars(sa.select(M.workspace_id).where(
            M.user_id == user_id, M.status == "active")))
    rows = list(rbac.db.session.execute(
        sa.select(P.password_min_length, P.password_min_score)
        .where(P.workspace_id.in_(ws_ids)))) if ws_ids else []
    default = PasswordRules()
    # A workspace without a row has the defaults, which then count too.
    candidates = [PasswordRules(*row) for row in rows]
    if len(rows) < len(ws_ids) or not candidates:
        candidates.append(default)
    return PasswordRules(max(r.min_length for r in candidates),
                         max(r.min_score for r in candidates))


def parse_allowlist(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Parse one CIDR per line (blank lines and ``#`` comments skipped); a bad line
    raises a ValidationError naming ``ip_allowlist`` and the line."""
    lines = [line.split("#", 1)[0].strip() for line in (text or "").splitlines()]
    return parse_networks(lines, field="ip_allowlist", limit=MAX_ALLOWLIST_LINES)


def _whole_number(name: str, value: Any, *, nullable: bool = False) -> int | None:
    if value is None or value == "":
        if nullable:
            return None
        raise ValidationError(f"{name.replace('_', ' ')} is required", field=name)
    if isinstance(value, bool):
        raise ValidationError(f"{name.replace('_', ' ')} must be a whole number", field=name)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"{name.replace('_', ' ')} must be a whole number",
                              field=name) from None
    low, high = LIMITS[name]
    if not low <= number <= high:
        raise ValidationError(f"{name.replace('_', ' ')} must be between {low} and {high}",
                              field=name)
    return number


def _devices(value: Any) -> tuple[str, ...]:
    """``allowed_devices`` as a tuple of known types in :data:`DEVICE_TYPES` order."""
    name = "allowed_devices"
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValidationError("allowed devices must be a list of device types "
                              f"({', '.join(DEVICE_TYPES)})", field=name)
    unknown = sorted({v.strip() for v in value} - set(DEVICE_TYPES))
    if unknown:
        raise ValidationError(f"unknown device type {unknown[0]!r}: choose among "
                              f"{', '.join(DEVICE_TYPES)}", field=name)
    chosen = {v.strip() for v in value}
    if not chosen:
        raise ValidationError("allow at least one device type: with none, nobody could sign in",
                              field=name)
    return tuple(kind for kind in DEVICE_TYPES if kind in chosen)


def validate_policy(changes: Mapping[str, Any], current: Policy | None = None) -> Policy:
    """Return ``current`` (default: the defaults) with ``changes`` applied, once every
    changed value is valid; the first bad one raises a ValidationError naming its field.

    Refused: an unknown field or MFA value, a number out of :data:`LIMITS`, an
    idle timeout longer than the absolute lifetime it sits in, a malformed
    CIDR line, an ``allowed_devices`` that is not a list, names an unknown
    type or is empty.
    """
    base = current or Policy()
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ValidationError(f"unknown policy setting {unknown[0]!r}", field=unknown[0])
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "mfa":
            if value not in MFA_POLICIES:
                raise ValidationError(f"MFA must be one of {', '.join(MFA_POLICIES)}", field="mfa")
            values[name] = value
        elif name == "ip_allowlist":
            text = value if isinstance(value, str) else ""
            if not isinstance(value, str) and value is not None:
                raise ValidationError("list one network per line", field=name)
            parse_allowlist(text)
            values[name] = "\n".join(line.strip() for line in text.strip().splitlines())
        elif name == "allowed_devices":
            values[name] = _devices(value)
        else:
            values[name] = _whole_number(name, value, nullable=name == "max_sessions")
    policy = dataclasses.replace(base, **values)
    for kind in ("privileged", "member"):
        idle, absolute = f"idle_minutes_{kind}", f"absolute_minutes_{kind}"
        if getattr(policy, idle) > getattr(policy, absolute):
            raise ValidationError(f"the idle timeout of {kind} members cannot be longer than "
                                  "their absolute session lifetime",
                                  field=idle if idle in changes else absolute)
    return policy


def save_policy(rbac: RBACProtocol, workspace_id: int, changes: Mapping[str, Any], *,
                membership_id: int | None = None) -> Any:
    """Validate ``changes`` against the workspace's policy and write them (the caller
    commits); return the row. Nothing is written when a value is refused.

    The caller checks the actor's right to edit the policy and audits the
    change; this service only keeps the stored policy valid.
    """
    policy = validate_policy(changes, policy_for(rbac, workspace_id))
    P = rbac.models.SecurityPolicy
    row = rbac.db.session.scalar(sa.select(P).where(P.workspace_id == workspace_id))
    if row is None:
        row = P(workspace_id=workspace_id)
        rbac.db.session.add(row)
    for name in FIELDS:
        setattr(row, name, getattr(policy, name))
    row.allowed_devices = devices_text(policy.allowed_devices)
    row.updated_by_membership_id = membership_id
    rbac.db.session.flush()
    return row
