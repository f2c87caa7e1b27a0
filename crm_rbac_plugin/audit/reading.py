"""Read the audit trail: query-arg filters, the events query, JSON and CSV rows.

The filters ``member`` and ``role`` find the events *about* a membership or a
role: every recorded change names its objects as ``member #12 ...``,
``role #3 ...`` in its target (see :func:`.describe.label`), so the events
whose target or ``detail`` text holds that label are the ones about it. The
match needs the character after the id (a space, a bracket or the closing
quote of the JSON string), so ``role #3`` never matches ``role #31``. Events a
service records about a member or a role hold its id in ``detail`` or in
their values (``membership_id``, ``viewed_membership_id``, ``role_id``, a
segregation rule's ``role_a_id``/``role_b_id``); they match too.

The filter ``action`` names one event (``auth.failed``) or a group of events
as ``group:<key>`` (``group:security``: every sign-in and security event, see
:data:`.sentences.EVENT_GROUPS`); an unknown group is a ValueError on
``action``, never an empty page that looks like "nothing happened".

Events name records: a file by its name "on clients #461", a refused attempt
on "deals #805", an export by the search text of the list exported. The page,
its CSV and the API hand the events out through :func:`as_read_by`, so a
reader learns of a record no more than the record's own page would tell them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import csvsafe
from ..errors import UnknownResource
from ..inputs import MAX_ID, is_digits
from ..models import naive_utc
from ..policy import Access
from .event_sentences import WITHHELD
from .names import Names
from .sentences import EVENT_GROUPS, describe, sentence_text

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def parse_filters(args: Any) -> dict[str, Any]:
    """Read ``actor``, ``member``, ``role``, ``action``, ``resource``, ``from`` and ``to``.

    ``from``/``to`` are ISO dates or instants (UTC); a bare ``to`` date
    includes that whole day. Raises ValueError naming the bad argument.
    """
    out: dict[str, Any] = {}
    for key, what in (("actor", "a membership id"), ("member", "a membership id"),
                      ("role", "a role id")):
        value = (args.get(key) or "").strip()
        if value:
            if not is_digits(value) or int(value) > MAX_ID:
                raise ValueError(f"{key}: expected {what}")
            out[key] = int(value)
    for key in ("action", "resource"):
        value = (args.get(key) or "").strip()
        if value:
            out[key] = value[:60]
    group = out.get("action", "")
    if group.startswith("group:"):
        if group[6:] not in EVENT_GROUPS:
            raise ValueError(f"action: unknown group of events, expected one of "
                             f"{', '.join('group:' + k for k in EVENT_GROUPS)}")
        out["group"] = group[6:]
        del out["action"]
    for key in ("from", "to"):
        value = (args.get(key) or "").strip()
        if not value:
            continue
        try:
            when = naive_utc(dt.datetime.fromisoformat(value))
            if key == "to" and len(value) <= 10:
                when += dt.timedelta(days=1)
        except (ValueError, OverflowError):
            raise ValueError(f"{key}: expected a date such as 2026-11-01") from None
        out[key] = when
    return out


def events_query(rbac: RBACProtocol, workspace_id: int, filters: dict[str, Any]) -> Any:
    """Return the SELECT of a workspace's events matching ``filters``, newest first."""
    A = rbac.models.AuditEvent
    stmt = sa.select(A).where(A.workspace_id == workspace_id)
    if "actor" in filters:
        stmt = stmt.where(A.actor_membership_id == filters["actor"])
    if "member" in filters:
        stmt = stmt.where(_mentions(A, ("member", "manager"), filters["member"],
                                    ("membership_id", "viewed_membership_id")))
    if "role" in filters:
        stmt = stmt.where(_mentions(A, ("role",), filters["role"],
                                    ("role_id", "role_a_id", "role_b_id")))
    if "action" in filters:
        stmt = stmt.where(A.action == filters["action"])
    if "group" in filters:
        stmt = stmt.where(A.action.in_(EVENT_GROUPS[filters["group"]][1]))
    if "resource" in filters:
        stmt = stmt.where(A.resource == filters["resource"])
    if "from" in filters:
        stmt = stmt.where(A.at >= filters["from"])
    if "to" in filters:
        stmt = stmt.where(A.at < filters["to"])
    return stmt.order_by(A.at.desc(), A.id.desc())


