"""A second, minimal host of the plugin: users keyed by a UUID string named ``uid``.

Everything a host writes to adopt the plugin is here: its own ``db``, a user
model (``account.uid``, a 36-character UUID string, no ``id`` attribute), one
protected model whose ``owner_id`` points at that key, Flask-Login,
Flask-WTF CSRF, Flask-Mail (invitations), and one :class:`~crm_rbac_plugin.RBAC`
on its own ``db``. The plugin's settings pages and JSON API register
themselves. Tests use it to prove that nothing in the plugin assumes the
user key is an integer named ``id``.
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from flask import Flask, jsonify
from flask_login import LoginManager, UserMixin, login_required
from flask_mail import Mail
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from crm_rbac_plugin import RBAC
from crm_rbac_plugin.defaults import MANAGER, ROLE_TEMPLATES


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """A person who signs in, known by a random UUID (as text) rather than a counter."""

    __tablename__ = "account"
    uid: Mapped[str] = mapped_column(sa.String(36), primary_key=True,
                                     default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255), default="")

    def get_id(self) -> str:
        return self.uid

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    def __str__(self) -> str:
        return self.name or self.email


class Lead(db.Model):  # type: ignore[name-defined,misc]
    """A protected record: its workspace and owner are the columns the plugin filters on."""

    __tablename__ = "lead"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("rbac_workspace.id"), index=True)
    owner_id: Mapped[str | None] = mapped_column(sa.String(36), sa.ForeignKey("account.uid"))
    name: Mapped[str] = mapped_column(sa.String(120))


rbac = RBAC(db=db, user_model=User)
rbac.register_resource("leads", Lead, module="sales", label="Leads")
login_manager.user_loader(rbac.load_user)
login_manager.request_loader(rbac.load_user_from_request)  # API tokens


@login_required
def leads() -> Any:
    """The leads the member may see: the plugin filters the query."""
    return jsonify(sorted(lead.name for lead in db.session.scalars(sa.select(Lead))))


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(MAIL_DEFAULT_SENDER="team@uuidhost.test",
                            RBAC_ROLE_TEMPLATES=[*ROLE_TEMPLATES, MANAGER], **(config or {}))
    for extension in (db, login_manager, csrf, mail, rbac):
        extension.init_app(app)
    app.add_url_rule("/leads/", view_func=leads)
    return app
