"""The plugin's models live beside a host's own classes of the same names.

A host using Flask-Security-Too has its own ``Role`` class, and may have a
``Membership`` or a ``Workspace``, on the very ``db.Model`` the plugin's
tables are defined on. Relationships named by a string would then be
ambiguous ("Multiple classes found for path Role") and mapper configuration
would fail; the plugin names every target by its class, so they resolve.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_rbac_plugin import RBAC, workspaces


def test_host_classes_named_like_the_plugins_do_not_break_the_mappers() -> None:
    class Base(DeclarativeBase):
        pass

    db = SQLAlchemy(model_class=Base)

    class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "host_user"
        id: Mapped[int] = mapped_column(primary_key=True)

    # The host's own classes, registered before the plugin defines its models.
    class Role(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "host_role"
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(80), unique=True)

    class Membership(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "host_membership"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Workspace(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "host_workspace"
        id: Mapped[int] = mapped_column(primary_key=True)

    class Grant(db.Model):  # type: ignore[name-defined,misc]
        __tablename__ = "host_grant"
        id: Mapped[int] = mapped_column(primary_key=True)

    rbac = RBAC(db=db, user_model=User)
    sa.orm.configure_mappers()

    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY="test",
                      RBAC_REGISTER_BLUEPRINTS=False, RBAC_CLI=False)
    db.init_app(app)
    rbac.init_app(app)
    with app.app_context():
        db.create_all()
        owner, member = User(), User()
        db.session.add_all([owner, member, Role(name="host admin")])
        db.session.flush()
        ws = workspaces.create_workspace(rbac, "Registry", owner=owner, slug="registry")
        workspaces.add_member(rbac, ws, member, ["member"])
        db.session.commit()
        db.session.expire_all()
        roles = db.session.scalars(sa.select(rbac.models.Role)
                                   .where(rbac.models.Role.workspace_id == ws.id)).all()
        assert {r.key for r in roles} >= {"owner", "admin", "member"}
        assert all(isinstance(r.parent, (rbac.models.Role, type(None))) for r in roles)
        assert all(isinstance(g, rbac.models.Grant) for r in roles for g in r.grants)
        membership = db.session.scalar(sa.select(rbac.models.Membership)
                                       .where(rbac.models.Membership.user_id == member.id))
        assert [mr.role.key for mr in membership.member_roles] == ["member"]
        assert db.session.scalars(sa.select(Role)).one().name == "host admin"
        db.session.remove()
