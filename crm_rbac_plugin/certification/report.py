"""The compliance report of a certification run: sections of rows, as CSV or a printable page.

A report is a list of :class:`Section` s, each built by one function of
:data:`SECTIONS` from the run: the run itself, its items and decisions, and
the permission changes made while it was open (every audit event of the
workspace between its start and its completion that changed permissions
or belongs to the run), and the workspace's alerts not yet resolved. A
further section is one more function appended to :data:`SECTIONS`; the
CSV and the page render every section the same way.

The CSV writes each section as a title row, a header row and its rows,
with a blank row between sections; every cell goes through
:mod:`..csvsafe`, so a member named ``=HYPERLINK(...)`` reads as text.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import csvsafe
from ..audit import Described, describe, load_names, sentence_text
from ..models import utcnow
from .lines import label

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The ``via`` of a report CSV waiting for approval: the name its producer is
#: registered under, the same for the settings page and the JSON API.
REPORT_EXPORT = "review_report"


@dataclass
class Section:
    """One titled table of the report."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    #: Shown when ``rows`` is empty.
    empty: str = "Nothing to report."


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value is not None else ""


def run_section(rbac: RBACProtocol, run: Any) -> Section:
    """Who started and completed the run, when, and what it covered."""
    decided = [i for i in run.items if i.decision is not None]
    return Section("run", f"Certification run #{run.id}", ["Field", "Value"], [
        ["Status", run.status],
        ["Resource reviewed", run.resource or "(privileged members only)"],
        ["Started", _when(run.started_at)], ["Started by", run.started_by_name],
        ["Completed", _when(run.completed_at)], ["Completed by", run.completed_by_name],
        ["Items", len(run.items)], ["Decided", len(decided)],
        ["Kept", sum(i.decision == "keep" for i in decided)],
        ["Revoked", sum(i.outcome.startswith("revoked") for i in decided)],
        ["Revokes refused", sum(i.outcome.startswith("refused") for i in decided)],
    ])


def items_section(rbac: RBACProtocol, run: Any) -> Section:
    """Each member on the list: why, their roles, the decision, who made it, when, the outcome."""
    return Section("items", "Members and decisions",
                   ["Member", "Listed because", "Roles", "Decision", "Decided by",
                    "Decided at", "Outcome", "Reason"],
                   [[i.member_name, i.why.replace(",", ", "),
                     ", ".join(label(r) for r in i.roles or []),
                     i.decision or "undecided", i.decided_by_name, _when(i.decided_at),
                     i.outcome, i.reason] for i in run.items],
                   empty="The run listed nobody.")


def run_events(rbac: RBACProtocol, run: Any) -> list[Any]:
    """The workspace's permission changes while the run was open, and the run's own events."""
    A = rbac.models.AuditEvent
    end = run.completed_at or utcnow()
    events = rbac.db.session.scalars(sa.select(A).where(
        A.workspace_id == run.workspace_id, A.at >= run.started_at, A.at <= end)
        .order_by(A.at, A.id)).all()
    return [ev for ev in events if (ev.detail or {}).get("changes")
            or ev.action.startswith("certification.")]


def _what(described: Described) -> str:
    """An event's changes as the audit trail words them, else its headline (never an id)."""
    return sentence_text(described) or described.headline


def changes_section(rbac: RBACProtocol, run: Any) -> Section:
    """The permission changes of the run's window, as the audit trail words them."""
    events = run_events(rbac, run)
    names = load_names(rbac, run.workspace_id, events)
    return Section("changes", "Permission changes during the run",
                   ["When", "Event", "What happened", "Reason"],
                   [[_when(ev.at), ev.action, _what(describe(names, ev)),
                     (ev.detail or {}).get("reason", "")] for ev in events],
                   empty="No permission changed while the run was open.")


def alerts_section(rbac: RBACProtocol, run: Any) -> Section:
    """The workspace's alerts still open or acknowledged when the report is read: what
    a reviewer signs off beside the run (resolved ones are on the Alerts page)."""
    A = rbac.models.Alert
    alerts = rbac.db.session.scalars(sa.select(A).where(
        A.workspace_id == run.workspace_id, A.status != "resolved")
        .order_by(A.created_at, A.id)).all()
    return Section("alerts", "Open alerts",
                   ["Raised", "Rule", "Severity", "Status", "What happened"],
                   [[_when(a.created_at), a.rule, a.severity, a.status, a.summary]
                    for a in alerts],
                   empty="No alert is open.")


#: The report's sections, in order. Each takes ``(rbac, run)`` and returns a Section.
SECTIONS: tuple[Callable[[Any, Any], Section], ...] = (run_section, items_section,
                                                       changes_section, alerts_section)


def build(rbac: RBACProtocol, run: Any) -> list[Section]:
    """Every section of the run's report."""
    return [make(rbac, run) for make in SECTIONS]


def to_csv(sections: list[Section]) -> str:
    """The report as CSV: per section a title row, a header row, its rows, a blank row."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    for section in sections:
        writer.writerow([section.title])
        writer.writerow(section.columns)
        for row in section.rows:
            writer.writerow(row)
        if not section.rows:
            writer.writerow([section.empty])
        writer.writerow([])
    return buffer.getvalue()
