"""Whoever may deactivate a member sees their API tokens and revokes one, on the member's
page; the member keeps their access. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_api import Api


def token_of(world: SimpleNamespace, key: str, name: str) -> tuple[int, str]:
    token, plaintext = tokens.create_token(rbac, world.members[key], name)
    db.session.commit()
    return token.id, plaintext


def revoked(token_id: int) -> bool:
    with rbac.system():
        db.session.expire_all()
        row = db.session.get(rbac.models.ApiToken, token_id)
        return row.revoked_at is not None


def events(action: str) -> list[Any]:
    A = rbac.models.AuditEvent
    with rbac.system():
        return list(db.session.scalars(sa.select(A).where(A.action == action)))


def test_an_admin_revokes_a_members_token_and_the_member_stays(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    token_id, plaintext = token_of(world, "member", "Zapier sync")
    api = Api(app, plaintext)
    assert api.get("/records/leads").status_code == 200
    mid = world.members["member"].id
    admin = login(world.users["admin"], world.ws)
    page = admin.get(f"/settings/members/{mid}").text
    assert "Zapier sync" in page and plaintext not in page and plaintext[:12] in page
    path = f"/settings/members/{mid}/tokens/{token_id}/revoke"
    assert path in page
    done = admin.post(path)
    assert done.status_code == 302 and revoked(token_id)
    assert api.get("/records/leads").status_code == 401
    (event,) = events("member.token_revoked")
    assert event.target == world.members["member"].display_name
    assert event.detail["token"] == "Zapier sync" and plaintext not in str(event.detail)
    assert login(world.users["member"], world.ws).get("/leads/").status_code == 200
    assert admin.post(path).status_code == 302 and len(events("member.token_revoked")) == 1


def test_who_may_not_deactivate_the_member_may_not_revoke_their_tokens(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner_token, _ = token_of(world, "owner", "Owner's script")
    member_token, _ = token_of(world, "member", "Member's script")
    owner_path = f"/settings/members/{world.members['owner'].id}/tokens/{owner_token}/revoke"
    member_path = f"/settings/members/{world.members['member'].id}/tokens/{member_token}/revoke"
    admin = login(world.users["admin"], world.ws)
    assert "Owner's script" not in admin.get(
        f"/settings/members/{world.members['owner'].id}").text
    assert admin.post(owner_path).status_code == 403  # an Admin does not reach an Owner
    member2 = login(world.users["member2"], world.ws)
    assert member2.post(member_path).status_code == 403  # no members.edit
    # Another member's token under this member's id, and another workspace's member.
    mixed = f"/settings/members/{world.members['member'].id}/tokens/{owner_token}/revoke"
    assert admin.post(mixed).status_code == 404
    dual = login(world.users["dual"], world.ws2)
    assert dual.post(member_path).status_code == 404
    assert not revoked(owner_token) and not revoked(member_token)
    assert events("member.token_revoked") == []


def test_the_api_lists_and_revokes_a_members_tokens_as_the_page_does(
        app: Flask, world: SimpleNamespace) -> None:
    """The same rule through the JSON API: the list never carries a secret, a revoke is
    audited once, and whoever may not reach the member gets the page's answers."""
    token_id, plaintext = token_of(world, "member", "Zapier sync")
    owner_token, owner_plaintext = token_of(world, "owner", "Owner's script")
    _, admin_plaintext = token_of(world, "admin", "Admin's script")
    _, member2_plaintext = token_of(world, "member2", "Member2's script")
    admin, member_api = Api(app, admin_plaintext), Api(app, plaintext)
    mid, oid = world.members["member"].id, world.members["owner"].id
    listed = admin.get(f"/members/{mid}/tokens")
    assert listed.status_code == 200 and plaintext not in listed.text
    (row,) = listed.json["tokens"]
    assert (row["id"], row["name"], row["prefix"], row["revoked_at"]) == (
        token_id, "Zapier sync", plaintext[:len(row["prefix"])], None)
    assert admin.get(f"/members/{oid}/tokens").status_code == 403  # an Admin: not an Owner's
    assert admin.post(f"/members/{oid}/tokens/{owner_token}/revoke", {}).status_code == 403
    assert Api(app, member2_plaintext).post(
        f"/members/{mid}/tokens/{token_id}/revoke", {}).status_code == 403  # no members.edit
    assert admin.post(f"/members/{mid}/tokens/{owner_token}/revoke", {}).status_code == 404
    assert admin.post(f"/members/{10**6}/tokens/{token_id}/revoke", {}).status_code == 404
    assert not revoked(token_id) and not revoked(owner_token) and events(
        "member.token_revoked") == []
    done = admin.post(f"/members/{mid}/tokens/{token_id}/revoke", {})
    assert done.status_code == 200 and done.json["revoked_at"] is not None and revoked(token_id)
    assert member_api.get("/records/leads").status_code == 401
    assert admin.post(f"/members/{mid}/tokens/{token_id}/revoke", {}).status_code == 200
    assert len(events("member.token_revoked")) == 1
    assert Api(app, owner_plaintext).get("/records/leads").status_code == 200


