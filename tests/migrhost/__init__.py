"""A host that adopts the plugin's migrations: its own ``db``, a UUID user key, its own Alembic history.

Its history (``versions/``) creates only the user table, under the branch
label ``host``; the one line ``migrate.configure(include_branch)`` adds the
plugin's ``rbac`` branch. Its metadata has a naming convention of its own,
unlike the plugin's, to show that the plugin's constraint names do not
depend on it.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import Flask
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_rbac_plugin import RBAC
from crm_rbac_plugin.migrations import include_branch

HOST_NAMING = {
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=HOST_NAMING)


db = SQLAlchemy(model_class=Base)


class Account(db.Model):  # type: ignore[name-defined,misc]
    """The host's user, keyed by a UUID string."""

    __tablename__ = "account"
    uid: Mapped[str] = mapped_column(sa.String(36), primary_key=True,
                                     default=lambda: str(uuid.uuid4()))
    email: Mapped[str] = mapped_column(sa.String(255))


rbac = RBAC(db=db, user_model=Account)
migrate = Migrate(render_as_batch=True)
migrate.configure(include_branch)


def create_app(database_url: str, migrations: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY="test",
                      RBAC_CLI=False, RBAC_REGISTER_BLUEPRINTS=False)
    db.init_app(app)
    rbac.init_app(app)
    migrate.init_app(app, db, directory=migrations)
    return app
