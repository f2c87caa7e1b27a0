"""The plugin in a second host whose users are keyed by a UUID string named ``uid``.

Nothing in the plugin may assume the user key is an integer named ``id``:
team management, sharing, the audit trail, the history replay, the JSON API
and record filtering are run here against :mod:`tests.uuidhost`, on SQLite
and on PostgreSQL (the ``backend`` parameter of ``database_url``), with the
key stored as text (``String(36)``) and as a native UUID (``sa.Uuid``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import jinja2
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from crm_rbac_plugin import sharing, tokens, user_keys, workspaces
from crm_rbac_plugin.audit import snapshot as audit_snapshot
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.oversight import history
from tests import uuidhost as text_key_host
from tests.conftest import FreshContextClient
from tests.uuidhost import native as native_key_host

KEYS = ("owner", "admin", "manager", "member", "member2", "viewer", "partner")


@pytest.fixture(params=[text_key_host, native_key_host], ids=["text", "native"])
def h(request: pytest.FixtureRequest) -> Any:
    """The host module: a UUID string key, or a native UUID key."""
    return request.param


@pytest.fixture
def host(h: Any, database_url: str) -> Iterator[Flask]:
    """The UUID host in an open app context, its tables created and dropped around the test."""
    app = h.create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": database_url,
                      "SECRET_KEY": "test", "WTF_CSRF_ENABLED": False,
                      "SERVER_NAME": "uuid.test", "MAIL_SUPPRESS_SEND": True})
    app.jinja_env.undefined = jinja2.StrictUndefined
    app.test_client_class = FreshContextClient
    with app.app_context():
        h.db.create_all()
        try:
            yield app
        finally:
            h.db.session.rollback()
            h.db.session.remove()
            h.db.drop_all()
            h.db.engine.dispose()


@pytest.fixture
def w(h: Any, host: Flask) -> SimpleNamespace:
    """Workspace ``usales`` with one member per key (``partner`` owns ``upartner``) and leads."""
    cheap = generate_password_hash("password", method="pbkdf2:sha256:1")
    users = {k: h.User(email=f"{k}@uuid.test", name=k.title(), password_hash=cheap) for k in KEYS}
    h.db.session.add_all(users.values())
    h.db.session.flush()
    ws = workspaces.create_workspace(h.rbac, "Uuid Sales", owner=users["owner"], slug="usales")
    ws2 = workspaces.create_workspace(h.rbac, "Uuid Partner", owner=users["partner"],
                                      slug="upartner")
    members = {"owner": ws_member(h, ws, users["owner"])}
    for key in ("admin", "manager", "member", "member2", "viewer"):
        members[key] = workspaces.add_member(h.rbac, ws, users[key], [key.rstrip("2")])
    h.db.session.commit()
    with h.rbac.system():
        leads = {k: h.Lead(workspace_id=ws.id, owner_id=users[k].uid if k else None,
                         name=f"Lead of {k or 'nobody'}")
                 for k in ("member", "member2", "manager", None)}
        leads["partner"] = h.Lead(workspace_id=ws2.id, owner_id=users["partner"].uid,
                                name="Partner lead")
        h.db.session.add_all(leads.values())
        h.db.session.commit()
    return SimpleNamespace(ws=ws, ws2=ws2, users=users, members=members, leads=leads)


def ws_member(h: Any, ws: Any, user: Any) -> Any:
    M = h.rbac.models.Membership
    return h.db.session.scalar(sa.select(M).where(M.workspace_id == ws.id, M.user_id == user.uid))


def login(host: Flask, user: Any, ws: Any) -> FlaskClient:
    client = host.test_client(user=user)
    with client.session_transaction() as sess:
        sess[host.config["RBAC_SESSION_KEY"]] = ws.id
    return client


def role(h: Any, ws: Any, key: str) -> Any:
    return workspaces.role_by_key(h.rbac, ws, key)


def lead_names(client: FlaskClient) -> set[str]:
    response = client.get("/leads/")
    assert response.status_code == 200, response.text[:300]
    return set(response.json)


def events(h: Any, ws: Any, action: str | None = None) -> list[Any]:
    A = h.rbac.models.AuditEvent
    stmt = sa.select(A).where(A.workspace_id == ws.id).order_by(A.id)
    if action is not None:
        stmt = stmt.where(A.action == action)
    h.db.session.expire_all()
    return list(h.db.session.scalars(stmt))


# -- the schema -------------------------------------------------------------------------------


def test_every_user_column_takes_the_user_key_type(h: Any, host: Flask) -> None:
    m = h.rbac.models
    key_type = h.User.__table__.c.uid.type
    for column in (m.Membership.__table__.c.user_id, m.SharingAgreement.__table__.c.created_by_id,
                   m.AuditEvent.__table__.c.actor_user_id):
        assert type(column.type) is type(key_type), column
        assert getattr(column.type, "length", None) == getattr(key_type, "length", None)
    fk = next(iter(m.Membership.__table__.c.user_id.foreign_keys))
    assert fk.target_fullname == "account.uid"
    assert not hasattr(h.User, "id")
    assert user_keys.user_pk_column(h.rbac) is h.User.__table__.c.uid


def test_audit_values_hold_uuid_objects_as_text(h: Any) -> None:
    key = uuid.uuid4()
    values = SimpleNamespace(**{a.key: None for a in sa.inspect(h.rbac.models.Membership)
                                .column_attrs})
    values.user_id = key
    assert audit_snapshot(h.rbac.models.Membership(), values)["user_id"] == str(key)


# -- workspaces, members and roles ---------------------------------------------------------------


def test_creating_a_workspace_seeds_its_roles_and_is_audited(h: Any, w: SimpleNamespace) -> None:
    owner = w.members["owner"]
    assert owner.user_id == w.users["owner"].uid and owner.user is w.users["owner"]
    assert role(h, w.ws, "owner").is_owner and role(h, w.ws, "viewer").builtin
    created = events(h, w.ws)
    assert created, "creating a workspace writes an audit event"
    after = {target: values for ev in created for target, values in (ev.after or {}).items()}
    assert after[f"member #{owner.id} Owner"]["user_id"] == str(w.users["owner"].uid)
    access = h.rbac.access_for(owner)
    assert access is not None and access.is_owner and access.user_id == w.users["owner"].uid


def test_invite_accept_and_sign_in_with_a_uuid_key(h: Any, host: Flask, w: SimpleNamespace) -> None:
    owner = login(host, w.users["owner"], w.ws)
    with h.mail.record_messages() as outbox:
        response = owner.post("/settings/members/invite", data={
            "email": "new@uuid.test", "roles": [role(h, w.ws, "member").id]})
    assert response.status_code == 302, response.text[:400]
    assert len(outbox) == 1 and outbox[0].recipients == ["new@uuid.test"]
    token = re.search(r"/settings/invitations/([A-Za-z0-9_.\-]+)", outbox[0].body).group(1)
    new_user = h.db.session.scalar(sa.select(h.User).where(h.User.email == "new@uuid.test"))
    assert uuid.UUID(str(new_user.uid)) and ws_member(h, w.ws, new_user).status == "pending"

    anon = host.test_client()
    assert anon.get(f"/settings/invitations/{token}").status_code == 200
    accepted = anon.post(f"/settings/invitations/{token}",
                         data={"name": "New Person", "password": "correct horse", "confirm": "correct horse"})
    assert accepted.status_code == 302, accepted.text[:400]
    h.db.session.expire_all()
    joined = ws_member(h, w.ws, new_user)
    assert joined.status == "active" and joined.user.check_password("correct horse")
    assert lead_names(anon) == {"Lead of nobody"}  # signed in as the new member (own scope)
    invited = events(h, w.ws, "member.invited")
    assert invited and invited[-1].actor_user_id == w.users["owner"].uid


def test_roles_are_assigned_and_removed_on_the_member_pages(h: Any, host: Flask,
                                                            w: SimpleNamespace) -> None:
    owner = login(host, w.users["owner"], w.ws)
    member = w.members["member"]
    assert owner.post(f"/settings/members/{member.id}/roles",
                      data={"role_id": role(h, w.ws, "viewer").id}).status_code == 302
    assert lead_names(login(host, w.users["member"], w.ws)) == {
        "Lead of member", "Lead of member2", "Lead of manager", "Lead of nobody"}
    h.db.session.expire_all()
    given = next(mr for mr in ws_member(h, w.ws, w.users["member"]).member_roles
                 if mr.role.key == "viewer")
    assert owner.post(f"/settings/members/{member.id}/roles/{given.id}/remove"
                      ).status_code == 302
    assert lead_names(login(host, w.users["member"], w.ws)) == {"Lead of member",
                                                                 "Lead of nobody"}
    assert events(h, w.ws)[-1].actor_user_id == w.users["owner"].uid


def test_members_list_and_member_page(h: Any, host: Flask, w: SimpleNamespace) -> None:
    owner = login(host, w.users["owner"], w.ws)
    page = owner.get("/settings/members")
    assert page.status_code == 200
    assert all(f"{k}@uuid.test" in page.text for k in ("owner", "member", "viewer"))
    detail = owner.get(f"/settings/members/{w.members['member'].id}")
    assert detail.status_code == 200 and "member@uuid.test" in detail.text
    access = owner.get(f"/settings/members/{w.members['member'].id}/access")
    assert access.status_code == 200


def test_deactivation_and_reactivation(h: Any, host: Flask, w: SimpleNamespace) -> None:
    owner = login(host, w.users["owner"], w.ws)
    member = login(host, w.users["member"], w.ws)
    assert lead_names(member) == {"Lead of member", "Lead of nobody"}
    mid = w.members["member"].id
    assert owner.post(f"/settings/members/{mid}/deactivate").status_code == 302
    h.db.session.expire_all()
    assert ws_member(h, w.ws, w.users["member"]).status == "inactive"
    assert member.get("/leads/").json == []  # no access: every protected query is empty
    assert events(h, w.ws, "member.deactivated")[-1].actor_user_id == w.users["owner"].uid
    assert owner.post(f"/settings/members/{mid}/reactivate").status_code == 302
    assert lead_names(member) == {"Lead of member", "Lead of nobody"}


def test_reassigning_records_to_a_uuid_keyed_member(h: Any, host: Flask, w: SimpleNamespace) -> None:
    owner = login(host, w.users["owner"], w.ws)
    path = f"/settings/members/{w.members['member'].id}/reassign"
    assert owner.get(path).status_code == 200
    to = w.users["member2"].uid
    preview = owner.post(path, data={"to_user_id": str(to)})
    assert preview.status_code == 200, preview.text[:400]
    applied = owner.post(path, data={"to_user_id": str(to), "step": "apply"})
    assert applied.status_code == 302, applied.text[:400]
    with h.rbac.system():
        h.db.session.expire_all()
        assert h.db.session.get(h.Lead, w.leads["member"].id).owner_id == to
    ev = events(h, w.ws, "records.reassigned")[-1]
    assert ev.actor_user_id == w.users["owner"].uid
    assert ev.detail["to_user_id"] == str(to)
    assert ev.detail["from_user_id"] == str(w.users["member"].uid)
    assert owner.post(path, data={"to_user_id": "not-a-member"}).status_code == 400


def test_departments_team_and_visibility_scopes(h: Any, host: Flask, w: SimpleNamespace) -> None:
    owner = login(host, w.users["owner"], w.ws)
    assert owner.post("/settings/departments", data={"name": "Sales"}).status_code == 302
    dept = h.db.session.scalar(sa.select(h.rbac.models.Department).where(
        h.rbac.models.Department.workspace_id == w.ws.id))
    for key in ("admin", "member"):
        assert owner.post(f"/settings/members/{w.members[key].id}/department",
                          data={"department_id": dept.id, "visibility": ""}).status_code == 302
    assert owner.get("/settings/departments").status_code == 200
    # The admin capped to their department sees the department members' leads (and unowned).
    assert owner.post(f"/settings/members/{w.members['admin'].id}/department",
                      data={"department_id": dept.id, "visibility": "department"}
                      ).status_code == 302
    assert lead_names(login(host, w.users["admin"], w.ws)) == {"Lead of member",
                                                                "Lead of nobody"}
    # The manager sees their assigned member's leads (the team scope).
    manager = login(host, w.users["manager"], w.ws)
    assert lead_names(manager) == {"Lead of manager", "Lead of nobody"}
    assert owner.post(f"/settings/members/{w.members['manager'].id}/team",
                      data={"member_id": w.members["member2"].id}).status_code == 302
    assert lead_names(manager) == {"Lead of manager", "Lead of member2", "Lead of nobody"}


# -- records -------------------------------------------------------------------------------------


def test_own_scope_filters_and_stamps_the_string_owner_key(h: Any, host: Flask,
                                                           w: SimpleNamespace) -> None:
    assert lead_names(login(host, w.users["member"], w.ws)) == {"Lead of member",
                                                                 "Lead of nobody"}
    assert lead_names(login(host, w.users["viewer"], w.ws)) == {
        "Lead of member", "Lead of member2", "Lead of manager", "Lead of nobody"}
    assert lead_names(login(host, w.users["partner"], w.ws2)) == {"Partner lead"}
    with h.rbac.as_member(h.rbac.access_for(w.members["member"])) as access:
        assert h.rbac.can("edit", "leads", w.leads["member"], access=access)
        assert not h.rbac.can("edit", "leads", w.leads["member2"], access=access)
        lead = h.Lead(workspace_id=w.ws.id, name="Fresh")
        h.db.session.add(lead)
        h.db.session.commit()
        assert lead.owner_id == w.users["member"].uid


# -- audit and history ----------------------------------------------------------------------------


def test_audit_page_csv_and_who_could(h: Any, host: Flask, w: SimpleNamespace) -> None:
    owner = login(host, w.users["owner"], w.ws)
    assert owner.post(f"/settings/members/{w.members['viewer'].id}/deactivate"
                      ).status_code == 302
    page = owner.get("/settings/audit")
    assert page.status_code == 200 and "member.deactivated" in page.text
    rows = list(csv.reader(io.StringIO(owner.get("/settings/audit.csv").text)))
    header = rows[0]
    deactivated = next(r for r in rows[1:] if r[header.index("action")] == "member.deactivated")
    assert deactivated[header.index("actor_user_id")] == str(w.users["owner"].uid)

    lead = w.leads["member2"]
    page = owner.get(f"/settings/who-could?resource=leads&record={lead.id}")
    assert page.status_code == 200 and "Viewer" in page.text
    now = history.who_could(h.rbac, w.ws.id, "leads", lead.id, utcnow())
    allowed = {a.user for a in now.allowed}
    assert {"Owner", "Admin", "Member2"} <= allowed and "Viewer" not in allowed
    # Before the deactivation the viewer could (the membership is rewound from the trail).
    before = history.who_could(h.rbac, w.ws.id, "leads", lead.id,
                               events(h, w.ws, "member.deactivated")[-1].at
                               - dt.timedelta(microseconds=1))
    assert "Viewer" in {a.user for a in before.allowed}


# -- sharing ---------------------------------------------------------------------------------------


def test_sharing_offer_accept_and_revoke(h: Any, host: Flask, w: SimpleNamespace) -> None:
    owner = h.rbac.access_for(w.members["owner"])
    agreement = sharing.create_agreement(h.rbac, owner, workspace="upartner",
                                         permissions=[{"resource": "leads", "action": "view"}])
    h.db.session.commit()
    assert agreement.created_by_id == w.users["owner"].uid
    partner = login(host, w.users["partner"], w.ws2)
    assert lead_names(partner) == {"Partner lead"}
    partner_member = ws_member(h, w.ws2, w.users["partner"])
    with h.rbac.as_member(h.rbac.access_for(partner_member)) as access:
        sharing.accept(h.rbac, access, agreement)
        h.db.session.commit()
    assert "Lead of member" in lead_names(partner)
    accepted = events(h, w.ws2)[-1]
    assert accepted.actor_user_id == w.users["partner"].uid
    assert sharing.to_json(agreement)["id"] == agreement.id
    with h.rbac.as_member(h.rbac.access_for(w.members["owner"])) as access:
        sharing.revoke(h.rbac, access, agreement)
        h.db.session.commit()
    assert lead_names(partner) == {"Partner lead"}


# -- the JSON API --------------------------------------------------------------------------------


def test_api_members_audit_and_role_assignment(h: Any, host: Flask, w: SimpleNamespace) -> None:
    _, plaintext = tokens.create_token(h.rbac, w.members["owner"], "script")
    h.db.session.commit()
    client = host.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    members = client.get("/api/v1/members", headers=headers)
    assert members.status_code == 200, members.text[:300]
    by_email = {m["email"]: m for m in members.json["members"]}
    assert by_email["member@uuid.test"]["user_id"] == str(w.users["member"].uid)

    mid = w.members["member"].id
    given = client.post(f"/api/v1/members/{mid}/roles", headers=headers,
                        json={"role_id": role(h, w.ws, "viewer").id})
    assert given.status_code == 201, given.text[:300]
    removed = client.delete(f"/api/v1/members/{mid}/roles/{given.json['id']}", headers=headers)
    assert removed.status_code in (200, 204), removed.text[:300]

    trail = client.get("/api/v1/audit", headers=headers)
    assert trail.status_code == 200
    assert trail.json["items"][0]["actor_user_id"] == str(w.users["owner"].uid)
    records = client.get("/api/v1/records/leads", headers=headers)
    assert records.status_code == 200 and len(records.json["items"]) == 4
