"""The dashboard and the "My access" page.

Both only read: counts and short lists come from plain ``db.select`` calls
that the plugin's query hook filters, and the access matrix asks the plugin
(``rbac.explain``) rather than re-implementing any rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, render_template, session
from flask_login import login_required
from sqlalchemy.orm import selectinload

from crm_rbac_plugin import STANDARD_ACTIONS, Access, Resource
from crm_rbac_plugin.conditions import describe
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.registry import SCOPES

from ..extensions import db
from ..models import DEAL_STAGES, Deal, Lead, Task, User
from ..rbac_setup import rbac
from .resources import CONFIGS

bp = Blueprint("crm", __name__)

@dataclass(frozen=True)
class StageTotal:
    """One row of the dashboard's pipeline card (``amount`` None when amounts are hidden)."""

    stage: str
    count: int
    amount: Decimal | None
    share: float  # of the largest stage's amount (or count), for the bar width


def pipeline(hidden: frozenset[str]) -> list[StageTotal]:
    """Deals the member sees, by stage (the GROUP BY query is filtered too).

    A per-stage figure reveals the stage, and a sum the amounts: nothing is
    computed over a field hidden from the member (the plugin would refuse it).
    """
    if "stage" in hidden:
        return []
    columns: list[Any] = [Deal.stage, sa.func.count()]
    if "amount" not in hidden:
        columns.append(sa.func.sum(Deal.amount))
    rows = {row[0]: row[1:] for row in db.session.execute(
        sa.select(*columns).group_by(Deal.stage))}
    if "amount" in hidden:
        counts = [(stage, rows.get(stage, (0,))[0]) for stage in DEAL_STAGES]
        most = max(count for _, count in counts) or 1
        return [StageTotal(stage, count, None, count / most) for stage, count in counts]
    totals = [(stage, *rows.get(stage, (0, Decimal(0)))) for stage in DEAL_STAGES]
    totals = [(stage, count, amount or Decimal(0)) for stage, count, amount in totals]
    top = max(amount for _, _, amount in totals) or Decimal(1)
    return [StageTotal(stage, count, amount, float(amount / top))
            for stage, count, amount in totals]


def pipeline_value(stages: list[StageTotal], won: bool) -> Decimal | None:
    """The open (or won) pipeline's amount; None when amounts are hidden."""
    if not stages or stages[0].amount is None:
        return None
    wanted = {"won"} if won else set(DEAL_STAGES) - {"won", "lost"}
    return sum((s.amount or Decimal(0) for s in stages if s.stage in wanted), Decimal(0))


@dataclass(frozen=True)
class TaskCard:
    """The dashboard's task card: open tasks due next and the overdue count.

    Each filter, sort and count uses only fields the member sees: without
    ``status`` all tasks are listed, without ``due_date`` the newest come
    first, and the overdue count (which reveals both) is left out (None).
    """

    tasks: list[Task]
    overdue: int | None
    hidden: frozenset[str]


def task_card(today: Any) -> TaskCard:
    hidden = rbac.hidden_fields("tasks")
    stmt = sa.select(Task)
    if "status" not in hidden:
        stmt = stmt.where(Task.status == "open")
    if "due_date" not in hidden:
        stmt = stmt.where(Task.due_date >= today).order_by(Task.due_date, Task.id)
    else:
        stmt = stmt.order_by(Task.id.desc())
    if "client_id" not in hidden:
        stmt = stmt.options(selectinload(Task.client))
    overdue = None
    if not {"status", "due_date"} & hidden:
        overdue = db.session.scalar(sa.select(sa.func.count()).select_from(Task)
                                    .where(Task.status == "open", Task.due_date < today)) or 0
    return TaskCard(list(db.session.scalars(stmt.limit(6))), overdue, hidden)


def newest_leads() -> list[Lead]:
    """The six newest leads the member sees (by id when ``created_at`` is hidden)."""
    newest = (Lead.id.desc(),) if "created_at" in rbac.hidden_fields("leads") else (
        Lead.created_at.desc(), Lead.id.desc())
    return list(db.session.scalars(sa.select(Lead).order_by(*newest).limit(6)
                                   .options(selectinload(Lead.owner))))


