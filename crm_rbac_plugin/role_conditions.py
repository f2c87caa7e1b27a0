"""When a role is in force: weekdays, a time-of-day window and networks.

A condition sits on a role (every holder) or on one assignment (a member's
own role, or a department's role). It is stored as JSON::

    {"weekdays": ["mon", "tue", "wed", "thu", "fri"],
     "start": "09:00", "end": "18:00",
     "networks": ["10.0.0.0/8", "2001:db8::/32"]}

Every key is optional; an empty or missing condition always holds. Days and
hours are read in the workspace's time zone (``Workspace.timezone``, an IANA
name); the window is ``start <= local time < end`` on a listed weekday (every
day when none is listed). A window never crosses midnight: one that ends
before (or when) it starts is refused, as is a bad weekday, a bad time or a
malformed network, each with a :class:`~.errors.ValidationError` naming its
key. The address of a request is compared as the IP allowlist compares it
(:func:`address_in`); no address (a CLI command, a job) is outside every
network list, so a network-bound role grants nothing there (fail closed).

Outside its condition a role grants nothing, its denies included: it is simply
not in force, as an assignment before its start. :mod:`.resolve` applies the
condition when it builds an Access and stores, with it, the next instant the
answer may change (:func:`next_change`) so the cached Access expires by
itself, and the networks it checked so a request from elsewhere rebuilds it.

Pure: no Flask, no database.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .errors import ValidationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Weekday names as stored and as the API and CLI take them, Monday first.
DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
FULL_DAY_NAMES: tuple[str, ...] = ("monday", "tuesday", "wednesday", "thursday", "friday",
                                   "saturday", "sunday")
#: The most networks one condition lists.
MAX_NETWORKS = 100
KEYS = ("weekdays", "start", "end", "networks")


@dataclass(frozen=True)
class Condition:
    """A validated condition: weekday numbers (Monday 0), minutes since midnight
    (None: the whole day) and network texts as normalised CIDR."""

    weekdays: tuple[int, ...] = ()
    start: int | None = None
    end: int | None = None
    networks: tuple[str, ...] = ()
    #: A stored condition that no longer validates: it never holds.
    broken: bool = False

    def __bool__(self) -> bool:
        return bool(self.weekdays or self.start is not None or self.networks or self.broken)

    @property
    def timed(self) -> bool:
        return bool(self.weekdays or self.start is not None)

    def to_json(self) -> dict[str, Any] | None:
        """The stored form (None for no condition)."""
        if not self:
            return None
        out: dict[str, Any] = {}
        if self.weekdays:
            out["weekdays"] = [DAY_NAMES[d] for d in self.weekdays]
        if self.start is not None and self.end is not None:
            out["start"], out["end"] = _hhmm(self.start), _hhmm(self.end)
        if self.networks:
            out["networks"] = list(self.networks)
        return out


def _hhmm(minutes: int) -> str:
    return "24:00" if minutes == 1440 else f"{minutes // 60:02d}:{minutes % 60:02d}"


def parse_networks(lines: Iterable[str], *, field: str, limit: int = MAX_NETWORKS) -> list[Network]:
    """Parse CIDR networks (IPv4 or IPv6; a bare address is a /32 or /128).

    A bad entry raises a :class:`ValidationError` naming ``field`` and the entry;
    more than ``limit`` entries too. The IP allowlist parses its lines here.
    """
    entries = [str(line).strip() for line in lines if str(line).strip()]
    if len(entries) > limit:
        raise ValidationError(f"list at most {limit} networks", field=field)
    networks = []
    for number, entry in enumerate(entries, start=1):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValidationError(f"line {number}, {entry!r}, is not an IPv4 or IPv6 network "
                                  "(for example 203.0.113.0/24 or 2001:db8::/32)",
                                  field=field) from None
    return networks


@lru_cache(maxsize=512)
def networks_of(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """Stored (already validated) CIDR texts as networks, parsed once per distinct list."""
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def address_in(address: str | None, networks: Iterable[Network]) -> bool:
    """Whether ``address`` falls in one of ``networks``.

    An IPv4-mapped IPv6 address is compared as its IPv4 address; a missing or
    malformed address is in none.
    """
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == net.version and ip in net for net in networks)


#: A time of day as a form gives it: one or two ASCII digits, a colon, two.
_TIME_OF_DAY = re.compile(r"[0-9]{1,2}:[0-9]{2}")


def _minutes(value: Any, field: str) -> int:
    text = str(value).strip()
    if _TIME_OF_DAY.fullmatch(text) is None:
        raise ValidationError(f"{text!r} is not a time of day (HH:MM)", field=field)
    hours, _, minutes = text.partition(":")
    total = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or total > 1440:
        raise ValidationError(f"{text!r} is not a time of day (00:00 to 24:00)", field=field)
    return total


def _weekdays(value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        text, value = value, [v for v in value.replace(" ", ",").split(",") if v]
        if text and not value:
            raise ValidationError(f"{text!r} names no weekday (mon, tue, wed, thu, fri, sat, "
                                  "sun)", field="weekdays")
    if not isinstance(value, (list, tuple)):
        raise ValidationError("weekdays is a list such as mon, tue, wed", field="weekdays")
    days = set()
    for item in value:
        name = str(item).strip().lower()
        if name in FULL_DAY_NAMES:
            name = DAY_NAMES[FULL_DAY_NAMES.index(name)]
        if name not in DAY_NAMES:
            raise ValidationError(f"{item!r} is not a weekday (mon, tue, wed, thu, fri, sat, "
                                  "sun)", field="weekdays")
        days.add(DAY_NAMES.index(name))
    return tuple(sorted(days))


def _given(raw: Mapping[str, Any], key: str, empty: Any) -> Any:
    """``raw[key]``, or ``empty`` when the key is absent, null, blank text or an empty list.

    Any other value is checked as given: a falsy one of the wrong type
    (``0``, ``false``, ``{}``) and a value with nothing in it (``[""]``,
    ``","``) are errors naming the key, never "no limit", so that a script's
    computed list that comes out blank cannot drop a restriction unseen.
    """
    value = raw.get(key)
    if value is None or (isinstance(value, str) and not value.strip()) or (
            isinstance(value, (list, tuple)) and not value):
        return empty
    return value


def validate(raw: Any) -> Condition:
    """Check a condition as the API, the pages and the CLI send it.

    ``raw`` is a mapping with the keys of the module docstring (``networks``
    may also be text, one CIDR per line or comma-separated); None or an empty
    mapping is no condition. Raises :class:`ValidationError` naming the key.
    """
    if raw is None or raw == {} or raw == "":
        return Condition()
    if not isinstance(raw, Mapping):
        raise ValidationError("a condition is an object with weekdays, start, end and networks",
                              field="condition")
    unknown = sorted(set(map(str, raw)) - set(KEYS))
    if unknown:
        raise ValidationError(f"unknown condition keys: {', '.join(unknown)}", field=unknown[0])
    weekdays = _weekdays(_given(raw, "weekdays", []))
    start_raw, end_raw = _given(raw, "start", ""), _given(raw, "end", "")
    start = end = None
    if start_raw != "" or end_raw != "":
        if start_raw == "":
            raise ValidationError("give the window's start as well as its end", field="start")
        if end_raw == "":
            raise ValidationError("give the window's end as well as its start", field="end")
        start, end = _minutes(start_raw, "start"), _minutes(end_raw, "end")
        if start >= 1440:
            raise ValidationError("the window starts at 24:00", field="start")
        if end <= start:
            raise ValidationError(f"the window ends ({_hhmm(end)}) before it starts "
                                  f"({_hhmm(start)}); a window cannot cross midnight",
                                  field="end")
    nets_raw = _given(raw, "networks", [])
    if isinstance(nets_raw, str):
        nets_raw = nets_raw.replace(",", "\n").splitlines()
    if not isinstance(nets_raw, (list, tuple)):
        raise ValidationError("networks is a list of CIDR networks", field="networks")
    networks = tuple(dict.fromkeys(str(n) for n in parse_networks(nets_raw, field="networks")))
    if nets_raw and not networks:
        raise ValidationError("networks lists no network: leave it out for any network",
                              field="networks")
    return Condition(weekdays, start, end, networks)


def stored(raw: Any) -> Condition:
    """Read a stored condition, failing closed: one that no longer validates never holds."""
    try:
        return validate(raw)
    except ValidationError:
        return Condition(broken=True)


@lru_cache(maxsize=64)
def zone(name: str | None) -> zoneinfo.ZoneInfo:
    """The time zone named ``name``; UTC for an unknown name (never stored: it is validated)."""
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local(now: dt.datetime, tz: str | None) -> dt.datetime:
    return now.replace(tzinfo=dt.UTC).astimezone(zone(tz))


def in_window(cond: Condition, now: dt.datetime, tz: str | None) -> bool:
    """Whether naive-UTC ``now`` falls on a listed weekday inside the window, in ``tz``."""
    if cond.broken:
        return False
    local = _local(now, tz)
    if cond.weekdays and local.weekday() not in cond.weekdays:
        return False
    if cond.start is not None and cond.end is not None:
        minute = local.hour * 60 + local.minute
        return cond.start <= minute < cond.end
    return True


def in_networks(cond: Condition, address: str | None) -> bool:
    """Whether ``address`` is on one of the condition's networks (none listed: yes)."""
    if cond.broken:
        return False
    return not cond.networks or address_in(address, networks_of(cond.networks))


