"""The alert rules: what each audit event (or flushed deletion) adds to which counter.

Every rule is a small pure function of one event and the workspace's
:class:`~.thresholds.Thresholds`; none reads the database. The engine
(:mod:`.engine`) applies the :class:`Count` results with one upsert each and
raises an alert when a window first reaches its threshold.

====================  =====================================  ==========  ========
rule                  measure                                window      severity
====================  =====================================  ==========  ========
``export_volume``     rows in ``export`` events                1 hour      high
``refusals``          ``access.denied`` events                 10 minutes  medium
``mass_deletion``     records of registered resources deleted  1 hour      high
``off_hours``         any event outside business hours         local day   low
``new_address``       ``auth.login`` from an unseen address    (per sign-in) medium
``privilege``         privileged role given, held role widened (per event)   high/medium
====================  =====================================  ==========  ========

Windows are aligned on the clock (12:00-13:00, 12:10-12:20), in UTC except
the off-hours day, which is the workspace's local calendar day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from .thresholds import Thresholds, local_time

#: Each rule's severity and the sentence its alert starts with.
SEVERITY: dict[str, str] = {
    "export_volume": "high", "refusals": "medium", "mass_deletion": "high",
    "off_hours": "low", "new_address": "medium", "privilege": "high",
}
#: The rules' names as the page shows them.
TITLES: dict[str, str] = {
    "export_volume": "Export volume", "refusals": "Repeated refusals",
    "mass_deletion": "Mass deletion", "off_hours": "Activity outside business hours",
    "new_address": "Sign-in from a new address", "privilege": "Privilege increase",
}
RULES: tuple[str, ...] = tuple(SEVERITY)
#: Scopes from narrowest to widest: a grant moved right is widened.
SCOPE_ORDER: tuple[str, ...] = ("own", "team", "department", "all")


@dataclass(frozen=True)
class Count:
    """Add ``amount`` to ``rule``'s counter of one member's window; alert at ``threshold``."""

    rule: str
    workspace_id: int
    membership_id: int
    window_start: dt.datetime
    amount: int
    threshold: int
    summary: str


def hour_start(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def ten_minutes_start(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=at.minute - at.minute % 10, second=0, microsecond=0)


def local_day_start(at: dt.datetime, timezone: str) -> dt.datetime:
    """The start of ``at``'s calendar day in ``timezone``, as naive UTC (the window key)."""
    local = local_time(at, timezone)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight.astimezone(dt.UTC).replace(tzinfo=None)


def counts_for_event(ev: Any, limits: Thresholds) -> list[Count]:
    """The counters one new audit event adds to (its actor's, in its workspace)."""
    ws, member, at = ev.workspace_id, ev.actor_membership_id, ev.at
    if ws is None or member is None or at is None:
        return []
    out: list[Count] = []
    if ev.action == "export":
        rows = _rows(ev.detail)
        if rows > 0:
            out.append(Count("export_volume", ws, member, hour_start(at), rows,
                             limits.export_rows_per_hour,
                             f"exported at least {limits.export_rows_per_hour} rows within "
                             "an hour"))
    elif ev.action == "access.denied":
        out.append(Count("refusals", ws, member, ten_minutes_start(at), 1,
                         limits.refusals_per_10_minutes,
                         f"was refused {limits.refusals_per_10_minutes} times within "
                         "10 minutes"))
    if not limits.in_business_hours(at):
        local = local_time(at, limits.timezone)
        out.append(Count("off_hours", ws, member, local_day_start(at, limits.timezone), 1, 1,
                         f"was active outside business hours ({ev.action} at "
                         f"{local:%a %H:%M} {limits.timezone})"))
    return out


def deletion_count(workspace_id: int, membership_id: int, at: dt.datetime, rows: int,
                   limits: Thresholds) -> Count:
    """The mass-deletion counter for ``rows`` records deleted by one member in one flush."""
    return Count("mass_deletion", workspace_id, membership_id, hour_start(at), rows,
                 limits.deletions_per_hour,
                 f"deleted at least {limits.deletions_per_hour} records within an hour")


