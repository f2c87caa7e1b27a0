"""Reports and analytics of the demo CRM: filtered SQL aggregates, tables and SVG charts.

Two resources without records protect them: ``reports`` (``view`` the page,
``export`` its CSV) and ``analytics`` (``view`` the charts). They belong to
the ``sales`` module, so a plan without Sales has neither.
"""

from __future__ import annotations

from flask import Flask

from ..areas import NavLink, add_nav
from ..crm.setup import may
from ..rbac_setup import rbac
from .views import bp

rbac.register_resource("reports", None, module="sales", label="Reports", owner=None)
rbac.register_resource("analytics", None, module="sales", label="Analytics", owner=None)


def init_app(app: Flask) -> None:
    """Mount the reports pages and their sidebar links."""
    app.register_blueprint(bp)
    add_nav(app, NavLink("Reports", "reports.index", "dashboard", "reports",
                         lambda: may("view", "reports")))
    add_nav(app, NavLink("Analytics", "reports.charts_page", "dashboard", "reports",
                         lambda: may("view", "analytics")))
