"""The figures of the reports page and the dashboard charts, as filtered SQL aggregates.

Every figure is one or more ``SELECT ... GROUP BY`` statements over the CRM
models run through the app's session, so the plugin's query filter adds the
member's criteria to them exactly as to a list page (``with_loader_criteria``
applies to ``select(func.sum(...))`` and ``select(func.count())`` too; the
tests check each shape against ``rbac.can("view")`` on both backends).
Nothing here filters by owner by hand: a figure is the aggregate of the
records the member may view, and nothing more. It counts the current
workspace's own records only (:meth:`Filters.where`): records another
workspace shares with it are shown on its lists, but are not its figures; an
agreement shares rows, not the sharer's totals, and a report's CSV would
otherwise export them though the agreement does not share ``export``.

A figure is not shown, rather than computed, when:

* the member may not view its resource at all (the plan or the role); or
* it would aggregate, group or filter by a field hidden from the member
  (field rules): a per-stage sum reveals stages and amounts. The plugin
  would refuse such a statement with a 403 anyway; asking
  :meth:`rbac.hidden_fields` first turns that into a note on the page.

Filters: ``start``/``end`` (inclusive dates on the records' creation date,
or on the close date for "won and lost by month"), ``owner`` (a user id) and
``department`` (the owners who are members of that department in the
current workspace). A filter names the field it tests, so a figure whose
filter field is hidden from the member is not shown either. The department
filter tells who belongs to which department, which only ``members.view``
shows: without it the filter is not offered and a ``department`` argument
is refused (403, like a figure filtered by a hidden field).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_rbac_plugin import Access
from crm_rbac_plugin.inputs import is_digits

from ..extensions import db
from ..models import DEAL_STAGES, Deal, Lead, Note, Task, User
from ..rbac_setup import rbac

#: Dates run to the day before the last one a date can hold: an end date's next day
#: bounds its range.
LAST_DAY = dt.date.max

#: Resources counted by "activity per member", with their model.
ACTIVITY: tuple[tuple[str, Any], ...] = (("leads", Lead), ("deals", Deal), ("tasks", Task),
                                         ("notes", Note))


class FilterError(ValueError):
    """A filter value that is not valid (``status`` 400) or that the member may not use
    (403); ``field`` names the query argument."""

    def __init__(self, field_name: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Filters:
    """The page's filters, validated (all optional)."""

    start: dt.date | None = None
    end: dt.date | None = None
    owner: int | None = None
    department: int | None = None

    @classmethod
    def parse(cls, args: Mapping[str, str], *, departments: bool = True) -> Filters:
        """Read ``start``, ``end``, ``owner`` and ``department``; raise :class:`FilterError`.

        ``departments`` False (the member may not view members) refuses a
        ``department`` argument with a 403: its results would tell who
        belongs to the department.
        """
        if not departments and (args.get("department") or "").strip():
            raise FilterError("department", "department: filtering by department needs the "
                                            "right to view members.", status=403)
        values: dict[str, Any] = {}
        for name in ("start", "end"):
            text = (args.get(name) or "").strip()
            if text:
                try:
                    values[name] = dt.date.fromisoformat(text)
                except ValueError:
                    raise FilterError(name, f"{name}: enter a date as YYYY-MM-DD.") from None
                if values[name] >= LAST_DAY:  # the end's next day must still be a date
                    raise FilterError(name, f"{name}: enter a date before {LAST_DAY}.")
        for name in ("owner", "department"):
            text = (args.get(name) or "").strip()
            if text:
                if not is_digits(text) or len(text) > 12:
                    raise FilterError(name, f"{name}: expected a numeric id.")
                values[name] = int(text)
        if values.get("start") and values.get("end") and values["start"] > values["end"]:
            raise FilterError("end", "end: the end date is before the start date.")
        return cls(**values)

    def query(self) -> dict[str, str]:
        """The filters as URL arguments (for the export link)."""
        out = {"start": self.start, "end": self.end, "owner": self.owner,
               "department": self.department}
        return {k: str(v) for k, v in out.items() if v is not None}

    def fields(self, date_field: str) -> set[str]:
        """The fields of a record that these filters test."""
        used = {date_field} if self.start or self.end else set()
        if self.owner is not None or self.department is not None:
            used.add("owner_id")
        return used

    def where(self, model: Any, access: Access | None, date_field: str = "created_at",
              ) -> list[Any]:
        """WHERE clauses of the filters on ``model`` (its owner and ``date_field``), and of the
        current workspace (none outside one): shared records are not counted."""
        clauses: list[Any] = [model.workspace_id == (access.workspace_id if access else None)]
        column = getattr(model, date_field)
        if self.start is not None:
            clauses.append(column >= as_bound(column, self.start))
        if self.end is not None:
            clauses.append(column < as_bound(column, self.end + dt.timedelta(days=1)))
        if self.owner is not None:
            clauses.append(model.owner_id == self.owner)
        if self.department is not None:
            m = rbac.models
            members = sa.select(m.Membership.user_id).where(
                m.Membership.workspace_id == (access.workspace_id if access else None),
                m.Membership.department_id == self.department)
            clauses.append(model.owner_id.in_(members))
        return clauses