def test_the_api_deactivates_and_reactivates_a_member_as_the_page_does(
        app: Flask, world: SimpleNamespace) -> None:
    _, admin_plaintext = token_of(world, "admin", "Admin's script")
    _, member_plaintext = token_of(world, "member", "Member's script")
    admin, member_api = Api(app, admin_plaintext), Api(app, member_plaintext)
    mid, oid, aid = (world.members[k].id for k in ("member", "owner", "admin"))
    assert member_api.post(f"/members/{mid}/deactivate", {}).status_code == 403
    assert admin.post(f"/members/{oid}/deactivate", {}).status_code == 403  # not an Owner
    assert admin.post(f"/members/{aid}/deactivate", {}).status_code == 403  # not oneself
    assert admin.post(f"/members/{mid}/reactivate", {}).json["field"] == "status"
    assert admin.post(f"/members/{mid}/suspend", {}).status_code in (404, 405)
    done = admin.post(f"/members/{mid}/deactivate", {})
    assert done.status_code == 200 and done.json["status"] == "inactive"
    assert member_api.get("/records/leads").status_code == 401  # an inactive member's token
    again = admin.post(f"/members/{mid}/deactivate", {})
    assert again.status_code == 400 and again.json["field"] == "status"
    back = admin.post(f"/members/{mid}/reactivate", {})
    assert back.status_code == 200 and back.json["status"] == "active"
    # Deactivation revoked the member's tokens: reactivation gives back the roles, not them.
    assert member_api.get("/records/leads").status_code == 401
    _, fresh = token_of(world, "member", "Member's new script")
    assert Api(app, fresh).get("/records/leads").status_code == 200
    assert [e.action for e in events("member.deactivated")] == ["member.deactivated"]
    assert len(events("member.reactivated")) == 1


def test_a_stale_session_mints_no_token(app: Flask, world: SimpleNamespace, login: Any) -> None:
    """A token acts as the member and outlives sign-out and password changes: an enrolled
    member creates one only from a session that passed a recent MFA check."""
    from tests.test_mfa import enrolled_directly, set_check

    member = world.users["member"]
    enrolled_directly(member)
    db.session.commit()
    client = login(member, world.ws)
    set_check(client, member, minutes_ago=60)
    refused = client.post("/settings/tokens", data={"name": "From a stolen cookie"})
    assert refused.status_code == 302 and "/verify" in refused.location
    T = rbac.models.ApiToken
    assert db.session.scalar(sa.select(sa.func.count()).select_from(T)) == 0
    set_check(client, member, minutes_ago=1)
    made = client.post("/settings/tokens", data={"name": "My script"})
    assert made.status_code == 201
    assert db.session.scalar(sa.select(sa.func.count()).select_from(T)) == 1
