"""A workspace's alert thresholds, business hours and time zone: read, validate, save.

A value the workspace never set is the ``RBAC_ALERT_*`` default; reading
never writes. An edit is checked field by field before anything is written
and the first bad value raises a :class:`~crm_rbac_plugin.errors.ValidationError`
naming its field (a 400 on the page and in the API, nothing saved). An unknown
field is refused the same way. Only an active Owner saves (the Alerts page, the
API's ``PATCH /alert-settings`` and ``flask rbac alerts set`` share
:func:`save`); a save that changes something writes one
``alert_settings.changed`` audit event with ``detail.settings = {field: [old, new]}``
(a time-zone change also lists the workspace change in ``detail.changes``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import audit
from ..config import setting
from ..errors import PermissionDenied, ValidationError
from ..loader import BYPASS
from ..models import utcnow
from ..policy import Access

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["DAY_NAMES", "FIELDS", "LIMITS", "Thresholds", "save", "thresholds_for",
           "validate", "validate_timezone"]

#: The accepted range of each numeric field, inclusive.
LIMITS: dict[str, tuple[int, int]] = {
    "export_rows_per_hour": (1, 10_000_000),
    "refusals_per_10_minutes": (1, 100_000),
    "deletions_per_hour": (1, 10_000_000),
    "new_address_days": (1, 3650),
    "business_start_hour": (0, 23),
    "business_end_hour": (1, 24),
}
#: Weekday names as the API and the CLI take them, Monday first.
DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_FULL_NAMES: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday",
                                   "saturday", "sunday")
#: Configuration key of each field's default.
DEFAULT_KEYS: dict[str, str] = {
    "export_rows_per_hour": "RBAC_ALERT_EXPORT_ROWS_PER_HOUR",
    "refusals_per_10_minutes": "RBAC_ALERT_REFUSALS_PER_10_MINUTES",
    "deletions_per_hour": "RBAC_ALERT_DELETIONS_PER_HOUR",
    "new_address_days": "RBAC_ALERT_NEW_ADDRESS_DAYS",
    "business_days": "RBAC_ALERT_BUSINESS_DAYS",
    "business_start_hour": "RBAC_ALERT_BUSINESS_START_HOUR",
    "business_end_hour": "RBAC_ALERT_BUSINESS_END_HOUR",
}


@dataclass(frozen=True)
class Thresholds:
    """One workspace's rule settings as values (its overrides over the defaults)."""

    export_rows_per_hour: int
    refusals_per_10_minutes: int
    deletions_per_hour: int
    new_address_days: int
    #: Empty: the workspace set no business hours, and the off-hours rule is off.
    business_days: tuple[int, ...]
    business_start_hour: int
    business_end_hour: int
    timezone: str = "UTC"

    def in_business_hours(self, when_utc: dt.datetime) -> bool:
        """Whether naive-UTC ``when_utc`` falls in business hours in the workspace's zone."""
        if not self.business_days:
            return True
        local = local_time(when_utc, self.timezone)
        return (local.weekday() in self.business_days
                and self.business_start_hour <= local.hour < self.business_end_hour)

    def as_json(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["business_days"] = [DAY_NAMES[d] for d in self.business_days]
        return values


#: Every field an edit may change, in the order they are checked.
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Thresholds))


def local_time(when_utc: dt.datetime, timezone: str) -> dt.datetime:
    """``when_utc`` (naive UTC) as wall-clock time in ``timezone`` (UTC if unknown)."""
    try:
        zone = zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = zoneinfo.ZoneInfo("UTC")
    return when_utc.replace(tzinfo=dt.UTC).astimezone(zone)


def defaults() -> dict[str, Any]:
    """The configured defaults of every field but the time zone."""
    values = {name: setting(key) for name, key in DEFAULT_KEYS.items()}
    values["business_days"] = tuple(sorted(values["business_days"]))
    return values


def from_row(row: Any, timezone: str) -> Thresholds:
    """The thresholds of a settings row (or a mapping of its columns; None: every
    default) in ``timezone``."""
    values = defaults()
    if row is not None:
        for name in DEFAULT_KEYS:
            stored = row[name] if isinstance(row, Mapping) else getattr(row, name)
            if stored is not None:
                values[name] = (tuple(int(c) for c in stored) if name == "business_days"
                                else stored)
    return Thresholds(**values, timezone=timezone or "UTC")


#: The thresholds' query as text: an audited write runs it, and a text statement's cache
#: key is its string, where a select's is computed from its structure on every run.
THRESHOLDS_SQL = ("SELECT w.timezone, s.id, {columns} FROM {workspaces} w "
                  "LEFT OUTER JOIN {settings} s ON s.workspace_id = w.id WHERE w.id = :workspace_id")


