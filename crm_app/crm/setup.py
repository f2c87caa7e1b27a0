"""Register the CRM blueprints, template filters and navigation on an app."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from flask import Flask, current_app, url_for

from crm_rbac_plugin import approvals
from crm_rbac_plugin.errors import NoAccessContext
from crm_rbac_plugin.oversight import viewas

from ..rbac_setup import rbac
from . import pages
from .resources import CONFIGS, CrudConfig, linked
from .views import crud_blueprint, produce_approved_export


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


#: Actions that change nothing: the only ones offered while viewing as a member.
READ_ACTIONS = frozenset({"view", "export"})


def may(action: str, resource: str | None = None, record: Any = None) -> bool:
    """Whether the page offers ``action`` on ``resource`` (or ``record``).

    It asks the plugin for the *acting* access, which is the viewed member's
    while an Owner or Admin views the workspace as them; and since viewing
    as is read-only, no write is offered then at all (the flush would
    refuse it anyway). Templates use it for every button that acts, so a
    control the member could not use is hidden rather than refused on submit.
    """
    if action not in READ_ACTIONS and viewas.active():
        return False
    try:
        return bool(rbac.can(action, resource, record))
    except NoAccessContext:
        return False


def admin_url() -> str | None:
    """The Flask-Admin home, when it is mounted and one of its views is open to the member."""
    admin = current_app.extensions.get("crm_admin")
    if admin is None:
        return None
    if not any(view.is_accessible() for view in admin._views if hasattr(view, "rbac")):
        return None
    return url_for("admin.index")


def init_app(app: Flask) -> None:
    """Register one blueprint per resource (built per app: no shared state) and the pages."""
    for cfg in CONFIGS:
        app.register_blueprint(crud_blueprint(cfg))
    app.register_blueprint(pages.bp)
    # An export approved through the approval workflow is produced by the same code.
    approvals.export_producer(app, produce_approved_export)
    app.add_template_filter(money, "money")
    app.add_template_filter(date, "date")
    app.add_template_global(linked, "linked")  # the cell macro's, imported without context
    app.add_template_global(rbac.shared_from, "shared_from")  # the cell macro's owner cell
    app.context_processor(lambda: {"nav_resources": nav_resources,
                                   "settings_endpoint": settings_endpoint,
                                   "may": may, "admin_url": admin_url})

