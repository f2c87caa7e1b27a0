"""The demo CRM: a Flask app whose every page goes through crm_rbac_plugin."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from .extensions import csrf, db, login_manager, mail, migrate
from .rbac_setup import rbac


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the demo app; ``config`` overrides the defaults (tests use it)."""
    app = Flask(__name__, template_folder="../templates", instance_relative_config=True)
    app.config.from_mapping(
        SECRET_KEY=os.environ.get("SECRET_KEY", "dev-only-change-me"),
        SQLALCHEMY_DATABASE_URI=os.environ.get(
            "DATABASE_URL", "sqlite:///" + os.path.join(app.instance_path, "crm.db")),
        MAIL_SUPPRESS_SEND=True,
        MAIL_DEFAULT_SENDER="crm@example.test",
    )
    if config:
        app.config.from_mapping(config)
    os.makedirs(app.instance_path, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "..", "migrations"))
    login_manager.init_app(app)
    csrf.init_app(app)
    mail.init_app(app)
    rbac.init_app(app)
    return app
