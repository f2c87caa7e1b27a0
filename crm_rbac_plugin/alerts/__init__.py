"""Alerts: anomaly rules evaluated as audit events are written.

Six rules (:mod:`.rules`) watch what the audit trail records: export volume
and refusals per member and window, sign-ins from an address the member has
not used lately, activity outside the workspace's business hours, privilege
increases and mass deletion. They run in the transaction that writes the
event, in its flush or, for a permission change's summary, at its commit
(:mod:`.engine`), on counters that one upsert increments, never on a scan of
the trail. A threshold reached raises one alert per (rule, member, window),
and :data:`..signals.alert_raised` tells the workspace's Owners and Admins.

:mod:`.thresholds` holds each workspace's thresholds, business hours and
time zone (Owners edit them); :mod:`.service` lists alerts and moves them
from open to acknowledged to resolved (Owners and Admins); :mod:`.commands`
is ``flask rbac alerts``.
"""

from __future__ import annotations

from .engine import install, prune
from .rules import RULES, SEVERITY, TITLES
from .service import (
    AlertNotFound,
    alert_json,
    alerts_for,
    get_alert,
    may_read,
    open_count,
    parse_filters,
    set_status,
)
from .thresholds import FIELDS, LIMITS, Thresholds, save, thresholds_for, validate

__all__ = [
    "FIELDS",
    "LIMITS",
    "RULES",
    "SEVERITY",
    "TITLES",
    "AlertNotFound",
    "Thresholds",
    "alert_json",
    "alerts_for",
    "get_alert",
    "install",
    "may_read",
    "open_count",
    "parse_filters",
    "prune",
    "save",
    "set_status",
    "thresholds_for",
    "validate",
]