def _mentions(A: Any, words: tuple[str, ...], ident: int, keys: tuple[str, ...] = ()) -> Any:
    """Events whose target or detail names ``<word> #<ident>`` (see the module docstring),
    or whose detail or values hold ``"<key>": <ident>`` (an event a service records about
    a member or a role: a sign-off, a two-factor reset, a record cap; a segregation rule's
    roles)."""
    text = sa.cast(A.detail, sa.Text)
    patterns = [f"%{word} #{ident}{end}%" for word in words for end in (" ", ")", '"')]
    held = [f'%"{key}": {ident}{end}%' for key in keys for end in (",", "}")]
    values = (text, sa.cast(A.before, sa.Text), sa.cast(A.after, sa.Text))
    return sa.or_(*(column.like(p) for p in patterns for column in (A.target, text)),
                  *(column.like(p) for p in held for column in values),
                  *(A.target == f"{word} #{ident}" for word in words))


def event_json(ev: Any) -> dict[str, Any]:
    return {"id": ev.id, "workspace_id": ev.workspace_id, "at": ev.at.isoformat() + "Z",
            "actor_user_id": ev.actor_user_id, "actor_membership_id": ev.actor_membership_id,
            "action": ev.action, "resource": ev.resource, "target": ev.target,
            "before": ev.before, "after": ev.after, "detail": ev.detail, "ip": ev.ip}


CSV_COLUMNS = ("id", "at", "actor_user_id", "actor_membership_id", "action", "actor",
               "summary", "changes", "resource", "target", "before", "after", "detail", "ip")


def csv_row(ev: Any, names: Names) -> list[str]:
    """One CSV row: the page's sentences and names, then the raw columns (JSON as
    JSON text); every cell goes through :func:`.csvsafe.safe_cell`."""
    described = describe(names, ev)
    data = {**event_json(ev), "actor": described.actor, "summary": described.headline,
            "changes": sentence_text(described)}
    out = []
    for col in CSV_COLUMNS:
        value = data[col]
        text = "" if value is None else (json.dumps(value, sort_keys=True)
                                         if isinstance(value, (dict, list)) else str(value))
        out.append(csvsafe.safe_cell(text))
    return out


#: "Contract.pdf on clients #461" (a file) or "clients #461" (a refused attempt).
_RECORD_TARGET = re.compile(r"(?:^|.* on )(?P<resource>[\w.-]+) #(?P<id>\d+)$", re.DOTALL)
#: "leads #2 edited": one record of a ``shared.write`` event's target.
_SHARED_PART = re.compile(r"(?P<resource>[\w.-]+) #(?P<id>\d+) (?P<op>\w+)")
#: Keys of ``detail`` that name the record an event is about (its id, its URL).
_RECORD_KEYS = ("record_id", "path")
COLUMNS = ("id", "workspace_id", "at", "actor_user_id", "actor_membership_id", "action",
           "resource", "target", "before", "after", "detail", "ip")


@dataclasses.dataclass(frozen=True)
class ReadEvent:
    """An event as one reader reads it: the stored row with what they may not learn left out.

    A copy, never the stored row (which is immutable and must not be flushed).
    """

    id: int
    workspace_id: int | None
    at: dt.datetime
    actor_user_id: Any
    actor_membership_id: int | None
    action: str
    resource: str
    target: str
    before: Any
    after: Any
    detail: Any
    ip: str | None


def record_of(ev: Any) -> tuple[str, int] | None:
    """The record an event is about, as ``(resource, id)``, read from its target."""
    match = _RECORD_TARGET.match(ev.target or "")
    if match is None or match["resource"] != ev.resource:
        return None
    return match["resource"], int(match["id"])


