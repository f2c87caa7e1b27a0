"""Shared fixtures: the app on SQLite and on a real PostgreSQL, and a seeded world.

``app`` is parametrised over both backends wherever a test uses it. The
PostgreSQL server is started once per session by :mod:`tests.pgserver`
(as the ``postgres`` OS user, since ``initdb`` refuses root) and each test
module gets a database of its own; tables are emptied after every test.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_login import FlaskLoginClient
from werkzeug.routing import Rule
from werkzeug.security import generate_password_hash

from crm_app import create_app
from crm_app.extensions import db
from crm_app.models import Client, Deal, Lead, Note, Task, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from tests import world_rows
from tests.pgserver import PostgresServer, pg_available, pg_disabled

pytest_plugins = ["tests.battery_stats"]

_db_counter = itertools.count(1)

BACKENDS = ["sqlite", "postgresql"]


def _share_url_builders() -> None:
    """Compile each URL rule's builder once per test run, not once per app.

    Werkzeug compiles two Python functions per rule as an app adds it (an
    AST, then ``compile()``): about 80 ms for the demo's 320 rules, most of
    what the fresh app of every test costs. For a rule without defaults the
    builder depends only on the rule's text, its parsed trace and
    ``append_unknown``; it takes the rule as its first argument. So such
    rules share it across the test run's apps, and a rule with defaults
    compiles as Werkzeug does. Without the private method (another Werkzeug),
    nothing changes.
    """
    compile_builder = getattr(Rule, "_compile_builder", None)
    if compile_builder is None:
        return
    builders: dict[tuple[Any, ...], Any] = {}

    def shared(self: Rule, append_unknown: bool = True) -> Any:
        if self.defaults:
            return compile_builder(self, append_unknown)
        key = (self.rule, tuple(self._trace), append_unknown)
        builder = builders.get(key)
        if builder is None:
            builder = builders[key] = compile_builder(self, append_unknown)
        return builder

    Rule._compile_builder = shared  # type: ignore[method-assign]


_share_url_builders()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server per test session (or RBAC_TEST_PG_URL)."""
    if pg_disabled():
        pytest.skip("PostgreSQL disabled by RBAC_TEST_NO_PG=1")
    if not pg_available():
        reason = "PostgreSQL server binaries or the 'postgres' OS user are missing"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL unavailable in CI: {reason}")
        pytest.skip(reason)
    with PostgresServer() as pg:
        yield pg


