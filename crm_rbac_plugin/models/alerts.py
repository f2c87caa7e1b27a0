"""The anomaly-alert tables (used by :mod:`crm_rbac_plugin.alerts`).

* ``rbac_alert_settings``: one workspace's threshold overrides. A column left
  NULL takes the ``RBAC_ALERT_*`` default; a workspace without a row has every
  default. Reading never writes.
* ``rbac_alert``: one raised alert, open → acknowledged → resolved, with who
  and when at each step.
* ``rbac_alert_counter``: the cheap counters the rules read. One row per
  (workspace, member, rule, window start), incremented by a single upsert as
  audit events are written; ``mark`` holds the token of the statement that
  first reached the threshold, so a window raises one alert, never one per
  event past it. Nothing ever counts rows of the audit trail.
* ``rbac_alert_seen_address``: the addresses each member signed in from, with
  when each was last seen: the "new address" rule reads one row, not the trail.

None of them is a policy table: changing them changes nobody's access.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import NEVER_REUSED, fk, ix, pk, uq, utcnow

#: An alert's statuses, in the only order it moves through them.
ALERT_STATUSES: tuple[str, ...] = ("open", "acknowledged", "resolved")
#: An alert's severities, mildest first.
ALERT_SEVERITIES: tuple[str, ...] = ("low", "medium", "high")


def define_alert_models(db: Any, Membership: Any) -> tuple[Any, ...]:
    """Create the alert tables on ``db.Model``.

    Returns ``(AlertSettings, Alert, AlertCounter, AlertSeenAddress)``, the
    order of :class:`.base.Models`' fields.
    """
    return (define_settings_model(db), define_alert_model(db, Membership),
            *define_counter_models(db))


def define_settings_model(db: Any) -> Any:
    """Create ``AlertSettings``, one workspace's threshold overrides."""

    class AlertSettings(db.Model):  # type: ignore[name-defined,misc]
        """A workspace's alert thresholds and business hours (NULL: the configured default)."""

        __tablename__ = "rbac_alert_settings"
        __table_args__ = (pk("rbac_alert_settings", "id"), uq("rbac_alert_settings", "workspace_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_alert_settings.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        export_rows_per_hour: Mapped[int | None] = mapped_column()
        refusals_per_10_minutes: Mapped[int | None] = mapped_column()
        deletions_per_hour: Mapped[int | None] = mapped_column()
        new_address_days: Mapped[int | None] = mapped_column()
        #: Weekdays as digits, Monday 0 ("01234": Monday to Friday).
        business_days: Mapped[str | None] = mapped_column(sa.String(7))
        business_start_hour: Mapped[int | None] = mapped_column()
        business_end_hour: Mapped[int | None] = mapped_column()
        updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        updated_by_membership_id: Mapped[int | None] = mapped_column()

    return AlertSettings


def define_alert_model(db: Any, Membership: Any) -> Any:
    """Create ``Alert``, one raised alert."""

    class Alert(db.Model):  # type: ignore[name-defined,misc]
        """One anomaly a rule found: what, about whom, how serious, and who dealt with it."""

        __tablename__ = "rbac_alert"
        __table_args__ = (pk("rbac_alert", "id"),
                          ix("rbac_alert", "workspace_id", "status", key="ws_status"),
                          ix("rbac_alert", "workspace_id", "created_at", key="ws_created"),
                          NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_alert.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        rule: Mapped[str] = mapped_column(sa.String(40))
        severity: Mapped[str] = mapped_column(sa.String(10))
        status: Mapped[str] = mapped_column(sa.String(20), default="open")
        #: The member the alert is about (None once their membership is removed).
        membership_id: Mapped[int | None] = mapped_column(
            fk("rbac_alert.membership_id", "rbac_membership.id", ondelete="SET NULL"))
        summary: Mapped[str] = mapped_column(sa.String(300))
        detail: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        acknowledged_at: Mapped[dt.datetime | None] = mapped_column()
        acknowledged_by_id: Mapped[int | None] = mapped_column(
            fk("rbac_alert.acknowledged_by_id", "rbac_membership.id", ondelete="SET NULL"))
        resolved_at: Mapped[dt.datetime | None] = mapped_column()
        resolved_by_id: Mapped[int | None] = mapped_column(
            fk("rbac_alert.resolved_by_id", "rbac_membership.id", ondelete="SET NULL"))

        membership = relationship(Membership, foreign_keys=[membership_id])
        acknowledged_by = relationship(Membership, foreign_keys=[acknowledged_by_id])
        resolved_by = relationship(Membership, foreign_keys=[resolved_by_id])

        def __repr__(self) -> str:
            return f"<Alert {self.id} {self.rule} {self.status} ws={self.workspace_id}>"

    return Alert


def define_counter_models(db: Any) -> tuple[Any, Any]:
    """Create ``AlertCounter`` and ``AlertSeenAddress``, what the rules count and remember."""

    class AlertCounter(db.Model):  # type: ignore[name-defined,misc]
        """How much of one rule's measure a member used in one window."""

        __tablename__ = "rbac_alert_counter"
        __table_args__ = (pk("rbac_alert_counter", "id"),
                          uq("rbac_alert_counter", "workspace_id", "membership_id", "rule",
                             "window_start"),
                          ix("rbac_alert_counter", "window_start"))
        id: Mapped[int] = mapped_column(primary_key=True)
        # No foreign keys: a counter is written on every audited write and
        # pruned by age; it outlives nothing worth a cascade.
        workspace_id: Mapped[int] = mapped_column()
        membership_id: Mapped[int] = mapped_column()
        rule: Mapped[str] = mapped_column(sa.String(40))
        window_start: Mapped[dt.datetime] = mapped_column()
        count: Mapped[int] = mapped_column(sa.BigInteger, default=0)
        mark: Mapped[int | None] = mapped_column(sa.BigInteger)

    class AlertSeenAddress(db.Model):  # type: ignore[name-defined,misc]
        """An address a member signed in from, and when last."""

        __tablename__ = "rbac_alert_seen_address"
        __table_args__ = (pk("rbac_alert_seen_address", "id"),
                          uq("rbac_alert_seen_address", "membership_id", "ip"))
        id: Mapped[int] = mapped_column(primary_key=True)
        membership_id: Mapped[int] = mapped_column(
            fk("rbac_alert_seen_address.membership_id", "rbac_membership.id", ondelete="CASCADE"))
        ip: Mapped[str] = mapped_column(sa.String(64))
        first_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        #: ``last_seen_at`` before the latest sign-in (set by the same upsert).
        previous_seen_at: Mapped[dt.datetime | None] = mapped_column()

    return AlertCounter, AlertSeenAddress
