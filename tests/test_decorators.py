"""Route protection: require_permission, record_required, get_or_404 and refusals."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask, jsonify

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import access_denied, get_or_404, record_required, require_permission


@contextmanager
def sql_log() -> Iterator[list[str]]:
    """Collect the SQL of every statement sent to the database."""
    seen: list[str] = []

    def listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", listener)


def _routes() -> Blueprint:
    bp = Blueprint("probe", __name__, url_prefix="/probe")

    @bp.route("/leads")
    @require_permission("leads.view")
    def leads() -> Any:
        return jsonify(sorted(lead.name for lead in db.session.scalars(sa.select(Lead))))

    @bp.route("/leads/export", methods=["GET", "OPTIONS"])
    @require_permission("leads", "export")
    def export() -> Any:
        return "exported"

    @bp.route("/leads/<int:id>")
    @record_required("leads", "view", name="lead")
    def detail(lead: Lead) -> Any:
        return lead.name

    @bp.route("/leads/<int:id>/edit", methods=["POST"])
    @record_required("leads", "edit", name="lead")
    def edit(lead: Lead) -> Any:
        lead.name = "renamed"
        db.session.commit()
        return "ok"

    @bp.route("/leads/<id>/raw")
    def raw(id: str) -> Any:
        return get_or_404("leads", id, "delete").name

    @bp.route("/forgot/<int:id>/edit", methods=["POST"])
    def forgot_decorator(id: int) -> Any:
        # A route with no decorator at all: the flush guard still refuses.
        lead = db.session.execute(
            sa.select(Lead).where(Lead.id == id).execution_options(rbac_bypass=True)
        ).scalar_one()
        lead.name = "hacked"
        db.session.commit()
        return "ok"

    return bp


@pytest.fixture
def probe_app(app: Flask) -> Flask:
    app.register_blueprint(_routes())
    return app


def test_anonymous_is_sent_to_login_or_gets_401(probe_app: Flask, world: SimpleNamespace) -> None:
    client = probe_app.test_client()
    response = client.get("/probe/leads")
    assert response.status_code in (302, 401)
    response = client.get("/probe/leads", headers={"Accept": "application/json"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_require_permission_allows_and_filters(probe_app: Flask, world: SimpleNamespace,
                                               login: Any) -> None:
    client = login(world.users["junior_rep"], world.ws)
    response = client.get("/probe/leads")
    assert response.status_code == 200
    assert response.get_json() == ["Lead of junior_rep", "Lead of unowned"]


def test_require_permission_refuses_with_json_and_html(probe_app: Flask, world: SimpleNamespace,
                                                       login: Any) -> None:
    client = login(world.users["junior_rep"], world.ws)
    denied: list[dict[str, Any]] = []

    def receiver(sender: Flask, **kw: Any) -> None:
        denied.append(kw)

    with access_denied.connected_to(receiver, probe_app):
        html = client.get("/probe/leads/export")
        data = client.get("/probe/leads/export", headers={"Accept": "application/json"})
    assert html.status_code == 403
    assert b"access" in html.data.lower()
    assert data.status_code == 403
    assert data.get_json()["error"] == "forbidden"
    assert "export on leads" in data.get_json()["message"]
    assert [d["action"] for d in denied] == ["export", "export"]
    # OPTIONS is exempt (CORS pre-flight).
    assert client.options("/probe/leads/export").status_code == 200


def test_record_outside_view_is_404_visible_but_not_editable_is_403(
        probe_app: Flask, world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["viewer"], world.ws)
    lead = world.leads["member"]
    assert client.get(f"/probe/leads/{lead.id}").status_code == 200
    assert client.post(f"/probe/leads/{lead.id}/edit").status_code == 403

    client = login(world.users["junior_rep"], world.ws)
    assert client.get(f"/probe/leads/{lead.id}").status_code == 404
    assert client.post(f"/probe/leads/{lead.id}/edit").status_code == 404
    # Another workspace's record, and a record that does not exist, look the same.
    assert client.get(f"/probe/leads/{world.other['lead'].id}").status_code == 404
    assert client.get("/probe/leads/999999").status_code == 404
    assert client.get("/probe/leads/not-a-number/raw").status_code == 404
    with rbac.system():
        assert db.session.get(Lead, lead.id, populate_existing=True).name == "Lead of member"


def test_record_edit_allowed(probe_app: Flask, world: SimpleNamespace, login: Any) -> None:
    lead = world.leads["junior_rep"]
    client = login(world.users["junior_rep"], world.ws)
    assert client.post(f"/probe/leads/{lead.id}/edit").status_code == 200
    with rbac.system():
        assert db.session.get(Lead, lead.id, populate_existing=True).name == "renamed"


def test_route_without_decorator_cannot_write(probe_app: Flask, world: SimpleNamespace,
                                              login: Any) -> None:
    lead = world.leads["member"]
    client = login(world.users["viewer"], world.ws)
    response = client.post(f"/probe/forgot/{lead.id}/edit",
                           headers={"Accept": "application/json"})
    assert response.status_code == 403
    with rbac.system():
        assert db.session.get(Lead, lead.id, populate_existing=True).name == "Lead of member"


def test_member_of_other_workspace_sees_nothing(probe_app: Flask, world: SimpleNamespace,
                                                login: Any) -> None:
    client = login(world.users["outsider"], world.ws2)
    assert client.get("/probe/leads").get_json() == ["Beta lead"]
    # Forcing the session onto a workspace the user is not a member of gives no access.
    client = login(world.users["outsider"], world.ws)
    assert client.get("/probe/leads").status_code == 403


def test_same_user_different_role_per_workspace(probe_app: Flask, world: SimpleNamespace,
                                                login: Any) -> None:
    dual = world.users["dual"]
    as_viewer = login(dual, world.ws)
    assert as_viewer.get("/probe/leads/export").status_code == 403
    as_owner = login(dual, world.ws2)
    assert as_owner.get("/probe/leads/export").status_code == 200


# -- the membership row comes with the user (RBAC.load_user) --------------------------

def test_guarded_request_reads_the_membership_with_the_user(probe_app: Flask,
                                                            world: SimpleNamespace,
                                                            login: Any) -> None:
    client = login(world.users["junior_rep"], world.ws)
    client.get("/probe/leads")  # warm the access cache and the last-seen write
    with sql_log() as seen:
        assert client.get("/probe/leads").status_code == 200
    membership_reads = [s for s in seen if "rbac_membership" in s]
    assert membership_reads, seen
    # Every read of the membership is the user loader's join: no query of its own.
    assert all('"user"' in s or " user " in s for s in membership_reads), membership_reads


def test_membership_read_with_the_user_is_fresh_on_the_next_request(
        probe_app: Flask, world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["junior_rep"], world.ws)
    assert client.get("/probe/leads").status_code == 200
    world.members["junior_rep"].status = "inactive"
    db.session.commit()
    assert client.get("/probe/leads").status_code == 403


def test_membership_read_with_the_user_only_serves_its_workspace(
        probe_app: Flask, world: SimpleNamespace) -> None:
    dual = world.users["dual"]
    with probe_app.test_request_context():
        from flask import session
        from flask_login import login_user

        session[probe_app.config["RBAC_SESSION_KEY"]] = world.ws.id
        user = rbac.load_user(str(dual.id))
        login_user(user)
        # The workspace changes after the user was loaded: the row read with
        # the user (Viewer in ws) must not stand for the new one (Owner in ws2).
        session[probe_app.config["RBAC_SESSION_KEY"]] = world.ws2.id
        access = rbac.current_access()
        assert access is not None
        assert (access.workspace_id, access.is_owner) == (world.ws2.id, True)


def test_membership_read_with_the_user_is_the_membership_row(app: Flask,
                                                              world: SimpleNamespace) -> None:
    """The user loader's one query (JSON subqueries) gives the very row, types included,
    that the plain membership query gives, and no row where there is no membership."""
    from crm_app.models import User
    from crm_rbac_plugin.loader import membership_row
    from crm_rbac_plugin.user_rows import user_with_membership

    member, dual, outsider = world.users["member"], world.users["dual"], world.users["outsider"]
    for user, ws in ((member, world.ws), (dual, world.ws2)):
        loaded, row, account = user_with_membership(db.session, rbac.models, User,
                                                    str(user.id), ws.id)
        assert account is not None and account.session_id is None
        expected = membership_row(db.session, rbac.models, user_id=user.id, workspace_id=ws.id)
        assert loaded is user and row is not None and expected is not None
        assert row == expected
        assert [type(v) for v in row] == [type(v) for v in expected]
        assert (row.workspace_id, row.user_id, row.status) == (ws.id, user.id, "active")
    sales = world.departments["sales"]
    assert user_with_membership(db.session, rbac.models, User, member.id,
                                world.ws.id)[1].department_id == sales.id
    # A user of another workspace, a workspace that does not exist, no workspace.
    assert user_with_membership(db.session, rbac.models, User, outsider.id,
                                world.ws.id) == (outsider, None, None)
    assert user_with_membership(db.session, rbac.models, User, dual.id, 10**6) == (dual, None, None)
    assert user_with_membership(db.session, rbac.models, User, dual.id, None) == (dual, None, None)
    assert user_with_membership(db.session, rbac.models, User, 10**6, world.ws.id) == (None, None, None)
    assert user_with_membership(db.session, rbac.models, User, "abc", world.ws.id) == (None, None, None)
