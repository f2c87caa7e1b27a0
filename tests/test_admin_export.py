"""Flask-Admin CSV exports, read as a real client reads them: over HTTP from a server thread.

The test client of the other tests buffers a streamed body inside the app
context, which hides a stream that breaks once the view has returned (the
request's session is gone, records expired by the audit commit). Here a
werkzeug server serves the app in a thread of its own and the test reads
each export over a socket, for every Flask-Admin view with export enabled,
on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import http.cookiejar
import inspect
import io
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.admin import RBACModelView
from tests.conftest import app_with_tables
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import role


class QuietHandler(WSGIRequestHandler):
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


@pytest.fixture
def app(database_url: str) -> Iterator[Flask]:
    """The demo app without SERVER_NAME, so that the server answers on 127.0.0.1."""
    with app_with_tables(database_url, SERVER_NAME=None) as app:
        yield app


@pytest.fixture
def served(app: Flask, world: SimpleNamespace) -> Iterator[SimpleNamespace]:
    """Serve the seeded ``app`` from a werkzeug server thread (none of the test's
    contexts there); yields its URL, the Owner's email and the workspace id."""
    with rbac.system():  # Finance exports deals without their amounts
        db.session.add(rbac.models.FieldRule(role=role(world, "finance"), resource="deals",
                                             field="amount", mode="hidden"))
        db.session.commit()
    seen = SimpleNamespace(owner=world.users["owner"].email, workspace_id=world.ws.id,
                           finance=world.users["finance"].email,
                           won={str(d.id) for d in world.deals.values() if d.stage == "won"})
    db.session.remove()  # the server's requests open sessions of their own
    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True,
                                         request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=f"http://127.0.0.1:{server.port}", **vars(seen))
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def signed_in(base_url: str, email: str) -> urllib.request.OpenerDirector:
    """An HTTP client with cookies, signed in through the login form."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = urllib.parse.urlencode({"email": email, "password": "password"}).encode()
    with opener.open(f"{base_url}/login", data=form, timeout=30) as response:
        assert "/login" not in response.url, "login failed"
    return opener


def export_views(app: Flask) -> list[RBACModelView]:
    """The Flask-Admin views of the app whose export is not switched off outright."""
    views = [v for admin in app.extensions["admin"] for v in admin._views]
    return [v for v in views if isinstance(v, RBACModelView)
            and isinstance(inspect.getattr_static(v, "can_export"), property)]


def expected_ids(view: RBACModelView, workspace_id: int) -> set[str]:
    model: Any = view.model
    with rbac.system():
        return {str(i) for i in db.session.scalars(
            sa.select(model.id).where(model.workspace_id == workspace_id))}


#: The resources whose export the served world fills with rows.
CORE = frozenset({"leads", "deals", "clients", "tasks"})


def test_every_admin_export_streams_every_row(app: Flask, served: SimpleNamespace) -> None:
    views = export_views(app)
    assert {v.resource for v in views} >= CORE
    owner = signed_in(served.url, served.owner)
    A = rbac.models.AuditEvent
    for view in views:
        url = f"{served.url}/admin/{view.url.strip('/').rsplit('/', 1)[-1]}/export/csv/"
        with owner.open(url, timeout=30) as response:
            assert response.status == 200 and response.headers.get_content_type() == "text/csv"
            body = response.read().decode()  # the whole stream, as a browser reads it
        rows = list(csv.reader(io.StringIO(body)))
        header, data = rows[0], rows[1:]
        got = {row[header.index("Id")] for row in data}
        want = expected_ids(view, served.workspace_id)
        if not want and view.resource not in CORE:
            assert got == set(), view.resource  # a module with no row in this world
            continue
        assert want and got == want, view.resource
        assert all(len(row) == len(header) for row in data), view.resource
        # The audit event, committed, counts exactly the rows sent.
        db.session.expire_all()
        with rbac.system():
            event = db.session.scalars(sa.select(A).where(
                A.action == "export", A.resource == view.resource)
                .order_by(A.id.desc())).first()
        assert event is not None and event.detail["rows"] == len(data), view.resource


def test_a_streamed_export_keeps_row_criteria_and_hidden_fields(served: SimpleNamespace) -> None:
    finance = signed_in(served.url, served.finance)
    with finance.open(f"{served.url}/admin/deals/export/csv/", timeout=30) as response:
        rows = list(csv.reader(io.StringIO(response.read().decode())))
    header, data = rows[0], rows[1:]
    assert "Amount" not in header and "Title" in header
    assert {row[header.index("Id")] for row in data} == served.won  # export criteria