def next_change(cond: Condition, now: dt.datetime, tz: str | None) -> dt.datetime | None:
    """The next naive-UTC instant after ``now`` at which :func:`in_window` may change.

    The candidates are the window's start and end and each midnight over the
    coming eight days, in the workspace's zone, and the zone's next change of
    UTC offset (daylight saving moves wall-clock instants). An early candidate
    only costs a rebuild of the Access; none is ever late. None: no window.
    """
    if not cond.timed or cond.broken:
        return None
    local = _local(now, tz)
    marks = {0} | ({cond.start, cond.end} if cond.start is not None else set())
    today = local.date()
    best: dt.datetime | None = None
    for offset in range(9):
        day = today + dt.timedelta(days=offset)
        for minute in marks:
            if minute is None:
                continue
            wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute)
            for fold in (0, 1):
                at = (wall.replace(tzinfo=zone(tz), fold=fold).astimezone(dt.UTC)
                      .replace(tzinfo=None))
                if at > now and (best is None or at < best):
                    best = at
        if best is not None:
            break
    if best is None:
        best = now + dt.timedelta(days=1)
    shift = _offset_change(now, best, tz)
    return min(best, shift) if shift is not None else best


def _offset_change(start: dt.datetime, end: dt.datetime, tz: str | None) -> dt.datetime | None:
    """The first whole minute in ``(start, end]`` with another UTC offset than ``start``'s."""
    offset = _local(start, tz).utcoffset()
    if _local(end, tz).utcoffset() == offset:
        return None
    low, high = start, end  # offset(low) == offset, offset(high) != offset
    while high - low > dt.timedelta(minutes=1):
        mid = low + (high - low) / 2
        if _local(mid, tz).utcoffset() == offset:
            low = mid
        else:
            high = mid
    return high