def active_access() -> Access | None:
    """The member's access, or None when they have no *active* membership here.

    The plugin also returns an Access for a pending or inactive membership
    (one that allows nothing); these pages show the "no access" state then.
    """
    access = rbac.current_access()
    return access if access is not None and access.active else None


@bp.get("/")
@login_required
def dashboard() -> str:
    """Counts of what the member can see, their pipeline, upcoming tasks and new leads.

    Fields hidden from the member appear nowhere: not as values, not in
    figures computed over them (``*_hidden`` tell the template what to leave out).
    """
    access = active_access()
    today = utcnow().date()
    # A session not opened by the sign-in form (a remember-me cookie) is a returning user's.
    greeting = "Welcome back" if session.get("crm_returning", True) else "Welcome"
    counts = [(cfg, db.session.scalar(sa.select(sa.func.count()).select_from(cfg.model)))
              for cfg in CONFIGS if rbac.can("view", cfg.name)]
    stages = pipeline(rbac.hidden_fields("deals")) if rbac.can("view", "deals") else []
    card = task_card(today) if rbac.can("view", "tasks") else TaskCard([], None, frozenset())
    leads = newest_leads() if rbac.can("view", "leads") else []
    return render_template("dashboard.html", access=access, greeting=greeting,
                           counts=counts, stages=stages,
                           open_value=pipeline_value(stages, won=False),
                           won_value=pipeline_value(stages, won=True),
                           tasks=card.tasks, overdue=card.overdue, task_hidden=card.hidden,
                           leads=leads, lead_hidden=rbac.hidden_fields("leads"), today=today)


# -- my access ------------------------------------------------------------------

@dataclass(frozen=True)
class Cell:
    """One resource × action of the matrix, as the plugin decides it."""

    allowed: bool
    label: str
    note: str
    reason: str


def access_cell(access: Access, res: Resource, action: str) -> Cell | None:
    """Decide one cell with ``rbac.explain`` and summarise the scope that grants it."""
    if action not in res.actions:
        return None
    decision = rbac.explain(action, res.name)
    if not access.in_plan(res):
        return Cell(False, "Not in plan", "", decision.reason)
    if not decision.allowed:
        return Cell(False, "No", "", decision.reason)
    if access.is_owner:
        return Cell(True, "All", "", decision.reason)
    if res.model is None:
        return Cell(True, "Yes", "", decision.reason)
    allows, denies = access.rules_for(res.name, action)
    # The scopes in force: a visibility level cuts a wider allow down to it, plus
    # the member's assigned members (``Access.scopes_for``), as every list filters.
    reached = [access.scopes_for(rule) for rule in allows]
    widest = max((scopes[0] for scopes in reached), key=SCOPES.index)
    notes = []
    if any(len(scopes) > 1 for scopes in reached):
        notes.append("capped by your visibility, + your assigned members'")
    if all(rule.conditions for rule in allows):
        notes.append("where " + " or ".join(sorted({describe(r.conditions) for r in allows})))
    if res.parent is not None:
        notes.append(f"+ on {res.parent} you see")
    if denies:
        notes.append("with exceptions")
    return Cell(True, widest.capitalize(), "; ".join(notes), decision.reason)


@bp.get("/access")
@login_required
def my_access() -> str:
    """The member's effective matrix in the current workspace, with the plugin's reasons."""
    access = active_access()
    actions = list(STANDARD_ACTIONS)
    for res in rbac.registry:
        actions += [a for a in res.actions if a not in actions]
    rows: list[tuple[Resource, list[Cell | None]]] = []
    membership = None
    team: list[User] = []
    if access is not None:
        rows = [(res, [access_cell(access, res, a) for a in actions]) for res in rbac.registry]
        membership = db.session.get(rbac.models.Membership, access.membership_id)
        team = list(db.session.scalars(sa.select(User).where(
            User.id.in_(sorted(access.team_user_ids - {access.user_id}))).order_by(User.name)))
    return render_template("access.html", access=access, actions=actions, rows=rows,
                           membership=membership, team=team)