@pytest.fixture(scope="module")
def pg_url(pg_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh, empty database for the current test module."""
    stem = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.rsplit(".", 1)[-1].lower())[:40]
    name = f"t{os.getpid()}_{next(_db_counter)}_{stem}"[:63]
    url = pg_server.create_database(name)
    yield url
    pg_server.drop_database(name)


@pytest.fixture(scope="module")
def pg_icu_url(pg_server: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """URL of a fresh database for the module that collates text by ICU ``en-US``.

    The session's server sorts text in code point order (C), the order
    Python's ``str`` comparison uses; this database does not (``'Mango' <
    'apple'`` is false in it), so tests of text ordering see the difference.
    """
    stem = re.sub(r"[^a-z0-9_]", "_", request.module.__name__.rsplit(".", 1)[-1].lower())[:36]
    name = f"t{os.getpid()}_{next(_db_counter)}_icu_{stem}"[:63]
    try:
        url = pg_server.create_database(name, icu_locale="en-US")
    except sa.exc.DBAPIError as exc:  # a server built without ICU (RBAC_TEST_PG_URL)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL cannot create an ICU database in CI: {exc}")
        pytest.skip(f"PostgreSQL cannot create an ICU en-US database: {exc}")
    yield url
    pg_server.drop_database(name)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        request.node.add_marker(pytest.mark.postgres)
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """PostgreSQL's test database; on SQLite an in-memory database (one connection), or
    a file of the test's own for a module marked ``sqlite_file``: racing threads get
    two connections and one write lock there."""
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    if request.node.get_closest_marker("sqlite_file") is not None:
        return f"sqlite:///{request.getfixturevalue('tmp_path') / 'test.db'}"
    return "sqlite://"


class FreshContextClient(FlaskLoginClient):
    """A test client that runs every request in its own app context.

    The ``app`` fixture keeps one app context open for the whole test, and
    Flask reuses an open context for a request: requests would then share
    ``g`` and ``db.session``, so Flask-Login's cached user and the plugin's
    per-request access would leak from one request, or one logged-in client,
    to the next. A server gives each request a fresh context; so does this.
    """

    def run_wsgi_app(self, environ: Any, buffered: bool = False) -> Any:
        with self.application.app_context():
            # Buffered: a streamed body (a CSV export) is read inside the context.
            return super().run_wsgi_app(environ, buffered=True)


def make_app(database_url: str, **config: Any) -> Flask:
    app = create_app({
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "test",
        "SERVER_NAME": "crm.test",
        **config,
    })
    app.jinja_env.undefined = jinja2.StrictUndefined
    app.test_client_class = FreshContextClient
    return app


def empty_tables() -> None:
    """Remove every row and restart every used sequence, keeping the schema.

    On PostgreSQL only the tables that hold rows are emptied, with DELETE,
    and only the sequences that moved are restarted: a TRUNCATE of every
    table rewrites each table's and index's files and costs about 0.13 s,
    which a test would pay for the dozen tables it wrote to.
    """
    engine = db.engine
    tables = db.metadata.sorted_tables
    with engine.begin() as conn:
        if engine.dialect.name != "postgresql":
            for table in reversed(tables):
                conn.execute(table.delete())
            return
        full = world_rows.holding_rows(conn)
        # Foreign keys need no checking when every referencing row goes too.
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        for table, has_rows in reversed(list(zip(tables, full, strict=True))):
            if has_rows:
                conn.execute(table.delete())
        conn.execute(sa.text(
            "SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), "
            "start_value, false) FROM pg_sequences WHERE last_value IS NOT NULL"))


@contextlib.contextmanager
def app_with_tables(database_url: str, **config: Any) -> Iterator[Flask]:
    """The demo app in an open app context with its tables, emptied afterwards."""
    app = make_app(database_url, **config)
    with app.app_context():
        db.create_all()
        try:
            yield app
        finally:
            db.session.rollback()
            db.session.remove()
            empty_tables()
            db.engine.dispose()


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    with app_with_tables(database_url) as app:
        yield app


def build_world() -> SimpleNamespace:
    """Two workspaces, one member per built-in role, and records spread over them.

    Names: ``w.users[key]``, ``w.members[key]`` (memberships in ``w.ws``),
    ``w.leads[name]`` etc. ``mgr`` manages ``mem``; ``mem`` and ``mem2`` are
    in the Sales department with ``mgr``. ``dual`` is Owner of ``w.ws2``
    and Viewer of ``w.ws``.
    """
    m = rbac.models
    keys = ["owner", "admin", "manager", "member", "member2", "viewer", "finance",
            "junior_rep", "client_success", "dual", "outsider"]
    users = {k: User(email=f"{k}@example.test", name=k.replace("_", " ").title()) for k in keys}
    # A cheap hash: the real default (scrypt) would cost ~1 s per world.
    cheap = generate_password_hash("password", method="pbkdf2:sha256:1")
    for u in users.values():
        u.password_hash = cheap
    db.session.add_all(users.values())
    db.session.flush()
    ws = workspaces.create_workspace(rbac, "Acme Sales", owner=users["owner"], slug="acme")
    ws2 = workspaces.create_workspace(rbac, "Beta Education", owner=users["dual"], slug="beta")
    sales = m.Department(workspace=ws, name="Sales")
    support = m.Department(workspace=ws, name="Support")
    db.session.add_all([sales, support])
    db.session.flush()
    members = {"owner": db.session.scalar(sa.select(m.Membership).where(
        m.Membership.user_id == users["owner"].id))}
    for key, role, dept in [
        ("admin", "admin", None), ("manager", "manager", sales), ("member", "member", sales),
        ("member2", "member", sales), ("viewer", "viewer", support),
        ("finance", "finance", None), ("junior_rep", "junior_rep", sales),
        ("client_success", "client_success", support), ("dual", "viewer", None),
    ]:
        members[key] = workspaces.add_member(rbac, ws, users[key], [role], department=dept)
    workspaces.add_member(rbac, ws2, users["outsider"], ["member"])
    db.session.add(m.ManagerAssignment(manager_id=members["manager"].id,
                                       member_id=members["member"].id))
    db.session.commit()

    with rbac.system():
        owners = ["member", "member2", "manager", "junior_rep", None]
        clients, leads, deals, tasks, notes = {}, {}, {}, {}, {}
        for i, key in enumerate(owners):
            uid = users[key].id if key else None
            tag = key or "unowned"
            clients[tag] = Client(workspace_id=ws.id, owner_id=uid, name=f"Client of {tag}",
                                  region="north" if i % 2 else "south")
            leads[tag] = Lead(workspace_id=ws.id, owner_id=uid, name=f"Lead of {tag}")
            db.session.add_all([clients[tag], leads[tag]])
            for stage in ("new", "won"):
                deals[f"{tag}-{stage}"] = Deal(workspace_id=ws.id, owner_id=uid, stage=stage,
                                               title=f"{stage} deal of {tag}", amount=1000 + i)
                db.session.add(deals[f"{tag}-{stage}"])
        db.session.flush()
        for tag, client in clients.items():
            # Each client has a task owned by member2 (parent inheritance) ...
            tasks[f"on-{tag}"] = Task(workspace_id=ws.id, owner_id=users["member2"].id,
                                      client_id=client.id, title=f"Call {client.name}")
            notes[f"on-{tag}"] = Note(workspace_id=ws.id, owner_id=users["member2"].id,
                                      client_id=client.id, body=f"Note on {client.name}")
        # ... and there are stand-alone tasks.
        tasks["loose-member"] = Task(workspace_id=ws.id, owner_id=users["member"].id,
                                     title="Loose task of member")
        tasks["loose-member2"] = Task(workspace_id=ws.id, owner_id=users["member2"].id,
                                      title="Loose task of member2")
        other = {
            "lead": Lead(workspace_id=ws2.id, owner_id=users["outsider"].id, name="Beta lead"),
            "client": Client(workspace_id=ws2.id, owner_id=users["dual"].id, name="Beta client"),
        }
        db.session.add_all([*tasks.values(), *notes.values(), *other.values()])
        db.session.commit()
    return SimpleNamespace(ws=ws, ws2=ws2, users=users, members=members, clients=clients,
                           leads=leads, deals=deals, tasks=tasks, notes=notes, other=other,
                           departments={"sales": sales, "support": support})


@pytest.fixture
def world(app: Flask) -> SimpleNamespace:
    """:func:`build_world`'s world; after the first build in this process, the same rows
    written back (:mod:`tests.world_rows`) when the tables are empty and the app is
    configured as it was."""
    if not world_rows.is_empty():
        return build_world()
    kept = world_rows.kept(app)
    if kept is not None:
        return world_rows.restore(kept)
    built = build_world()
    world_rows.take(app, built)
    return built


@pytest.fixture
def login(app: Flask) -> Any:
    """Return a function giving a test client logged in as a user, in a workspace."""
    def make(user: User, workspace: Any = None) -> FlaskClient:
        client = app.test_client(user=user)
        if workspace is not None:
            with client.session_transaction() as sess:
                sess[app.config["RBAC_SESSION_KEY"]] = workspace.id
        return client
    return make


@pytest.fixture
def store(app: Flask, tmp_path: Path) -> Path:
    """Keep the attachments' stored bytes under the test's temporary directory."""
    app.config["RBAC_FILES_DIR"] = str(tmp_path / "files")
    return tmp_path / "files"
