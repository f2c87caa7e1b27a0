"""The demo's Accounting module: invoices linked to clients and deals (plan-gated)."""

from __future__ import annotations

from flask import Flask

from ..areas import NavLink, add_nav
from ..crm.setup import may
from ..crm.views import crud_blueprint
from .resources import INVOICES

#: The demo's plans (``RBAC_PLANS``): Free and Pro leave Accounting out, so
#: invoices are invisible there to every member, the Owner included;
#: Enterprise includes every module, Accounting among them.
PLANS: dict[str, list[str] | str] = {
    "free": ["clients", "work"],
    "pro": ["sales", "clients", "work"],
    "enterprise": "*",
}


def init_app(app: Flask) -> None:
    """Mount the invoice pages at /invoices and their sidebar link."""
    app.register_blueprint(crud_blueprint(INVOICES))
    add_nav(app, NavLink("Invoices", "invoices.index", "deals", "invoices",
                         lambda: may("view", "invoices")))
