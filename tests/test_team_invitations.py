"""Invitations across workspaces: what the inviter sees, and who completes the account.

- An invited address that already has an account (named in another
  workspace) is shown to the inviter only as the address they typed, on every
  page, API answer, audit entry, message and mail they can reach, until the
  invitation is accepted; a search by that name does not find the row.
- Whoever holds a valid link to an account without a password sets it on
  acceptance, whichever invitation created the account; an account without a
  password cannot sign in; revoking one workspace's invitation keeps the
  account another workspace's invitation still points to.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db, mail
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import team, tokens, workspaces
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_api import Api
from tests.test_team import link_token, membership

NAME = "Tara Quinn"
EMAIL = "tara.q@example.test"
NEW = "fresh.person@example.test"


def beta_owner(world: SimpleNamespace) -> Any:
    return team.membership_of(rbac, world.ws2.id, world.users["dual"].id)


def invite_in(client: Any, ws: Any, email: str, key: str = "viewer", **kw: Any) -> Any:
    role = workspaces.role_by_key(rbac, ws, key)
    return client.post("/settings/members/invite", data={"email": email, "roles": [role.id]},
                       **kw)


def reachable(client: Any, api: Api, pending_id: int, world: SimpleNamespace) -> dict[str, str]:
    """Every page and API answer of workspace B naming its members, by path."""
    pages = ["/settings/members", "/settings/members?status=pending",
             f"/settings/members?q={EMAIL}", f"/settings/members/{pending_id}",
             f"/settings/members/{pending_id}/access", "/settings/audit",
             "/settings/audit.csv", "/settings/access-review",
             f"/settings/explain?member={pending_id}&resource=leads&action=view",
             f"/settings/who-could?resource=leads&record={world.other['lead'].id}",
             "/settings/roles", "/admin/rbac_admin_members/",
             f"/admin/rbac_admin_members/details/?id={pending_id}"]
    out = {}
    for path in pages:
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        out[path] = response.text
    for path in ("/members", f"/members/{pending_id}/roles", f"/members/{pending_id}/access",
                 "/audit"):
        response = api.get(path)
        assert response.status_code == 200, (path, response.json)
        out["api" + path] = response.text
    return out


def test_the_inviter_sees_only_the_address_until_acceptance(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    tara = User(email=EMAIL, name=NAME)
    tara.set_password("tara's password")
    db.session.add(tara)
    db.session.flush()
    workspaces.add_member(rbac, world.ws, tara, ["member"])
    db.session.commit()

    beta = login(world.users["dual"], world.ws2)
    with mail.record_messages() as outbox:
        response = invite_in(beta, world.ws2, EMAIL, follow_redirects=True)
    assert response.status_code == 200 and f"Invitation sent to {EMAIL}" in response.text
    assert NAME not in response.text
    assert len(outbox) == 1 and NAME not in outbox[0].body and NAME not in outbox[0].html
    pending = membership(EMAIL, world.ws2)
    assert pending.status == "pending" and pending.display_name == EMAIL

    _, plaintext = tokens.create_token(rbac, beta_owner(world), "members")
    db.session.commit()
    api = Api(app, plaintext)
    seen = reachable(beta, api, pending.id, world)
    leaking = [path for path, body in seen.items() if NAME in body or "Quinn" in body]
    assert leaking == []
    assert EMAIL in seen["/settings/members"] and EMAIL in seen["api/members"]
    # The account's name is no search key for a pending row.
    found = beta.get("/settings/members?q=quinn").text
    assert f'data-member="{EMAIL}"' not in found
    # Viewing the workspace as the pending member (allowed or refused) names them by
    # the address: the banner, the page behind it and the audit entry.
    started = beta.post("/settings/view-as", data={"membership_id": str(pending.id)})
    assert started.status_code in (302, 403, 404)
    viewed = [started.text, beta.get("/").text, beta.get("/settings/audit").text]
    beta.post("/settings/view-as/stop")
    assert not any(NAME in body for body in viewed)
    assert NAME not in beta.get("/settings/audit").text
    # A refused action names the member by the address too.
    refused = beta.post(f"/settings/members/{pending.id}/deactivate", follow_redirects=True)
    assert refused.status_code == 400 and NAME not in refused.text

    accepted = login(tara).post(f"/settings/invitations/{link_token(outbox[0].body)}", data={})
    assert accepted.status_code == 302
    assert membership(EMAIL, world.ws2).status == "active"
    assert NAME in beta.get("/settings/members").text
    listed = {m["email"]: m["name"] for m in api.get("/members").json["members"]}
    assert listed[EMAIL] == NAME


def accept_with_password(app: Flask, token: str, password: str = "a fine password") -> Any:
    client = app.test_client()
    page = client.get(f"/settings/invitations/{token}")
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:600]
    assert "Sign in as" not in page.text
    response = client.post(f"/settings/invitations/{token}",
                           data={"name": "Fresh Person", "password": password, "confirm": password})
    assert response.status_code == 302, response.text[:600]
    return client


def sign_in(app: Flask, email: str, password: str) -> int:
    """Status of a sign-in attempt: 302 signed in, 200 the form again."""
    return app.test_client().post("/login", data={"email": email, "password": password}
                                  ).status_code


def two_invitations(world: SimpleNamespace, login: Any) -> tuple[Any, Any, str, str]:
    """Acme invites a new address (creating the account), then Beta invites it too."""
    acme = login(world.users["owner"], world.ws)
    beta = login(world.users["dual"], world.ws2)
    with mail.record_messages() as outbox:
        assert invite_in(acme, world.ws, NEW).status_code == 302
        assert invite_in(beta, world.ws2, NEW).status_code == 302
    return acme, beta, link_token(outbox[0].body), link_token(outbox[1].body)


def invitation_of(ws: Any) -> Any:
    Invitation = rbac.models.Invitation
    db.session.expire_all()
    return db.session.scalar(
        sa.select(Invitation).where(Invitation.workspace_id == ws.id, Invitation.email == NEW))


def test_an_account_without_a_password_cannot_sign_in(world: SimpleNamespace,
                                                      login: Any, app: Flask) -> None:
    two_invitations(world, login)
    user = db.session.scalar(sa.select(User).where(User.email == NEW))
    assert user is not None and not user.password_hash
    for password in ("", "x", "a fine password"):
        assert sign_in(app, NEW, password) != 302


def test_revoking_the_invitation_that_created_the_account_keeps_the_other_link(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    acme, _, _, beta_token = two_invitations(world, login)
    assert invitation_of(world.ws).new_user and not invitation_of(world.ws2).new_user
    revoked = acme.post(f"/settings/invitations/{invitation_of(world.ws).id}/revoke")
    assert revoked.status_code == 302
    assert db.session.scalar(sa.select(User).where(User.email == NEW)) is not None

    accept_with_password(app, beta_token)
    assert membership(NEW, world.ws2).status == "active"
    assert membership(NEW, world.ws) is None
    assert sign_in(app, NEW, "a fine password") == 302


@pytest.mark.parametrize("first", ["beta", "acme"])
def test_the_first_link_used_sets_the_password_then_the_other_needs_sign_in(
        app: Flask, world: SimpleNamespace, login: Any, first: str) -> None:
    _, _, acme_token, beta_token = two_invitations(world, login)
    tokens_by = {"acme": acme_token, "beta": beta_token}
    second = "acme" if first == "beta" else "beta"
    accept_with_password(app, tokens_by[first])

    anonymous = app.test_client()
    page = anonymous.get(f"/settings/invitations/{tokens_by[second]}")
    assert page.status_code == 200 and 'name="password"' not in page.text
    assert f"Sign in as {NEW}" in page.text
    taken_over = anonymous.post(f"/settings/invitations/{tokens_by[second]}",
                                data={"name": "Mallory", "password": "mallory's password",
                                      "confirm": "mallory's password"})
    assert taken_over.status_code == 403
    assert sign_in(app, NEW, "mallory's password") != 302

    user = db.session.scalar(sa.select(User).where(User.email == NEW))
    joined = login(user).post(f"/settings/invitations/{tokens_by[second]}", data={})
    assert joined.status_code == 302
    assert membership(NEW, world.ws).status == "active"
    assert membership(NEW, world.ws2).status == "active"


def test_the_creating_invitation_still_sets_the_password_after_the_other_is_revoked(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    _, beta, acme_token, _ = two_invitations(world, login)
    assert beta.post(f"/settings/invitations/{invitation_of(world.ws2).id}/revoke"
                     ).status_code == 302
    accept_with_password(app, acme_token)
    assert membership(NEW, world.ws).status == "active"
    assert membership(NEW, world.ws2) is None
    assert sign_in(app, NEW, "a fine password") == 302


def test_revoking_the_only_invitation_removes_the_unused_account(
        world: SimpleNamespace, login: Any) -> None:
    acme = login(world.users["owner"], world.ws)
    assert invite_in(acme, world.ws, NEW).status_code == 302
    assert acme.post(f"/settings/invitations/{invitation_of(world.ws).id}/revoke"
                     ).status_code == 302
    db.session.expire_all()
    assert db.session.scalar(sa.select(User).where(User.email == NEW)) is None


def test_the_invitation_page_names_the_inviting_workspace(world: SimpleNamespace,
                                                          login: Any) -> None:
    """A member of Acme, signed in there, opens an invitation into Beta: every mention
    names Beta (the host's layout keeps a ``workspace`` of its own, the current one)."""
    beta = login(world.users["dual"], world.ws2)
    with mail.record_messages() as outbox:
        assert invite_in(beta, world.ws2, "member@example.test",
                         key="member").status_code in (302, 303)
    token = link_token(outbox[0].body)
    page = login(world.users["member"], world.ws).get(f"/settings/invitations/{token}")
    assert page.status_code == 200
    assert "Join Beta Education" in page.text
    assert "Join Acme Sales" not in page.text