def as_bound(column: Any, day: dt.date) -> Any:
    """``day`` as a bound of ``column``: midnight for a datetime column."""
    if isinstance(column.type, sa.DateTime):
        return dt.datetime.combine(day, dt.time())
    return day


@dataclass
class Figure:
    """One figure: its rows (label, then one value per column) or why it is not shown."""

    key: str
    title: str
    resource: str
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    missing: str = ""  # why the figure is not shown ("" when it is)
    #: Chart kind: "bars" (first value column) or "pairs" (won/lost counts).
    chart: str = "bars"

    @property
    def shown(self) -> bool:
        return not self.missing


def unavailable(resource: str, needs: set[str]) -> str:
    """Why a figure over ``resource`` using ``needs`` cannot be shown ("" if it can)."""
    if not rbac.can("view", resource):
        return f"You may not view {resource}."
    hidden = sorted(needs & rbac.hidden_fields(resource))
    if hidden:
        return (f"Not shown: it uses {', '.join(hidden)} of {resource}, "
                "which is hidden from you.")
    return ""


def month_of(column: Any) -> Any:
    """SQL for the ``YYYY-MM`` of a date column (per dialect)."""
    if db.session.get_bind().dialect.name == "postgresql":
        return sa.func.to_char(column, "YYYY-MM")
    return sa.func.strftime("%Y-%m", column)


def pipeline(f: Filters, access: Access | None) -> Figure:
    """Deals by stage: count and total amount."""
    fig = Figure("pipeline", "Pipeline value by stage", "deals", ("Stage", "Deals", "Value"))
    fig.missing = unavailable("deals", {"stage", "amount"} | f.fields("created_at"))
    if fig.shown:
        rows = {stage: (n, total) for stage, n, total in db.session.execute(
            sa.select(Deal.stage, sa.func.count(Deal.id), sa.func.sum(Deal.amount))
            .where(*f.where(Deal, access)).group_by(Deal.stage))}
        order = [s for s in DEAL_STAGES if s in rows] + sorted(set(rows) - set(DEAL_STAGES))
        fig.rows = [(stage, int(rows[stage][0]), Decimal(rows[stage][1] or 0)) for stage in order]
    return fig


def won_lost(f: Filters, access: Access | None) -> Figure:
    """Won and lost deals by month of their close date: counts and amounts."""
    fig = Figure("won_lost", "Won and lost by month", "deals",
                 ("Month", "Won", "Won value", "Lost", "Lost value"), chart="pairs")
    fig.missing = unavailable("deals", {"stage", "amount", "close_date"} | f.fields("close_date"))
    if fig.shown:
        month = month_of(Deal.close_date).label("month")
        stmt = (sa.select(month, Deal.stage, sa.func.count(Deal.id), sa.func.sum(Deal.amount))
                .where(Deal.stage.in_(("won", "lost")), Deal.close_date.is_not(None),
                       *f.where(Deal, access, "close_date"))
                .group_by(month, Deal.stage))
        by_month: dict[str, dict[str, tuple[int, Decimal]]] = {}
        for m, stage, n, total in db.session.execute(stmt):
            by_month.setdefault(str(m), {})[stage] = (int(n), Decimal(total or 0))
        zero = (0, Decimal(0))
        fig.rows = [(m, *by_month[m].get("won", zero), *by_month[m].get("lost", zero))
                    for m in sorted(by_month)]
    return fig


