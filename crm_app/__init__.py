"""The demo CRM: a Flask app whose every page goes through crm_rbac_plugin."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from flask_admin import Admin
from flask_admin.menu import MenuLink
from flask_admin.theme import Bootstrap4Theme
from wtforms.validators import NumberRange, Optional

from crm_rbac_plugin.admin import RBACAdminIndexView, RBACModelView, plugin_views
from crm_rbac_plugin.config import setting
from crm_rbac_plugin.inputs import BoundedIntConverter

from . import accounting, auth, bodies, campaigns, crm, errors, files, reports, security, seed
from .accounting.models import Invoice
from .crm.forms import EMAIL
from .extensions import csrf, db, engine_options, login_manager, mail, migrate
from .imports import setup as import_pages
from .models import Client, Deal, Lead, Task
from .rbac_setup import rbac
from .roles import CRM_ROLE_TEMPLATES


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the demo app; ``config`` overrides the defaults (tests use it)."""
    app = Flask(__name__, template_folder="../templates", instance_relative_config=True)
    # Ids beyond an INTEGER key's range are a 404, not a driver error (crm_rbac_plugin.inputs).
    app.url_map.converters["int"] = BoundedIntConverter
    app.config.from_mapping(
        # No default key: security.init_app reads FLASK_SECRET_KEY, SECRET_KEY or
        # instance/secret_key, and refuses to start in production without one.
        SECRET_KEY=None,
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", "sqlite:///" + os.path.join(app.instance_path, "crm.db")),
        MAIL_SUPPRESS_SEND=True,
        MAIL_DEFAULT_SENDER="crm@example.test",
        # List the demo accounts on the login page (turn off outside demos).
        CRM_DEMO_LOGIN_HINTS=True,
        RBAC_ROLE_TEMPLATES=CRM_ROLE_TEMPLATES,
        # Notification mails go out right after the request that queued them
        # (production runs `flask rbac notify send` from cron instead).
        RBAC_NOTIFY_INLINE=True,
        # Plans: Accounting (invoices) only in Enterprise, Reports with Sales.
        RBAC_PLANS=accounting.PLANS,
        # Largest request body of any page: a form is a few KiB. The upload routes
        # (attachments, CSV imports) and the JSON API set their own limit per request.
        MAX_CONTENT_LENGTH=1024 * 1024,
        **security.DEFAULTS,
    )
    # FLASK_* environment variables override the defaults (FLASK_SECRET_KEY,
    # FLASK_SQLALCHEMY_DATABASE_URI, ...), as in any Flask deployment.
    app.config.from_prefixed_env()
    if config:
        app.config.from_mapping(config)
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(
        app.config["SQLALCHEMY_DATABASE_URI"], app.config.get("SQLALCHEMY_ENGINE_OPTIONS"))
    os.makedirs(app.instance_path, exist_ok=True)
    security.init_app(app)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    mail.init_app(app)
    rbac.init_app(app)

    auth.init_app(app)
    crm.init_app(app)
    import_pages.init_app(app)
    campaigns.init_app(app)
    reports.init_app(app)
    accounting.init_app(app)
    files.init_app(app)  # attachments on every record
    errors.init_app(app)
    app.cli.add_command(seed.demo_group)
    if app.config.get("CRM_ADMIN", True):
        _mount_admin(app)  # Flask-Admin panels at /admin
    login_manager.request_loader(rbac.load_user_from_request)  # API tokens
    # Its hook runs first of all: no other hook reads a body before it is capped.
    bodies.init_app(app)
    # A profile picture may be larger than a page's form: its own cap, so the
    # plugin's limit answers on the form's field instead of a bare 413 page.
    bodies.upload_limit("rbac_settings.profile_picture",
                        lambda: setting("RBAC_PROFILE_PICTURE_MAX_BYTES"))
    if app.config.get("CRM_WORKER_HEADER"):
        # Lets the multi-worker test see which process answered.
        app.after_request(_worker_header)
    return app


def _worker_header(response: Any) -> Any:
    response.headers["X-Worker-Pid"] = str(os.getpid())
    return response


def _mount_admin(app: Flask) -> None:
    """Mount Flask-Admin at /admin: the CRM's records and, for Owners/Admins, the
    plugin's tables, every panel guarded by crm_rbac_plugin.admin.RBACModelView.

    Bootstrap 4 assets are served by Flask-Admin itself (no CDN). The home
    page counts what the member may see; the navbar links back to the CRM,
    whose sidebar links here; ``admin/crm_base.html`` adds the demo's favicon
    and colours. Panels show no raw ids: the primary key is left out and the
    owner appears by name.
    """
    home = RBACAdminIndexView(rbac=rbac, name="Home", endpoint="admin", url="/admin")
    admin = Admin(app, name="Tessera CRM admin", index_view=home,
                  theme=Bootstrap4Theme(base_template="admin/crm_base.html"),
                  csp_nonce_generator=security.csp_nonce)
    admin.add_link(MenuLink(name="Back to the CRM", url="/", class_name="crm-back-link"))
    panels = [
        (Lead, "leads", ["name", "company", "email", "status", "source"]),
        (Deal, "deals", ["title", "stage", "amount", "close_date"]),
        (Client, "clients", ["name", "email", "phone", "region"]),
        (Task, "tasks", ["title", "status", "due_date"]),
        (Invoice, "invoices", ["number", "status", "amount", "due_on"]),
    ]
    for model, resource, columns in panels:
        admin.add_view(RBACModelView(
            model, db, rbac=rbac, resource=resource, name=resource.title(),
            endpoint=f"admin_{resource}", url=resource, category="CRM",
            column_list=[*columns, "owner"], column_details_list=[*columns, "owner"],
            column_export_list=["id", *columns], form_columns=columns,
            column_searchable_list=columns[:1],
            form_args=_admin_form_args(columns)))
    for view in plugin_views(rbac, db):
        admin.add_view(view)
    security.protect_admin(app, admin)
    app.extensions["crm_admin"] = admin


#: The CRM forms' checks (crm.forms) that the columns do not declare: an amount's
#: range and an email's form. Choices and required text come from the columns
#: themselves (crm_rbac_plugin.admin.checks).
ADMIN_FIELD_CHECKS: dict[str, list[Any]] = {
    "amount": [Optional(), NumberRange(min=0, max=9_999_999_999)],
    "email": [Optional(), EMAIL],
}


def _admin_form_args(columns: list[str]) -> dict[str, Any]:
    """Flask-Admin's ``form_args`` for a panel's form columns: :data:`ADMIN_FIELD_CHECKS`."""
    return {name: {"validators": list(ADMIN_FIELD_CHECKS[name])}
            for name in columns if name in ADMIN_FIELD_CHECKS}
