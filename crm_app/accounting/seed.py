"""Demo data of the Accounting module: the Bookkeeper and invoices.

The Bookkeeper is ``003``'s custom role: Accounting full, CRM view,
Marketing (and anything else) none. It is built from the registry's modules,
so a resource added to the Accounting module later is included and one of
another module is not.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_rbac_plugin import workspaces

from ..extensions import db
from ..models import Deal, User
from ..rbac_setup import rbac
from .models import INVOICE_STATUSES, Invoice
from .resources import MODULE

#: The CRM modules the Bookkeeper reads (``view``, every record).
CRM_MODULES = frozenset({"sales", "clients", "work"})
BOOKKEEPER_EMAIL = "bookkeeper@acme.test"


def bookkeeper_grants() -> list[tuple[str, str]]:
    """(resource, action) pairs of the Bookkeeper: every action of Accounting, CRM view."""
    out: list[tuple[str, str]] = []
    for res in rbac.registry:
        if res.module == MODULE:
            out.extend((res.name, action) for action in res.actions)
        elif res.module in CRM_MODULES and res.model is not None:
            out.append((res.name, "view"))
    return out


def bookkeeper_role(workspace: Any) -> Any:
    """Create (and flush) the workspace's custom "Bookkeeper" role."""
    role = rbac.models.Role(workspace=workspace, name="Bookkeeper",
                            description="Manages Accounting and reads the CRM; "
                                        "never sees Marketing.")
    for resource, action in bookkeeper_grants():
        workspaces.add_grant(rbac, role, resource, action, "all")
    db.session.add(role)
    db.session.flush()
    return role


def seed_accounting(workspace: Any, password: str, rng: random.Random, count: int = 120) -> None:
    """Add the Bookkeeper (role and member) and ``count`` invoices to ``workspace``.

    Runs inside ``rbac.system()`` (the demo seed); invoices bill the clients of
    won deals.
    """
    user = db.session.scalar(sa.select(User).where(User.email == BOOKKEEPER_EMAIL))
    if user is None:
        user = User(email=BOOKKEEPER_EMAIL, name="Bea Booker")
        db.session.add(user)
    user.set_password(password)
    db.session.flush()
    departments = {d.name: d for d in db.session.scalars(sa.select(rbac.models.Department).where(
        rbac.models.Department.workspace_id == workspace.id))}
    workspaces.add_member(rbac, workspace, user, [bookkeeper_role(workspace)],
                          department=departments.get("Finance"))
    deals = list(db.session.execute(sa.select(Deal.id, Deal.client_id, Deal.amount, Deal.owner_id,
                                              Deal.close_date).where(
        Deal.workspace_id == workspace.id, Deal.stage == "won").order_by(Deal.id)))
    today = dt.date.today()
    for n in range(min(count, len(deals))):
        deal_id, client_id, amount, owner_id, closed = deals[n]
        issued = closed or today - dt.timedelta(days=rng.randrange(1, 200))
        db.session.add(Invoice(
            workspace_id=workspace.id, owner_id=owner_id, number=f"INV-{1000 + n}",
            client_id=client_id, deal_id=deal_id, amount=Decimal(amount),
            status=rng.choice(INVOICE_STATUSES), issued_on=issued,
            due_on=issued + dt.timedelta(days=30)))
    db.session.flush()
