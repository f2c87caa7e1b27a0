"""Register the CRM blueprints, template filters and navigation on an app."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Flask, current_app

from ..rbac_setup import rbac
from . import pages
from .resources import CONFIGS, CrudConfig
from .views import crud_blueprint


def money(value: Any) -> str:
    """Format an amount as whole dollars: ``$12,500``."""
    if value is None:
        return "—"
    return f"${Decimal(value):,.0f}"


def date(value: Any, fmt: str = "%b %d, %Y") -> str:
    """Format a date or datetime for humans; a dash for None."""
    if value is None:
        return "—"
    if isinstance(value, (dt.date, dt.datetime)):
        return value.strftime(fmt)
    return str(value)


def nav_resources() -> list[CrudConfig]:
    """Resources the member may view, for the sidebar (plan and role both apply)."""
    return [cfg for cfg in CONFIGS if rbac.can("view", cfg.name)]


def settings_endpoint() -> str | None:
    """The plugin's settings pages (roles, members, tokens), when it mounts them."""
    endpoint = "rbac_settings.index"
    return endpoint if endpoint in current_app.view_functions else None


def init_app(app: Flask) -> None:
    """Register one blueprint per resource (built per app: no shared state) and the pages."""
    for cfg in CONFIGS:
        app.register_blueprint(crud_blueprint(cfg))
    app.register_blueprint(pages.bp)
    app.add_template_filter(money, "money")
    app.add_template_filter(date, "date")
    app.context_processor(lambda: {"nav_resources": nav_resources,
                                   "settings_endpoint": settings_endpoint})