def shared_records(ev: Any) -> set[tuple[str, int]]:
    """The records a ``shared.write`` event names, in its target and its changes."""
    if ev.action != "shared.write":
        return set()
    found = {(m["resource"], int(m["id"])) for m in _SHARED_PART.finditer(ev.target or "")}
    detail = ev.detail if isinstance(ev.detail, dict) else {}
    for change in detail.get("changes") or []:
        if isinstance(change, dict) and isinstance(change.get("id"), int):
            found.add((str(change.get("resource")), change["id"]))
    return found


def _without_shared(ev: Any, hidden: set[tuple[str, int]]) -> ReadEvent:
    """A ``shared.write`` event with the records of ``hidden`` named as
    :data:`WITHHELD`: no id, no fields changed."""
    row = {column: getattr(ev, column) for column in COLUMNS}
    row["target"] = _SHARED_PART.sub(
        lambda m: f"{WITHHELD} {m['op']}" if (m["resource"], int(m["id"])) in hidden
        else m.group(0), ev.target or "")
    detail = dict(ev.detail) if isinstance(ev.detail, dict) else {}
    detail["changes"] = [
        {"resource": c.get("resource"), "op": c.get("op"), "withheld": True}
        if isinstance(c, dict) and (str(c.get("resource")), c.get("id")) in hidden else c
        for c in detail.get("changes") or []]
    row["detail"] = detail
    return ReadEvent(**row)


def _visible(rbac: RBACProtocol, access: Access, records: Iterable[tuple[str, int]]
             ) -> set[tuple[str, int]]:
    """Those of ``records`` that ``access`` may view (loaded through the query filter)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    for name, ident in records:
        wanted[name].add(ident)
    seen: set[tuple[str, int]] = set()
    with rbac.as_member(access):
        for name, ids in wanted.items():
            try:
                model = rbac.registry.get(name).model
            except UnknownResource:
                continue
            if model is None:
                continue
            pk = getattr(model, sa.inspect(model).primary_key[0].key)  # ORM: filtered
            seen |= {(name, i) for i in rbac.db.session.scalars(sa.select(pk).where(
                pk.in_(sorted(ids))))}
    return seen


def as_read_by(rbac: RBACProtocol, access: Access, events: Iterable[Any]) -> list[Any]:
    """The events as ``access`` may read them, for the audit page, its CSV and the API.

    A reader who manages settings (an Owner, an Admin: they can give
    themselves any right, so hiding anything from them protects nothing)
    reads every event as stored. Another reader holding ``settings.view``
    reads an event about a record they may not view (a deleted one too) with
    the target "a record you cannot see" and without the record's id or
    path in ``detail``: a file's name is the record's content. An export's
    search text is withheld from them too, since it names records of the
    exporter's view, not theirs. A change made through a sharing agreement
    names each of its records as such, without its id or the fields changed.
    """
    events = list(events)
    if access.is_owner or rbac.decide(access, "manage", "settings"):
        return events
    about = {ev.id: record_of(ev) for ev in events}
    shared = {ev.id: shared_records(ev) for ev in events}
    visible = _visible(rbac, access, {r for r in about.values() if r is not None}
                       | {r for named in shared.values() for r in named})
    out = []
    for ev in events:
        if shared[ev.id] - visible:
            out.append(_without_shared(ev, shared[ev.id] - visible))
            continue
        hidden = about[ev.id] is not None and about[ev.id] not in visible
        detail = ev.detail if isinstance(ev.detail, dict) else None
        searched = detail is not None and "query" in detail
        if not hidden and not searched:
            out.append(ev)
            continue
        row = {column: getattr(ev, column) for column in COLUMNS}
        if detail is not None:
            row["detail"] = {k: ("(withheld)" if k == "query" else v) for k, v in detail.items()
                             if not (hidden and k in _RECORD_KEYS)}
        if hidden:
            row["target"] = WITHHELD
        out.append(ReadEvent(**row))
    return out
