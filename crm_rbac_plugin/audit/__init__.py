"""The audit trail: an append-only log of permission changes, refusals and exports.

What is written, and when:

* **Permission changes** are recorded generically from the flush, whatever
  route, form, API call or script made them: a ``before_flush`` listener
  notes every created, changed or deleted policy object (workspaces,
  departments, memberships, manager assignments, roles, grants, role
  assignments, field rules, segregation-of-duties pairs) with its column
  values as they were (from attribute history), and ``before_commit`` writes
  (one plain ``INSERT`` each, no flush of its own)
  **one event per workspace per committed transaction** summarising all of
  them (``before``/``after`` keyed by target, ``detail.changes`` listing each
  change). A request commits once, so a permission-changing request yields
  exactly one event; a rolled-back transaction or savepoint (a preview)
  yields none. The event's ``action`` is the most significant change
  (``role.created`` over ``grant.changed``, see :data:`.describe.PRIORITY`). When the
  code describes the change itself in the same transaction
  (``rbac.audit("member.deactivated", ...)``, as the team service does),
  that event is the one kept and the changes seen at flush are added to its
  ``detail.changes``: still exactly one event. An event may be completed so
  only inside the transaction that wrote it.
* **Refused attempts** (the ``access_denied`` signal) are collected during a
  request and written after it in a transaction of their own, because the
  refused request's own transaction is rolled back. Refusals outside a
  request (scripts, jobs) are not logged.
* **Exports and other application events**: ``rbac.audit("export",
  resource="deals", rows=12)`` adds an event to the session; the caller
  commits.

Append-only: a flush that updates or deletes an :class:`AuditEvent`, and an
ORM or Core ``UPDATE``/``DELETE`` statement on its table run through the
session, raise :class:`AuditImmutable`, in the system context too. Only
:func:`.events.purge_before` (retention) deletes rows. SQL run on a raw connection is
not seen (as for the query filter); a database trigger or grants would close
that gap.

Layout: :mod:`.events` writes events, :mod:`.changes` holds the session
listeners, :mod:`.describe` names each change, :mod:`.refusals` keeps refused
attempts, :mod:`.reading` filters and exports the trail, :mod:`.names` and :mod:`.sentences` read
events out as sentences that name members, roles, workspaces and agreements.
"""

from __future__ import annotations

from .changes import install
from .describe import KINDS, PRIORITY
from .event_sentences import action_label
from .events import (
    RETENTION,
    TABLE,
    AuditImmutable,
    actor,
    purge_before,
    record,
    record_export,
    snapshot,
)
from .names import Names, load_names
from .reading import CSV_COLUMNS, ReadEvent, as_read_by, csv_row, event_json, events_query, parse_filters
from .refusals import note_denied, write_denied
from .sentences import EVENT_GROUPS, SECURITY_EVENTS, Described, browser, describe, sentence_text

__all__ = [
    "CSV_COLUMNS",
    "EVENT_GROUPS",
    "KINDS",
    "PRIORITY",
    "RETENTION",
    "SECURITY_EVENTS",
    "TABLE",
    "AuditImmutable",
    "Described",
    "Names",
    "ReadEvent",
    "action_label",
    "actor",
    "as_read_by",
    "browser",
    "csv_row",
    "describe",
    "event_json",
    "events_query",
    "install",
    "load_names",
    "note_denied",
    "parse_filters",
    "purge_before",
    "record",
    "record_export",
    "sentence_text",
    "snapshot",
    "write_denied",
]
