"""What every model module shares: statuses, naive-UTC time, the user key, :class:`Models`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import mapped_column

MEMBER_STATUSES: tuple[str, ...] = ("pending", "active", "inactive")
#: A sharing agreement waits for the receiving workspace to accept it; it ends
#: when declined (by the receiver, while pending), left (by the receiver, once
#: active) or revoked (by the granter, at any time). Only ``active`` shares data.
AGREEMENT_STATUSES: tuple[str, ...] = ("pending", "active", "declined", "left", "revoked")
EFFECTS: tuple[str, ...] = ("allow", "deny")


def utcnow() -> dt.datetime:
    """Return naive UTC now: stored timestamps are naive UTC on every backend."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def naive_utc(when: dt.datetime) -> dt.datetime:
    """Return ``when`` as stored timestamps are: naive UTC (a naive value is taken as UTC)."""
    if when.tzinfo is None:
        return when
    return when.astimezone(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Models:
    """The mapped classes of one extension instance."""

    Workspace: Any
    Department: Any
    Membership: Any
    ManagerAssignment: Any
    Role: Any
    Grant: Any
    MemberRole: Any
    FieldRule: Any
    RoleConflict: Any
    ApiToken: Any
    SharingAgreement: Any
    SharingPermission: Any
    AuditEvent: Any
    Invitation: Any

    def policy_classes(self) -> tuple[Any, ...]:
        """Classes whose changes alter someone's effective access."""
        return (self.Workspace, self.Department, self.Membership, self.ManagerAssignment,
                self.Role, self.Grant, self.MemberRole, self.FieldRule, self.RoleConflict,
                self.SharingAgreement, self.SharingPermission)


def user_pk_of(user_model: type) -> Any:
    """The primary-key column of the host's user table."""
    return list(user_model.__table__.primary_key.columns)[0]  # type: ignore[attr-defined]


def user_key_column(user_model: type, *, ondelete: str, nullable: bool = False) -> Any:
    """A column holding a host user's key: the key's own type and a foreign key to it."""
    pk = user_pk_of(user_model)
    return mapped_column(pk.type, sa.ForeignKey(f"{pk.table.name}.{pk.name}", ondelete=ondelete),
                         nullable=nullable)
