"""A resource without an owner column takes only the ``all`` scope.

Own, team and department pick records by their owner. On a resource
registered with ``owner=None`` (tags here) no record is anyone's, so:

- saving a role refuses those scopes (service, API, settings page), naming the cell;
- the built-in templates skip them (the Member's ``own`` grants give no access to tags);
- a grant stored past the service with such a scope matches no record, in the
  policy and in the SQL filter alike, and allows nothing at resource level.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, g, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_rbac_plugin import RBAC, Access, roles, workspaces
from crm_rbac_plugin.defaults import ROLE_TEMPLATES, expand_grants
from crm_rbac_plugin.errors import RBACError, ValidationError
from crm_rbac_plugin.oversight import viewas
from crm_rbac_plugin.registry import SCOPES
from tests.conftest import FreshContextClient


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Account(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    is_authenticated = True


class Note(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    workspace_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rbac_workspace.id"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account.id"))


class Tag(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(sa.String(60))
    workspace_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rbac_workspace.id"))


rbac = RBAC(db=db, user_model=Account)
rbac.register_resource("notes", Note, module="content")
rbac.register_resource("tags", Tag, module="content", owner=None)


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

    return app


@pytest.fixture
def host() -> Iterator[Flask]:
    app = create_app()
    app.test_client_class = FreshContextClient
    with app.app_context():
        db.create_all()
        owner = Account(email="owner@host.test", name="Owner")
        member = Account(email="member@host.test", name="Member")
        viewer = Account(email="viewer@host.test", name="Viewer")
        db.session.add_all([owner, member, viewer])
        db.session.flush()
        with rbac.system():
            ws = workspaces.create_workspace(rbac, "Host", owner=owner)
            workspaces.add_member(rbac, ws, member, ["member"])
            workspaces.add_member(rbac, ws, viewer, ["viewer"])
            db.session.add_all([Tag(label="hot", workspace_id=ws.id),
                                Tag(label="cold", workspace_id=ws.id),
                                Note(title="mine", workspace_id=ws.id, owner_id=member.id)])
            db.session.commit()
        yield app
        db.session.remove()
        db.drop_all()


def membership(email: str) -> Any:
    user = db.session.scalar(sa.select(Account).where(Account.email == email))
    return db.session.scalar(sa.select(rbac.models.Membership).filter_by(user_id=user.id))


def tag_ids(email: str, action: str = "view") -> tuple[set[int], set[int], bool]:
    """Tags ``email`` may ``action``: by the policy, by the SQL filter, and at resource level."""
    with rbac.system():
        tags = list(db.session.scalars(sa.select(Tag)))
        member = membership(email)
    with rbac.as_member(member) as access:
        by_policy = {t.id for t in tags if rbac.can(action, "tags", t, access=access)}
        stmt = sa.select(Tag).execution_options(rbac_action=action)
        by_filter = {t.id for t in db.session.scalars(stmt)}
        resource_level = rbac.can(action, "tags", access=access)
    return by_policy, by_filter, resource_level


def test_the_resource_takes_only_the_all_scope() -> None:
    assert rbac.registry.get("tags").scopes == ("all",)
    assert rbac.registry.get("notes").scopes == SCOPES
    assert rbac.registry.get("members").scopes == SCOPES  # no records: scopes are moot


def test_templates_skip_owner_scopes_on_a_resource_without_owners() -> None:
    by_key = {tpl["key"]: tpl for tpl in ROLE_TEMPLATES}
    member = expand_grants(rbac.registry, by_key["member"])
    assert not [g for g in member if g[0] == "tags"]
    assert ("notes", "delete", "own", None) in member
    viewer = expand_grants(rbac.registry, by_key["viewer"])
    assert ("tags", "view", "all", None) in viewer


def test_the_built_in_member_reaches_no_tag_and_the_viewer_every_tag(host: Flask) -> None:
    for action in ("view", "edit", "delete"):
        assert tag_ids("member@host.test", action) == (set(), set(), False)
    with rbac.system():
        every = set(db.session.scalars(sa.select(Tag.id)))
    assert tag_ids("viewer@host.test") == (every, every, True)


@pytest.mark.parametrize("scope", ["own", "team", "department"])
def test_the_service_refuses_an_owner_scope_naming_the_cell(host: Flask, scope: str) -> None:
    with pytest.raises(ValidationError) as caught:
        roles.parse_grants(rbac, [{"resource": "tags", "action": "delete", "scope": scope}])
    assert caught.value.field == "permissions[0].scope"
    assert str(caught.value) == (f"tags.delete: scope {scope!r} needs an owner column; "
                                 "tags has none: use 'all' or no grant")
    with pytest.raises(ValidationError):
        roles.parse_grants(rbac, ["tags.delete"], {"tags": scope})
    with rbac.system(), pytest.raises(RBACError, match="needs an owner column"):
        role = db.session.scalar(sa.select(rbac.models.Role).filter_by(key="member"))
        workspaces.add_grant(rbac, role, "tags", "delete", scope)
    assert roles.parse_grants(rbac, [{"resource": "tags", "action": "delete", "scope": "all"}])


def test_the_api_answers_400_naming_the_cell(host: Flask) -> None:
    client = host.test_client()
    headers = {"X-User": "owner@host.test"}
    answer = client.post("/api/v1/roles", headers=headers, json={
        "name": "Tagger", "permissions": [{"resource": "tags", "action": "delete", "scope": "own"}]})
    assert answer.status_code == 400, answer.json
    assert "permissions[0].scope" in answer.text
    assert "scope 'own' needs an owner column; tags has none" in answer.text
    answer = client.post("/api/v1/roles", headers=headers, json={
        "name": "Tagger", "permissions": ["tags.delete"], "scopes": {"tags": "team"}})
    assert answer.status_code == 400
    assert client.post("/api/v1/roles", headers=headers, json={
        "name": "Tagger", "permissions": ["tags.view"]}).status_code == 201


def test_the_matrix_offers_all_or_none_for_tags_with_a_note(host: Flask) -> None:
    page = host.test_client().get("/settings/roles/new", headers={"X-User": "owner@host.test"})
    assert page.status_code == 200
    text = page.text
    tags_select = text[text.index('aria-label="Tags: delete scope"'):]
    tags_select = tags_select[:tags_select.index("</select>")]
    assert 'value="all"' in tags_select and 'value="own"' not in tags_select
    notes_select = text[text.index('aria-label="Notes: delete scope"'):]
    assert 'value="own"' in notes_select[:notes_select.index("</select>")]
    assert "no owner column" in text


@pytest.mark.parametrize("scope", ["own", "team", "department"])
@pytest.mark.parametrize("action", ["view", "delete"])
def test_a_stored_owner_scope_allows_nothing(host: Flask, scope: str, action: str) -> None:
    with rbac.system():
        role = db.session.scalar(sa.select(rbac.models.Role).filter_by(key="member"))
        for act in {"view", action}:
            role.grants.append(rbac.models.Grant(resource="tags", action=act, scope=scope,
                                                 effect="allow"))
        db.session.commit()
    assert tag_ids("member@host.test", action) == (set(), set(), False)


def test_a_stored_owner_scope_on_the_edit_page_shows_none(host: Flask) -> None:
    with rbac.system():
        role = db.session.scalar(sa.select(rbac.models.Role).filter_by(key="member"))
        role.grants.append(rbac.models.Grant(resource="tags", action="view", scope="own",
                                             effect="allow"))
        db.session.commit()
        role_id = role.id
    page = host.test_client().get(f"/settings/roles/{role_id}/edit",
                                  headers={"X-User": "owner@host.test"}).text
    tags_select = page[page.index('aria-label="Tags: view scope"'):]
    tags_select = tags_select[:tags_select.index("</select>")]
    assert 'selected value="all"' not in tags_select and 'value="all" selected' not in tags_select


@pytest.mark.parametrize("deny_scope", [None, *SCOPES])
@pytest.mark.parametrize("allow_scope", [None, *SCOPES])
def test_policy_and_filter_agree_on_stored_grants(host: Flask, allow_scope: str | None,
                                                  deny_scope: str | None) -> None:
    """Any stored mix of scopes: only an ``all`` allow reaches tags, only an ``all`` deny removes them."""
    with rbac.system():
        role = db.session.scalar(sa.select(rbac.models.Role).filter_by(key="member"))
        for scope, effect in ((allow_scope, "allow"), (deny_scope, "deny")):
            if scope is not None:
                role.grants.append(rbac.models.Grant(resource="tags", action="view", scope=scope,
                                                     effect=effect))
        db.session.commit()
        every = set(db.session.scalars(sa.select(Tag.id)))
    expected = every if allow_scope == "all" and deny_scope != "all" else set()
    by_policy, by_filter, _ = tag_ids("member@host.test")
    assert by_policy == by_filter == expected


def test_view_as_needs_all_to_cover_an_all_grant_on_tags() -> None:
    """Viewing as a member who sees every tag needs an ``all`` grant on tags oneself."""
    viewer = Access(workspace_id=1, user_id=1, membership_id=1)
    target = Access(workspace_id=1, user_id=2, membership_id=2)
    tags = rbac.registry.get("tags")
    assert viewas._needed_scope(viewer, target, tags, "all") == "all"
    for scope in ("own", "team", "department"):
        assert viewas._needed_scope(viewer, target, tags, scope) == "own"  # reaches no tag