def thresholds_for(rbac: RBACProtocol, workspace_id: int, session: Any = None) -> Thresholds:
    """Return ``workspace_id``'s thresholds in one query (nothing written).

    ``session`` is the session to read through, the app's by default. The
    alert rules pass the session they evaluate a flush of: a refusal's audit
    session then reads on its own connection and never reopens the request's.
    """
    m = rbac.models
    sql = THRESHOLDS_SQL.format(columns=", ".join(f"s.{name}" for name in DEFAULT_KEYS),
                                workspaces=m.Workspace.__table__.name,
                                settings=m.AlertSettings.__table__.name)
    # On the session's connection: a plain statement, past the ORM's execute events.
    found = (session or rbac.db.session).connection().execute(
        sa.text(sql), {"workspace_id": workspace_id}).first()
    if found is None:
        return from_row(None, "UTC")
    values = found._mapping
    return from_row(None if values["id"] is None else
                    {name: values[name] for name in DEFAULT_KEYS}, values["timezone"])


# -- validation ----------------------------------------------------------------------------

def validate_timezone(value: Any) -> str:
    """An IANA time-zone name ("Europe/Paris"), else a 400 naming ``timezone``."""
    name = str(value or "").strip()
    if not name or len(name) > 64:
        raise ValidationError("enter an IANA time zone such as Europe/Paris or UTC",
                              field="timezone")
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not a known time zone (for example Europe/Paris)",
                              field="timezone") from None
    return name


def _integer(name: str, value: Any) -> int:
    low, high = LIMITS[name]
    if isinstance(value, bool):
        raise ValidationError(f"must be a whole number from {low} to {high}", field=name)
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"must be a whole number from {low} to {high}",
                              field=name) from None
    if not low <= number <= high:
        raise ValidationError(f"must be from {low} to {high}", field=name)
    return number


def _days(value: Any) -> tuple[int, ...]:
    """Weekday names ("mon" or "monday"), as a list or a comma-separated text; none
    (an empty list or text) turns the off-hours rule off."""
    if isinstance(value, str):
        items: list[Any] = [part for part in value.split(",") if part.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValidationError("business_days must be a list of weekdays such as "
                              '["mon", "tue"]', field="business_days")
    days: set[int] = set()
    for item in items:
        text = item.strip().lower() if isinstance(item, str) else None
        day = next((i for i, name in enumerate(DAY_NAMES)
                    if text in (name, DAY_FULL_NAMES[i])), None)
        if day is None:
            raise ValidationError(f"business_days: {str(item)[:20]!r} is not a weekday "
                                  "(mon ... sun)", field="business_days")
        days.add(day)
    return tuple(sorted(days))


def validate(current: Thresholds, changes: Mapping[str, Any]) -> Thresholds:
    """``current`` with ``changes`` applied, or a ValidationError naming the first bad field."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}; fields: {', '.join(FIELDS)}",
                              field=unknown[0])
    values = dataclasses.asdict(current)
    for name in FIELDS:
        if name not in changes:
            continue
        value = changes[name]
        if name == "timezone":
            values[name] = validate_timezone(value)
        elif name == "business_days":
            values[name] = _days(value)
        else:
            values[name] = _integer(name, value)
    if values["business_start_hour"] >= values["business_end_hour"]:
        field = "business_end_hour" if "business_end_hour" in changes else "business_start_hour"
        raise ValidationError("business hours must end after they start", field=field)
    return Thresholds(**values)


# -- saving ----------------------------------------------------------------------------------

def may_edit(access: Access | None) -> bool:
    """Whether ``access`` may change the thresholds: active Owners only."""
    return access is not None and access.active and access.is_owner


def save(rbac: RBACProtocol, access: Access, changes: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Apply ``changes`` to ``access``'s workspace (the caller commits); return
    ``{field: [old, new]}`` of the fields that changed.

    Refuses anyone but an active Owner (403) and any bad or unknown value (400,
    naming the field); nothing is written on a refusal.
    """
    if not may_edit(access):
        raise PermissionDenied("Only an Owner can change the alert settings.", field=None)
    ws = access.workspace_id
    old = thresholds_for(rbac, ws)
    new = validate(old, changes)
    diff = {name: [getattr(old, name), getattr(new, name)] for name in FIELDS
            if getattr(old, name) != getattr(new, name)}
    if not diff:
        return {}
    _store(rbac, access, new, diff)
    audit.record(rbac, "alert_settings.changed", workspace_id=ws, resource="settings",
                 target="alert settings", settings=diff)
    return diff


def _store(rbac: RBACProtocol, access: Access, new: Thresholds, diff: Mapping[str, Any]) -> None:
    """Write the changed fields (the time zone on the workspace, the rest on the row)."""
    m, session = rbac.models, rbac.db.session
    if "timezone" in diff:
        session.get(m.Workspace, access.workspace_id, execution_options=BYPASS).timezone = (
            new.timezone)
    if set(diff) == {"timezone"}:
        return
    row = session.scalar(sa.select(m.AlertSettings).where(
        m.AlertSettings.workspace_id == access.workspace_id))
    if row is None:
        row = m.AlertSettings(workspace_id=access.workspace_id)
        session.add(row)
    for name in diff:
        if name == "business_days":
            row.business_days = "".join(str(d) for d in new.business_days)
        elif name != "timezone":
            setattr(row, name, getattr(new, name))
    row.updated_at = utcnow()
    row.updated_by_membership_id = access.membership_id
