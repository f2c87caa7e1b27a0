"""A host that signs users in without Flask-Login tells the plugin who they are.

The host below has no ``LoginManager`` at all: its API reads an
``X-User`` header (standing for Flask-HTTPAuth or any token scheme) and
registers ``@rbac.user_getter``. The plugin then filters its queries, checks
its routes and serves its own pages for that user, and refuses anonymous
requests with a 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, g, jsonify, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_rbac_plugin import RBAC, require_permission, team, workspaces
from tests.conftest import FreshContextClient


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Account(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255), default="")
    is_authenticated = True

    def set_password(self, password: str) -> None:
        self.password_hash = "hashed:" + password  # the host's own scheme


class Post(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    workspace_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rbac_workspace.id"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account.id"))


rbac = RBAC(db=db, user_model=Account)
rbac.register_resource("posts", Post, module="content")


@rbac.user_getter
def header_user() -> Any:
    return g.get("api_user")


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", SECRET_KEY="test", TESTING=True,
                      WTF_CSRF_ENABLED=False, RBAC_DEFAULT_PLAN="enterprise")
    db.init_app(app)
    rbac.init_app(app)

    @app.before_request
    def sign_in_from_header() -> None:
        email = request.headers.get("X-User")
        if email:
            g.api_user = db.session.scalar(sa.select(Account).where(Account.email == email))

    @app.get("/posts")
    @require_permission("posts.view")
    def posts() -> Any:
        return jsonify(sorted(p.title for p in db.session.scalars(sa.select(Post))))

    return app


@pytest.fixture
def host() -> Iterator[Flask]:
    app = create_app()
    app.test_client_class = FreshContextClient  # each request its own g
    with app.app_context():
        db.create_all()
        owner = Account(email="owner@host.test", name="Owner")
        member = Account(email="member@host.test", name="Member")
        db.session.add_all([owner, member])
        db.session.flush()
        with rbac.system():
            ws = workspaces.create_workspace(rbac, "Host", owner=owner)
            workspaces.add_member(rbac, ws, member, ["member"])
            db.session.add_all([Post(title="by owner", workspace_id=ws.id, owner_id=owner.id),
                                Post(title="by member", workspace_id=ws.id, owner_id=member.id)])
            db.session.commit()
        yield app
        db.session.remove()
        db.drop_all()


def test_the_getters_user_is_filtered_like_any_member(host: Flask) -> None:
    client = host.test_client()
    assert client.get("/posts", headers={"X-User": "owner@host.test"}).json == [
        "by member", "by owner"]
    assert client.get("/posts", headers={"X-User": "member@host.test"}).json == ["by member"]


def test_an_anonymous_request_is_refused_without_flask_login(host: Flask) -> None:
    client = host.test_client()
    response = client.get("/posts", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert client.get("/settings/roles").status_code == 401
    assert client.get("/api/v1/roles").status_code == 401


def test_the_plugins_own_pages_serve_the_getters_user(host: Flask) -> None:
    client = host.test_client()
    assert client.get("/settings/roles", headers={"X-User": "owner@host.test"}).status_code == 200
    answer = client.get("/api/v1/roles", headers={"X-User": "owner@host.test"})
    assert answer.status_code == 200 and answer.json
    assert client.get("/settings/roles", headers={"X-User": "member@host.test"}).status_code == 403


def test_an_invitation_is_accepted_without_flask_login(host: Flask) -> None:
    """The plugin cannot sign the new member in: it says so, and the host signs them in."""
    with host.test_request_context():
        owner = db.session.scalar(sa.select(Account).where(Account.email == "owner@host.test"))
        ws = db.session.scalar(sa.select(rbac.models.Workspace))
        with rbac.system():
            membership = team.membership_of(rbac, ws.id, owner.id)
            access = rbac.access_for(membership)
            viewer = workspaces.role_by_key(rbac, ws, "viewer")
            _, token = team.invite(rbac, access, "new@host.test", [viewer], send=False)
            db.session.commit()
    client = host.test_client()
    assert client.get(f"/settings/invitations/{token}").status_code == 200
    answer = client.post(f"/settings/invitations/{token}",
                         data={"name": "New Person", "password": "a long passphrase",
                               "confirm": "a long passphrase"})
    assert answer.status_code == 302
    with client.session_transaction() as session:
        assert "sign in to continue" in str(session.get("_flashes"))
    answer = client.get("/posts", headers={"X-User": "new@host.test"})
    assert answer.status_code == 200 and answer.json == ["by member", "by owner"]
