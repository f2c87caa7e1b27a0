"""Adopting the plugin in an existing app: single-tenant mode, ``flask rbac adopt``,
the sign-up role, the workspace switcher and the workspace column mixin.

Two small hosts, each with its own ``SQLAlchemy()`` and ``RBAC``:

* ``solo``: single-tenant, its ``Note`` model has no workspace column;
* ``multi``: multi-tenant, its ``Deal`` model takes ``workspace_id`` from
  :class:`~crm_rbac_plugin.mixins.WorkspaceMixin`; its rows start with a
  NULL workspace, as in an app that just installed the plugin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import jinja2
import pytest
import sqlalchemy as sa
from flask import Flask, jsonify, render_template_string, request
from flask_login import LoginManager, UserMixin, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_rbac_plugin import (
    RBAC,
    ConfigurationError,
    WorkspaceMixin,
    adoption,
    require_permission,
    sharing,
    workspaces,
)
from crm_rbac_plugin.errors import RBACError, ValidationError
from crm_rbac_plugin.mixins import form_excluded
from tests.conftest import FreshContextClient

# -- the single-tenant host ---------------------------------------------------------


class SoloBase(DeclarativeBase):
    pass


solo_db = SQLAlchemy(model_class=SoloBase)


class SoloUser(UserMixin, solo_db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "solo_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")


class Note(solo_db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("solo_user.id"))


solo_rbac = RBAC(db=solo_db, user_model=SoloUser)
solo_rbac.register_resource("notes", Note, module="content", workspace=None)


def add_views(app: Flask, db: SQLAlchemy, model: type, name: str, users: type) -> None:
    """Add list, create, edit and sign-in routes for ``model`` to ``app``."""
    login = LoginManager(app)
    login.user_loader(lambda uid: db.session.get(users, int(uid)))

    @app.get(f"/{name}")
    @require_permission(f"{name}.view")
    def index() -> Any:
        return jsonify(sorted(r.title for r in db.session.scalars(sa.select(model))))

    @app.post(f"/{name}")
    @require_permission(f"{name}.create")
    def create() -> Any:
        db.session.add(model(title=request.form["title"]))
        db.session.commit()
        return "", 201

    @app.post(f"/{name}/<int:rid>")
    def edit(rid: int) -> Any:
        record = db.session.get(model, rid)
        if record is None:
            return "", 404
        record.title = request.form["title"]
        db.session.commit()
        return "", 204

    @app.post("/login/<int:uid>")
    def sign_in(uid: int) -> Any:
        login_user(db.session.get(users, uid))
        return "", 204

    @app.get("/switcher")
    def switcher() -> Any:
        return render_template_string(
            '{% from "rbac/macros/workspace_switcher.html" import workspace_switcher %}'
            '{{ workspace_switcher(next="/deals") }}')


def make_host(db: SQLAlchemy, rbac: RBAC, model: type, name: str, users: type,
              **config: Any) -> Flask:
    app = Flask(__name__)
    app.config.update({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "test",
                       "TESTING": True, "WTF_CSRF_ENABLED": False, **config})
    db.init_app(app)
    rbac.init_app(app)
    add_views(app, db, model, name, users)
    app.jinja_env.undefined = jinja2.StrictUndefined
    app.test_client_class = FreshContextClient
    return app


@pytest.fixture
def solo() -> Iterator[Flask]:
    app = make_host(solo_db, solo_rbac, Note, "notes", SoloUser, RBAC_SINGLE_TENANT=True,
                    RBAC_SIGNUP_ROLE="member")
    with app.app_context():
        solo_db.create_all()
        users = [SoloUser(email=f"{n}@solo.test", name=n) for n in ("ann", "bob", "new")]
        solo_db.session.add_all(users)
        solo_db.session.flush()
        with solo_rbac.system():  # the host's rows from before the plugin
            solo_db.session.add_all([Note(title="ann's", owner_id=users[0].id),
                                     Note(title="bob's", owner_id=users[1].id)])
            solo_db.session.commit()
        yield app
        solo_db.session.remove()
        solo_db.drop_all()
        solo_db.engine.dispose()


def solo_user(email: str) -> Any:
    return solo_db.session.scalar(sa.select(SoloUser).where(SoloUser.email == email))


def test_single_tenant_end_to_end(solo: Flask) -> None:
    """Adopted without a workspace column: members see and change their own rows only."""
    result = solo.test_cli_runner().invoke(args=["rbac", "adopt", "--owner", "ann@solo.test",
                                                 "--role", "member"])
    assert result.exit_code == 0, result.output
    assert "Make ann@solo.test its Owner" in result.output
    assert "Add 2 existing user(s) as members" in result.output
    ann, bob = solo_user("ann@solo.test"), solo_user("bob@solo.test")
    owner = solo.test_client(user=ann)
    member = solo.test_client(user=bob)
    assert owner.get("/notes").json == ["ann's", "bob's"]
    assert member.get("/notes").json == ["bob's"]
    assert member.post("/notes", data={"title": "bob's second"}).status_code == 201
    with solo_rbac.system():
        created = solo_db.session.scalar(sa.select(Note).where(Note.title == "bob's second"))
        anns = solo_db.session.scalar(sa.select(Note).where(Note.title == "ann's"))
    assert created.owner_id == bob.id  # filled by the write guard, with no workspace to fill
    assert member.post(f"/notes/{created.id}", data={"title": "renamed"}).status_code == 204
    assert member.post(f"/notes/{anns.id}", data={"title": "stolen"}).status_code == 404
    assert member.get("/notes").json == ["bob's", "renamed"]
    assert owner.get("/switcher").text.strip() == ""  # no switcher in single-tenant mode
    assert owner.post("/settings/workspace", data={"workspace_id": 1}).status_code == 404


@pytest.mark.parametrize("role", ["owner", "admin", "member", "viewer"])
def test_single_tenant_policy_and_filter_agree(solo: Flask, role: str) -> None:
    """Without a workspace column, ``rbac.can`` and the filtered select still agree."""
    with solo_rbac.system():
        ws = workspaces.create_workspace(solo_rbac, "Default", slug="default")
        bob = solo_user("bob@solo.test")
        membership = workspaces.add_member(solo_rbac, ws, bob, [role])
        solo_db.session.add(Note(title="nobody's", owner_id=None))
        solo_db.session.commit()
        notes = solo_db.session.scalars(sa.select(Note)).all()
    access = solo_rbac.access_for(membership)
    assert access is not None
    for action in ("view", "edit", "delete", "export"):
        with solo_rbac.as_member(access):
            allowed = {n.id for n in solo_db.session.scalars(
                sa.select(Note).execution_options(rbac_action=action))}
        with solo.test_request_context():
            decided = {n.id for n in notes if solo_rbac.can(action, "notes", n, access=access)}
        assert allowed == decided, (role, action)
        if action == "view":
            titles = {n.title for n in notes if n.id in allowed}
            assert titles == ({"bob's", "nobody's"} if role == "member"
                              else {"ann's", "bob's", "nobody's"})


def test_single_tenant_refuses_sharing(solo: Flask) -> None:
    with solo.test_request_context():
        with pytest.raises(ValidationError, match="single-tenant"):
            sharing.create_agreement(solo_rbac, None, workspace="other", permissions=[])


def test_signup_role_on_first_sign_in(solo: Flask) -> None:
    """A user with no membership gets RBAC_SIGNUP_ROLE in the one workspace, and only it."""
    new = solo_user("new@solo.test")
    client = solo.test_client()
    assert client.post(f"/login/{new.id}").status_code == 204
    memberships = solo_db.session.scalars(sa.select(solo_rbac.models.Membership)).all()
    assert [m.user_id for m in memberships] == [new.id]
    assert [mr.role.key for mr in memberships[0].member_roles] == ["member"]
    assert memberships[0].workspace.slug == "default"  # created on demand
    assert client.get("/notes").json == []  # a member sees only their own notes
    client.post(f"/login/{new.id}")  # a second sign-in adds nothing
    assert solo_db.session.scalar(sa.select(sa.func.count(solo_rbac.models.Membership.id))) == 1


def test_enroll_refuses_privileged_roles(solo: Flask) -> None:
    with solo.test_request_context(), pytest.raises(RBACError, match="privileged"):
        adoption.enroll(solo_rbac, solo_user("new@solo.test"), role="admin")


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_signup_role_config_refuses_privileged(role: str) -> None:
    db = SQLAlchemy(model_class=type("B", (DeclarativeBase,), {}))

    class U(db.Model):  # type: ignore[name-defined,misc]
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(120))

    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI="sqlite://", RBAC_SIGNUP_ROLE=role)
    db.init_app(app)
    with pytest.raises(ConfigurationError, match="privileged"):
        RBAC(app, db=db, user_model=U)


# -- the multi-tenant host ------------------------------------------------------------


class MultiBase(DeclarativeBase):
    pass


multi_db = SQLAlchemy(model_class=MultiBase)


class Person(UserMixin, multi_db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")


class Deal(WorkspaceMixin, multi_db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(sa.String(120))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("person.id"))


multi_rbac = RBAC(db=multi_db, user_model=Person)
multi_rbac.register_resource("deals", Deal, module="sales")

ROWS = 25  # more than the batch size used below


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_uri(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("pg_url")) if request.param == "postgresql" else "sqlite://"


@pytest.fixture
def multi(database_uri: str) -> Iterator[Flask]:
    app = make_host(multi_db, multi_rbac, Deal, "deals", Person,
                    SQLALCHEMY_DATABASE_URI=database_uri)
    with app.app_context():
        multi_db.create_all()
        people = [Person(email=f"{n}@multi.test", name=n) for n in ("olga", "pat", "quinn")]
        multi_db.session.add_all(people)
        multi_db.session.flush()
        with multi_rbac.system():  # the host's rows from before the plugin
            multi_db.session.add_all([Deal(title=f"deal {i:02}", owner_id=people[i % 3].id)
                                      for i in range(ROWS)])
            multi_db.session.commit()
        yield app
        multi_db.session.remove()
        multi_db.drop_all()
        multi_db.engine.dispose()


def adopt_cli(app: Flask, *args: str) -> Any:
    return app.test_cli_runner().invoke(args=["rbac", "adopt", *args])


def null_deals() -> int:
    with multi_rbac.system():
        return int(multi_db.session.scalar(
            sa.select(sa.func.count()).select_from(Deal.__table__)
            .where(Deal.__table__.c.workspace_id.is_(None))))


def test_fresh_install_sees_nothing(multi: Flask) -> None:
    """What the adopter reported: before adoption every list is empty (fail closed)."""
    olga = multi_db.session.scalar(sa.select(Person).where(Person.email == "olga@multi.test"))
    assert multi.test_client(user=olga).get("/deals").status_code == 403


def test_adopt_dry_run_changes_nothing(multi: Flask) -> None:
    result = adopt_cli(multi, "--owner", "olga@multi.test", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run" in result.output
    assert "Would create workspace 'default'" in result.output
    assert "Would add 2 existing user(s)" in result.output
    assert f"Would set the workspace of {ROWS} deals row(s)" in result.output
    assert multi_db.session.scalar(sa.select(sa.func.count(multi_rbac.models.Workspace.id))) == 0
    assert null_deals() == ROWS


def test_adopt_backfills_in_batches_and_is_idempotent(multi: Flask) -> None:
    statements: list[str] = []

    def note(conn: Any, cursor: Any, sql: str, *rest: Any) -> None:
        if sql.startswith("UPDATE deal"):
            statements.append(sql)

    sa.event.listen(multi_db.engine, "before_cursor_execute", note)
    try:
        result = adopt_cli(multi, "--owner", "olga@multi.test", "--batch", "10")
    finally:
        sa.event.remove(multi_db.engine, "before_cursor_execute", note)
    assert result.exit_code == 0, result.output
    assert "Backfilling deals" in result.output  # the progress bar's label
    assert len(statements) == 3  # 25 rows, 10 per UPDATE
    assert null_deals() == 0
    ws = adoption.default_workspace(multi_rbac)
    assert ws is not None and adoption.has_owner(multi_rbac, ws)
    M = multi_rbac.models.Membership
    roles = {m.user.email: sorted(mr.role.key for mr in m.member_roles)
             for m in multi_db.session.scalars(sa.select(M))}
    assert roles == {"olga@multi.test": ["owner"], "pat@multi.test": ["member"],
                     "quinn@multi.test": ["member"]}
    A = multi_rbac.models.AuditEvent
    events = multi_db.session.scalars(sa.select(A).where(A.action == "adopt")).all()
    assert len(events) == 1 and events[0].detail["backfilled"] == {"deals": ROWS}

    again = adopt_cli(multi)  # the workspace has an Owner now: --owner is optional
    assert again.exit_code == 0, again.output
    assert "Nothing to do" in again.output
    assert len(multi_db.session.scalars(sa.select(A).where(A.action == "adopt")).all()) == 1

    pat = multi_db.session.scalar(sa.select(Person).where(Person.email == "pat@multi.test"))
    assert len(multi.test_client(user=pat).get("/deals").json) == 8  # own rows: 1, 4, ... 22


@pytest.mark.parametrize(("args", "message"), [
    (["--owner", "nobody@multi.test"], "no user with email 'nobody@multi.test'"),
    (["--owner", "olga@multi.test", "--role", "boss"], "unknown role 'boss'"),
    (["--owner", "olga@multi.test", "--role", "owner"], "cannot all become Owners"),
    ([], "has no Owner yet; name one with --owner"),
])
def test_adopt_errors(multi: Flask, args: list[str], message: str) -> None:
    result = adopt_cli(multi, *args)
    assert result.exit_code == 1
    assert message in result.output
    assert null_deals() == ROWS


def test_adopt_from_python(multi: Flask) -> None:
    seen: list[tuple[str, int]] = []

    class Bar:
        def __init__(self, label: str, total: int) -> None:
            self.label = label

        def __enter__(self) -> Any:
            return lambda rows: seen.append((self.label, rows))

        def __exit__(self, *exc: Any) -> None:
            return None

    report = adoption.adopt(multi_rbac, workspace="acme", name="Acme", owner="OLGA@multi.test",
                            batch=20, progress=Bar)
    assert report.workspace_created and report.members_added == 2
    assert seen == [("deals", 20), ("deals", 5)]
    assert adoption.default_workspace(multi_rbac, "acme").name == "Acme"


class Loose(multi_db.Model):  # type: ignore[name-defined,misc]
    """A model without a workspace column, which multi-tenant mode refuses to protect."""

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_id: Mapped[int | None] = mapped_column()


def test_workspace_none_refused_in_multi_tenant_mode(multi: Flask) -> None:
    with pytest.raises(ConfigurationError, match=r"'loose'.*RBAC_SINGLE_TENANT = True"):
        multi_rbac.register_resource("loose", Loose, workspace=None)
    assert "loose" not in multi_rbac.registry


def test_workspace_none_refused_at_init_app() -> None:
    db = SQLAlchemy(model_class=type("B", (DeclarativeBase,), {}))

    class U(db.Model):  # type: ignore[name-defined,misc]
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str] = mapped_column(sa.String(120))

    class Item(db.Model):  # type: ignore[name-defined,misc]
        id: Mapped[int] = mapped_column(primary_key=True)
        owner_id: Mapped[int | None] = mapped_column()

    rbac = RBAC(db=db, user_model=U)
    rbac.register_resource("items", Item, workspace=None)
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db.init_app(app)
    with pytest.raises(ConfigurationError, match=r"resource 'items' is registered with workspace=None"):
        rbac.init_app(app)


# -- the workspace switcher -------------------------------------------------------


@pytest.fixture
def two_workspaces(multi: Flask) -> dict[str, Any]:
    people = {p.name: p for p in multi_db.session.scalars(sa.select(Person))}
    with multi_rbac.system():
        first = workspaces.create_workspace(multi_rbac, "First", owner=people["olga"])
        second = workspaces.create_workspace(multi_rbac, "Second", owner=people["olga"])
        third = workspaces.create_workspace(multi_rbac, "Third", owner=people["pat"])
        multi_db.session.commit()
    return {"olga": people["olga"], "first": first.id, "second": second.id, "third": third.id}


def test_switcher_macro_lists_active_memberships(multi: Flask, two_workspaces: dict[str, Any]) -> None:
    client = multi.test_client(user=two_workspaces["olga"])
    page = client.get("/switcher").text
    assert re.findall(r'name="workspace_id" value="(\d+)"', page) == [
        str(two_workspaces["first"]), str(two_workspaces["second"])]
    assert 'aria-current="true">First<' in page and 'name="next" value="/deals"' in page


def test_switch_workspace(multi: Flask, two_workspaces: dict[str, Any]) -> None:
    client = multi.test_client(user=two_workspaces["olga"])
    response = client.post("/settings/workspace",
                           data={"workspace_id": two_workspaces["second"], "next": "/deals"})
    assert response.status_code == 302 and response.location == "/deals"
    with client.session_transaction() as sess:
        assert sess["rbac_workspace_id"] == two_workspaces["second"]


@pytest.mark.parametrize("target", ["third", "missing", "garbage"])
def test_switch_workspace_refused(multi: Flask, two_workspaces: dict[str, Any],
                                  target: str) -> None:
    client = multi.test_client(user=two_workspaces["olga"])
    value = {"third": two_workspaces["third"], "missing": 99999, "garbage": "x"}[target]
    response = client.post("/settings/workspace", data={"workspace_id": value})
    assert response.status_code == 403
    assert "not an active member" in response.text
    with client.session_transaction() as sess:
        assert "rbac_workspace_id" not in sess


def test_switch_workspace_needs_csrf(multi: Flask, two_workspaces: dict[str, Any]) -> None:
    multi.config["WTF_CSRF_ENABLED"] = True
    client = multi.test_client(user=two_workspaces["olga"])
    response = client.post("/settings/workspace", data={"workspace_id": two_workspaces["second"]})
    assert response.status_code == 400
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/switcher").text)
    assert token is not None
    response = client.post("/settings/workspace", data={
        "workspace_id": two_workspaces["second"], "csrf_token": token.group(1)})
    assert response.status_code == 302


def test_switch_workspace_anonymous(multi: Flask) -> None:
    assert multi.test_client().post("/settings/workspace", data={"workspace_id": 1}
                                    ).status_code == 401


# -- the mixin ----------------------------------------------------------------------


def test_workspace_mixin_column(multi: Flask) -> None:
    column = Deal.__table__.c.workspace_id
    assert column.index and column.nullable
    (fk,) = column.foreign_keys
    assert fk.target_fullname == "rbac_workspace.id"
    assert fk.constraint.name == "fk_deal_workspace_id"
    assert form_excluded(Deal) == {"workspace_id"}
    assert multi_rbac.registry.for_model(Deal).workspace_column == "workspace_id"
