"""The dashboard and the "My access" page.

Both only read: counts and short lists come from plain ``db.select`` calls
that the plugin's query hook filters, and the access matrix asks the plugin
(``rbac.explain``) rather than re-implementing any rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa
from flask import Blueprint, render_template
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
    """One row of the dashboard's pipeline card."""

    stage: str
    count: int
    amount: Decimal
    share: float  # of the largest stage's amount, for the bar width


def pipeline() -> list[StageTotal]:
    """Deals the member sees, by stage (the GROUP BY query is filtered too)."""
    rows = {stage: (count, amount or Decimal(0)) for stage, count, amount in db.session.execute(
        sa.select(Deal.stage, sa.func.count(), sa.func.sum(Deal.amount)).group_by(Deal.stage))}
    totals = [(stage, *rows.get(stage, (0, Decimal(0)))) for stage in DEAL_STAGES]
    top = max(amount for _, _, amount in totals) or Decimal(1)
    return [StageTotal(stage, count, amount, float(amount / top))
            for stage, count, amount in totals]


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
    """Counts of what the member can see, their pipeline, upcoming tasks and new leads."""
    access = active_access()
    today = utcnow().date()
    counts = [(cfg, db.session.scalar(sa.select(sa.func.count()).select_from(cfg.model)))
              for cfg in CONFIGS if rbac.can("view", cfg.name)]
    stages = pipeline() if rbac.can("view", "deals") else []
    tasks: list[Task] = []
    overdue = 0
    if rbac.can("view", "tasks"):
        tasks = list(db.session.scalars(
            sa.select(Task).where(Task.status == "open", Task.due_date >= today)
            .order_by(Task.due_date, Task.id).limit(6).options(selectinload(Task.client))))
        overdue = db.session.scalar(sa.select(sa.func.count()).select_from(Task)
                                    .where(Task.status == "open", Task.due_date < today)) or 0
    leads = (db.session.scalars(
        sa.select(Lead).order_by(Lead.created_at.desc(), Lead.id.desc()).limit(6)
        .options(selectinload(Lead.owner))).all() if rbac.can("view", "leads") else [])
    return render_template("dashboard.html", access=access, counts=counts, stages=stages,
                           open_value=sum((s.amount for s in stages
                                           if s.stage not in ("won", "lost")), Decimal(0)),
                           won_value=sum((s.amount for s in stages if s.stage == "won"),
                                         Decimal(0)),
                           tasks=tasks, overdue=overdue, leads=leads, today=today)


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
    widest = max((rule.scope for rule in allows), key=SCOPES.index)
    notes = []
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