def _day_ranges(days: tuple[int, ...]) -> str:
    """``(0, 1, 2, 3, 4)`` as "Mon-Fri", ``(0, 2)`` as "Mon, Wed"."""
    parts, run = [], [days[0]]
    for d in days[1:]:
        if d == run[-1] + 1:
            run.append(d)
        else:
            parts.append(run)
            run = [d]
    parts.append(run)
    names = [n.capitalize() for n in DAY_NAMES]
    return ", ".join(names[r[0]] if len(r) == 1 else
                     f"{names[r[0]]}{'-' if len(r) > 2 else ', '}{names[r[-1]]}" for r in parts)


def describe(cond: Condition, tz: str | None) -> str:
    """The condition in words: "weekdays Mon-Fri 09:00-18:00 Europe/Paris, networks 10.0.0.0/8"."""
    if cond.broken:
        return "an unreadable condition"
    parts = []
    if cond.timed:
        text = f"weekdays {_day_ranges(cond.weekdays)}" if cond.weekdays else "every day"
        if cond.start is not None and cond.end is not None:
            text += f" {_hhmm(cond.start)}-{_hhmm(cond.end)}"
        parts.append(f"{text} {tz or 'UTC'}")
    if cond.networks:
        parts.append(f"networks {', '.join(cond.networks)}")
    return ", ".join(parts)


def refusal(cond: Condition, now: dt.datetime, tz: str | None, address: str | None) -> str:
    """Why ``cond`` does not hold ("" when it does): "outside the window", "from ..."."""
    if cond.broken:
        return "unreadable, so never in force"
    if not in_window(cond, now, tz):
        return "outside the window"
    if not in_networks(cond, address):
        return f"request from {address or 'no address'}, outside the networks"
    return ""