def leads_by_source(f: Filters, access: Access | None) -> Figure:
    """Leads by source: counts."""
    fig = Figure("leads_by_source", "Leads by source", "leads", ("Source", "Leads"))
    fig.missing = unavailable("leads", {"source"} | f.fields("created_at"))
    if fig.shown:
        rows = db.session.execute(sa.select(Lead.source, sa.func.count(Lead.id))
                                  .where(*f.where(Lead, access)).group_by(Lead.source))
        fig.rows = sorted(((source or "(none)", int(n)) for source, n in rows),
                          key=lambda r: (-r[1], r[0]))
    return fig


def owner_names(ids: set[int | None]) -> dict[int | None, str]:
    """Display names of owners (users are not protected records); None is "Unassigned"."""
    known = {uid: name for uid, name in db.session.execute(
        sa.select(User.id, User.name).where(User.id.in_([i for i in ids if i is not None])))}
    return {i: known.get(i, f"User #{i}") if i is not None else "Unassigned" for i in ids}


def counts_by_owner(model: Any, clauses: list[Any]) -> dict[int | None, int]:
    """``SELECT owner_id, count(*) ... GROUP BY owner_id`` (filtered by the plugin)."""
    return {owner: int(n) for owner, n in db.session.execute(
        sa.select(model.owner_id, sa.func.count(model.id)).where(*clauses)
        .group_by(model.owner_id))}


def activity(f: Filters, access: Access | None) -> Figure:
    """Records owned per member, by resource, and their total.

    A resource the member may not view, or whose owner or creation date (when
    a date filter is set) is hidden from them, is left out of the columns.
    """
    parts = [(name, model) for name, model in ACTIVITY
             if not unavailable(name, {"owner_id"} | f.fields("created_at"))]
    fig = Figure("activity", "Activity per member", "reports",
                 ("Member", *(n.title() for n, _ in parts), "Total"))
    if not parts:
        fig.missing = "Not shown: you may not view the owners of any records."
        return fig
    counts = {name: counts_by_owner(model, f.where(model, access)) for name, model in parts}
    owners = {o for c in counts.values() for o in c}
    names = owner_names(owners)
    rows = [(names[o], *(counts[n].get(o, 0) for n, _ in parts),
             sum(counts[n].get(o, 0) for n, _ in parts)) for o in owners]
    fig.rows = sorted(rows, key=lambda r: (-r[-1], r[0]))
    return fig


def overdue(f: Filters, access: Access | None, today: dt.date | None = None) -> Figure:
    """Open tasks past their due date, per owner."""
    today = today or dt.date.today()
    fig = Figure("overdue", "Tasks overdue", "tasks", ("Owner", "Overdue tasks"))
    fig.missing = unavailable("tasks", {"status", "due_date", "owner_id"} | f.fields("created_at"))
    if fig.shown:
        counts = counts_by_owner(Task, [Task.status == "open", Task.due_date < today,
                                        *f.where(Task, access)])
        names = owner_names(set(counts))
        fig.rows = sorted(((names[o], n) for o, n in counts.items()),
                          key=lambda r: (-r[1], r[0]))
    return fig


#: Every figure, in page order.
FIGURES: tuple[Callable[[Filters, Access | None], Figure], ...] = (
    pipeline, won_lost, leads_by_source, activity, overdue)


def member() -> Access | None:
    """The member in force: the request's, or the one of ``rbac.as_member`` (a job, a test)."""
    ctx = rbac.resolve_context()
    return ctx if isinstance(ctx, Access) else None


def all_figures(f: Filters) -> list[Figure]:
    """Every figure for the member in force."""
    access = member()
    return [make(f, access) for make in FIGURES]


def figure(key: str, f: Filters) -> Figure | None:
    """The figure named ``key``, or None for an unknown key."""
    access = member()
    for make in FIGURES:
        if make.__name__ == key:
            return make(f, access)
    return None
