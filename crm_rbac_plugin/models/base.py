"""What every model module shares: statuses, naive-UTC time, the user key, :class:`Models`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import mapped_column
from sqlalchemy.sql.naming import conv

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


@dataclass(frozen=True, eq=False)
class Models:
    """The mapped classes of one extension instance.

    Compared and hashed by identity: it keys the statement caches of every
    request (``functools.lru_cache``), and a hash of its thirty-odd classes
    cost about 2.5 µs per lookup; one instance per extension holds its classes
    for the app's life, so identity is the same key.
    """

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
    # Account protection (see :mod:`.security`).
    SecurityPolicy: Any
    MfaCredential: Any
    RecoveryCode: Any
    AuthSession: Any
    SignInThrottle: Any
    # Notifications (see :mod:`.notify`).
    Notification: Any
    NotificationPreference: Any
    # Approval workflows (see :mod:`.approvals`).
    ApprovalPolicy: Any
    ApprovalRequest: Any
    ApprovalDecision: Any
    # Anomaly alerts (see :mod:`.alerts`).
    AlertSettings: Any
    Alert: Any
    AlertCounter: Any
    AlertSeenAddress: Any
    # Access reviews (see :mod:`.certification`).
    ReviewSchedule: Any
    CertificationRun: Any
    CertificationItem: Any
    # Record caps per role (see :mod:`.quotas`).
    RoleQuota: Any
    # Attachments (see :mod:`.files`).
    Attachment: Any
    # Roles given to departments (see :mod:`.groups`).
    DepartmentRole: Any = None
    # Profile pictures (see :mod:`.pictures`).
    ProfilePicture: Any = None

    def policy_classes(self) -> tuple[Any, ...]:
        """Classes whose changes alter someone's effective access."""
        return (self.Workspace, self.Department, self.Membership, self.ManagerAssignment,
                self.Role, self.Grant, self.MemberRole, self.FieldRule, self.RoleConflict,
                self.SharingAgreement, self.SharingPermission, self.DepartmentRole)


def user_pk_of(user_model: type) -> Any:
    """The primary-key column of the host's user table."""
    return list(user_model.__table__.primary_key.columns)[0]  # type: ignore[attr-defined]


def user_key_column(user_model: type, column: str, *, ondelete: str,
                    nullable: bool = False) -> Any:
    """A column holding a host user's key: the key's own type and a foreign key to it.

    ``column`` is ``"table.column"`` of the new column, which names the foreign key.
    """
    pk = user_pk_of(user_model)
    return mapped_column(pk.type, fk(column, f"{pk.table.name}.{pk.name}", ondelete=ondelete),
                         nullable=nullable)


# -- constraint names ----------------------------------------------------------------------
#
# Every constraint and index of the plugin's tables carries an explicit name,
# built by the rule below and wrapped in ``conv`` so that the host's
# ``MetaData(naming_convention=...)`` leaves it as is: Alembic then finds the
# same names on every backend and in every host, and SQLite batch mode can
# drop and recreate them ("Constraint must have a name" otherwise). The rule
# is the common convention (the demo app's too):
#
# ``pk_<table>``, ``fk_<table>_<column>_<referred table>``,
# ``uq_<table>_<first column>``, ``ix_<table>_<first column or key>``,
# ``ck_<table>_<key>``.

#: PostgreSQL truncates longer identifiers, and the two names would then differ.
MAX_NAME_LENGTH = 63


def constraint_name(name: str) -> conv:
    """Return ``name`` marked as final, after checking it fits every backend."""
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"constraint name longer than {MAX_NAME_LENGTH} characters: {name}")
    return conv(name)


def pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    """The primary key of ``table``: ``pk_<table>``."""
    return sa.PrimaryKeyConstraint(*columns, name=constraint_name(f"pk_{table}"))


#: Table options of the tables whose ids the audit trail or a URL names (workspaces,
#: their members, roles, departments, assignments and tokens; sharing agreements,
#: invitations, approval requests, alerts, certification runs and items,
#: notifications, attachments and role conflicts): on SQLite an id is then never
#: handed out again once its row is deleted (``AUTOINCREMENT``), so a purged
#: workspace's events and links never describe a later tenant's rows.
#: PostgreSQL sequences never reuse a value anyway.
NEVER_REUSED: dict[str, Any] = {"sqlite_autoincrement": True}
#: Migrations ``rbac_0012`` and ``rbac_0013`` rebuild the existing tables with it.


def fk(column: str, target: str, *, ondelete: str) -> sa.ForeignKey:
    """A foreign key from ``"table.column"`` to ``"referred.column"``."""
    table, name = column.split(".")
    return sa.ForeignKey(target, ondelete=ondelete,
                         name=constraint_name(f"fk_{table}_{name}_{target.split('.')[0]}"))


def uq(table: str, *columns: str) -> sa.UniqueConstraint:
    """A unique constraint over ``columns``: ``uq_<table>_<first column>``."""
    return sa.UniqueConstraint(*columns, name=constraint_name(f"uq_{table}_{columns[0]}"))


def ix(table: str, *columns: str, key: str = "") -> sa.Index:
    """An index over ``columns``: ``ix_<table>_<key>``, the key defaulting to the first column."""
    return sa.Index(constraint_name(f"ix_{table}_{key or columns[0]}"), *columns)


def ck(table: str, key: str, sqltext: str) -> sa.CheckConstraint:
    """A check constraint: ``ck_<table>_<key>``."""
    return sa.CheckConstraint(sqltext, name=constraint_name(f"ck_{table}_{key}"))