def _rows(detail: Any) -> int:
    try:
        return max(int((detail or {}).get("rows") or 0), 0)
    except (TypeError, ValueError):
        return 0


# -- privilege increases ----------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    """One recorded policy change of an event, with its column values."""

    kind: str
    op: str
    before: dict[str, Any]
    after: dict[str, Any]


def changes_of(ev: Any) -> list[Change]:
    """The changes an event records: inline (a described event) or keyed by target
    in the event's ``before``/``after`` (a summary event)."""
    listed = (ev.detail or {}).get("changes") if isinstance(ev.detail, dict) else None
    if not isinstance(listed, list):
        return []
    befores = ev.before if isinstance(ev.before, dict) else {}
    afters = ev.after if isinstance(ev.after, dict) else {}
    out = []
    for c in listed:
        if not isinstance(c, dict):
            continue
        before = c.get("before") if "before" in c else befores.get(c.get("target"))
        after = c.get("after") if "after" in c else afters.get(c.get("target"))
        out.append(Change(str(c.get("kind")), str(c.get("op")), before or {}, after or {}))
    return out


def assigned_role_ids(changes: list[Change]) -> list[tuple[int, int]]:
    """``(membership id, role id)`` of every role given (a new assignment, or one moved
    to another role), except in the change that creates the workspace (its first
    Owner is no increase)."""
    if any(c.kind == "workspace" and c.op == "created" for c in changes):
        return []
    out = []
    for c in changes:
        if c.kind != "assignment" or c.op == "deleted":
            continue
        role_id, member_id = c.after.get("role_id"), c.after.get("membership_id")
        if role_id is None or member_id is None:
            continue
        if c.op == "created" or c.before.get("role_id") != role_id:
            out.append((int(member_id), int(role_id)))
    return out


def department_roles_given(changes: list[Change]) -> list[tuple[int, int]]:
    """``(department id, role id)`` of every role given to a department."""
    out = []
    for c in changes:
        if c.kind != "department_role" or c.op == "deleted":
            continue
        role_id, dept_id = c.after.get("role_id"), c.after.get("department_id")
        if role_id is not None and dept_id is not None and (
                c.op == "created" or c.before.get("role_id") != role_id):
            out.append((int(dept_id), int(role_id)))
    return out


def reparented_roles(changes: list[Change]) -> list[tuple[int, int]]:
    """``(role id, parent id)`` of every existing role given a new parent: it then
    carries the parent's grants."""
    out = []
    for c in changes:
        if c.kind != "role" or c.op != "changed":
            continue
        parent = c.after.get("parent_id")
        if parent is not None and c.before.get("parent_id") != parent and c.after.get("id"):
            out.append((int(c.after["id"]), int(parent)))
    return out


def widened_grants(changes: list[Change]) -> list[tuple[int, str]]:
    """``(role id, "resource.action scope")`` of every grant that lets more: a new
    allow, a deny turned allow, or a wider scope or dropped condition on an allow.

    Grants of a role created by the same change are its definition, not a widening.
    """
    new_roles = {c.after.get("id") for c in changes if c.kind == "role" and c.op == "created"}
    if any(c.kind == "workspace" and c.op == "created" for c in changes):
        return []
    out = []
    for c in changes:
        if c.kind != "grant" or c.op == "deleted" or c.after.get("effect") != "allow":
            continue
        if c.after.get("role_id") in new_roles:
            continue
        if c.op != "created" and not _wider(c.before, c.after):
            continue
        role_id = c.after.get("role_id")
        if role_id is not None:
            out.append((int(role_id), f"{c.after.get('resource')}.{c.after.get('action')} "
                                      f"({c.after.get('scope')})"))
    return out


def _wider(before: dict[str, Any], after: dict[str, Any]) -> bool:
    if before.get("effect") != "allow":
        return True
    old, new = before.get("scope"), after.get("scope")
    if old in SCOPE_ORDER and new in SCOPE_ORDER and SCOPE_ORDER.index(new) > SCOPE_ORDER.index(old):
        return True
    return bool(before.get("condition")) and not after.get("condition")
