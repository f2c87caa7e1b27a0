"""The query filter reaches protected rows a statement does not name.

The listener adds criteria for the models a statement names and for those
reachable from them, by relationships (covered in ``test_query_filter``)
and through the SQL of a ``column_property``: ``select(Box)`` shows no
``thing`` table, yet Box's ``thing_count`` counts things. A separate, tiny
app of its own (SQLite), since the demo's models have no such property.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_login import UserMixin
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from crm_rbac_plugin import RBAC, workspaces


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class ReachUser(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "reach_user"
    id: Mapped[int] = mapped_column(primary_key=True)


class Thing(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "thing"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column()
    owner_id: Mapped[int | None] = mapped_column()


class Box(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "box"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column()
    owner_id: Mapped[int | None] = mapped_column()
    # Counts every thing of the workspace: only those the member sees may count.
    thing_count: Mapped[int] = column_property(
        sa.select(sa.func.count(Thing.id)).scalar_subquery())


rbac = RBAC(db=db, user_model=ReachUser)
rbac.register_resource("boxes", Box, module="reach")
rbac.register_resource("things", Thing, module="reach")


@pytest.fixture
def member_id(tmp_path: Path) -> Iterator[Any]:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path}/reach.db",
                      SECRET_KEY="test", RBAC_REGISTER_BLUEPRINTS=False, RBAC_CLI=False)
    db.init_app(app)
    rbac.init_app(app)
    with app.app_context():
        db.create_all()
        owner, member = ReachUser(), ReachUser()
        db.session.add_all([owner, member])
        db.session.flush()
        ws = workspaces.create_workspace(rbac, "Reach", owner=owner, slug="reach")
        membership = workspaces.add_member(rbac, ws, member, [])
        role = rbac.models.Role(workspace=ws, key="own", name="Own")
        for resource in ("boxes", "things"):
            workspaces.add_grant(rbac, role, resource, "view", "own")
        db.session.add(role)
        db.session.flush()
        db.session.add(rbac.models.MemberRole(membership_id=membership.id, role_id=role.id))
        db.session.commit()
        membership_id = membership.id
        with rbac.system():
            db.session.add(Box(workspace_id=ws.id, owner_id=member.id))
            db.session.add_all([Thing(workspace_id=ws.id, owner_id=owner.id) for _ in range(3)]
                               + [Thing(workspace_id=ws.id, owner_id=member.id)])
            db.session.commit()
        db.session.expunge_all()
        yield membership_id
        db.session.remove()


def test_column_property_subquery_is_filtered(member_id: Any) -> None:
    with rbac.as_member(member_id):
        box = db.session.scalars(sa.select(Box)).one()
        assert box.thing_count == 1  # the member's own thing, not the owner's three
    with rbac.system():
        db.session.expunge_all()
        assert db.session.scalars(sa.select(Box)).one().thing_count == 4
