"""Sessions and tokens: a change of rights is enforced on the member's very next request.

Each test first *warms* the member's access (a successful request through
the browser session and through a personal API token, so the per-process
cache holds it), then changes their rights through the real settings pages,
as an Owner would, and checks the member's very next request of every kind
(a page, a write, the JSON API by session and by token) is refused.

Logging out must end the session itself, not just the browser's copy of it:
a copy of the cookie taken before logging out (a stolen cookie, a shared
computer's cache) must not work after.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crm_app.extensions import db
from crm_app.models import Deal, Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.test_escalation import snapshot
from tests.test_settings_ui import give_role_admin, matrix_values, role

COOKIE_DOMAIN = "crm.test"  # the tests' SERVER_NAME


def bearer(app: Flask, world: SimpleNamespace, key: str) -> tuple[FlaskClient, dict[str, str]]:
    """A session-less client and the Authorization header of a fresh token of ``key``."""
    _, plaintext = tokens.create_token(rbac, world.members[key], f"session test {key}")
    db.session.commit()
    return app.test_client(), {"Authorization": f"Bearer {plaintext}"}


def assert_refused(response: TestResponse, what: str) -> None:
    """A refusal: 401/403/404, or the redirect to the login page; never the data."""
    if response.status_code in (301, 302, 303):
        assert "/login" in response.headers.get("Location", ""), (what, response.headers)
        return
    assert response.status_code in (401, 403, 404), (what, response.status_code,
                                                     response.text[:300])


def test_deactivation_refuses_every_next_request(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    """A warmed-up Manager is deactivated from the members page: pages, writes, API all refused."""
    browser = login(world.users["manager"], world.ws)
    api, headers = bearer(app, world, "manager")
    deal = world.deals["member-new"]
    mid = world.members["manager"].id
    # Warm every path (and the access cache) first.
    assert browser.get("/deals/").status_code == 200
    assert browser.get(f"/deals/{deal.id}").status_code == 200
    assert browser.get("/api/v1/members").status_code == 200
    assert api.get("/api/v1/records/deals", headers=headers).status_code == 200
    assert api.get(f"/api/v1/members/{mid}/access", headers=headers).status_code == 200

    owner = login(world.users["owner"], world.ws)
    assert owner.post(f"/settings/members/{mid}/deactivate").status_code == 302
    before = snapshot()
    for what, response in [
        ("page", browser.get("/deals/")),
        ("record page", browser.get(f"/deals/{deal.id}")),
        ("write", browser.post(f"/deals/{deal.id}/edit", data={
            "title": "Renamed after deactivation", "stage": "new", "amount": "1"})),
        ("delete", browser.post(f"/deals/{deal.id}/delete")),
        ("settings", browser.get("/settings/members")),
        ("api by session", browser.get("/api/v1/members")),
        ("api by token", api.get("/api/v1/records/deals", headers=headers)),
        ("api record by token", api.get(f"/api/v1/records/deals/{deal.id}", headers=headers)),
        ("api own access by token", api.get(f"/api/v1/members/{mid}/access", headers=headers)),
        ("crm page by token", api.get("/deals/", headers=headers)),
    ]:
        assert_refused(response, what)
    assert snapshot() == before
    with rbac.system():
        assert db.session.scalar(sa.select(Deal.title).where(Deal.id == deal.id)) == deal.title


def test_deactivated_user_account_is_signed_out(app: Flask, world: SimpleNamespace,
                                                login: Any) -> None:
    """An account switched off altogether (``is_active_user``) loses its open session at once."""
    browser = login(world.users["member"], world.ws)
    api, headers = bearer(app, world, "member")
    assert browser.get("/leads/").status_code == 200
    assert api.get("/api/v1/records/leads", headers=headers).status_code == 200
    world.users["member"].is_active_user = False
    db.session.commit()
    assert_refused(browser.get("/leads/"), "page")
    assert_refused(browser.get("/api/v1/records/leads"), "api by session")
    assert_refused(api.get("/api/v1/records/leads", headers=headers), "api by token")


def test_role_removal_refuses_the_next_request(app: Flask, world: SimpleNamespace,
                                               login: Any) -> None:
    """Finance is taken from a Viewer who also holds it: deal exports stop on the next request.

    Removed through the member access page by a role admin (not the Owner), so
    the change goes through the same flush, version bump and cache as any.
    """
    viewer = world.members["viewer"]
    owner = login(world.users["owner"], world.ws)
    assert owner.post(f"/settings/members/{viewer.id}/roles",
                      data={"role_id": role(world, "finance").id}).status_code == 302
    browser = login(world.users["viewer"], world.ws)
    api, headers = bearer(app, world, "viewer")
    assert browser.get("/deals/export.csv").status_code == 200
    assert api.get("/api/v1/records/deals", headers=headers).status_code == 200

    give_role_admin(world, "admin")  # any role admin, not only the Owner
    admin = login(world.users["admin"], world.ws)
    db.session.expire_all()
    finance_mr = next(mr.id for mr in viewer.member_roles if mr.role.key == "finance")
    response = admin.post(f"/settings/members/{viewer.id}/roles/{finance_mr}/remove")
    assert response.status_code == 302, response.text[:300]
    assert_refused(browser.get("/deals/export.csv"), "export by session")
    assert_refused(api.get("/deals/export.csv", headers=headers), "export by token")
    # What Viewer still grants keeps working: the removal took exactly Finance away.
    assert browser.get("/deals/").status_code == 200
    assert api.get("/api/v1/records/deals", headers=headers).status_code == 200


def test_a_narrowed_role_refuses_the_next_request(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    """The Owner drops ``leads.edit`` from Junior Rep in the matrix: the rep's next edit fails."""
    rep = login(world.users["junior_rep"], world.ws)
    api, headers = bearer(app, world, "junior_rep")
    lead = world.leads["junior_rep"]
    assert rep.get(f"/leads/{lead.id}/edit").status_code == 200
    owner = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{role(world, 'junior_rep').id}/edit"
    values = matrix_values(owner, url)
    values.update({"scope__leads__edit": "", "step": "save"})
    assert owner.post(url, data=values).status_code == 302
    before = snapshot()
    assert_refused(rep.get(f"/leads/{lead.id}/edit"), "edit page")
    assert_refused(rep.post(f"/leads/{lead.id}/edit", data={"name": "Changed", "status": "new"}),
                   "edit")
    assert_refused(api.post(f"/leads/{lead.id}/edit", headers=headers,
                            data={"name": "Changed", "status": "new"}), "edit by token")
    assert snapshot() == before
    with rbac.system():
        assert db.session.scalar(sa.select(Lead.name).where(Lead.id == lead.id)) == lead.name


def test_a_revoked_token_is_refused_at_once(app: Flask, world: SimpleNamespace,
                                            login: Any) -> None:
    """Revoking from the tokens page ends the token on its next use."""
    browser = login(world.users["member"], world.ws)
    api, headers = bearer(app, world, "member")
    assert api.get("/api/v1/records/leads", headers=headers).status_code == 200
    token_id = db.session.scalar(sa.select(rbac.models.ApiToken.id).order_by(
        rbac.models.ApiToken.id.desc()))
    assert browser.post(f"/settings/tokens/{token_id}/revoke").status_code == 302
    assert api.get("/api/v1/records/leads", headers=headers).status_code == 401


# -- logout -------------------------------------------------------------------------------


def sign_in(app: Flask, email: str, *, remember: bool = False) -> FlaskClient:
    """A client signed in through the real login form (not a test-only session write)."""
    client = app.test_client()
    data = {"email": email, "password": "password"}
    if remember:
        data["remember"] = "y"
    response = client.post("/login", data=data)
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


def test_logout_ends_the_session_in_the_browser(app: Flask, world: SimpleNamespace) -> None:
    client = sign_in(app, "member@example.test")
    assert client.get("/leads/").status_code == 200
    assert client.post("/logout").status_code == 302
    assert_refused(client.get("/leads/"), "page after logout")
    assert_refused(client.get("/api/v1/records/leads"), "api after logout")


@pytest.mark.parametrize("cookie", ["session", "remember_token"])
def test_a_cookie_copied_before_logout_is_dead_after_it(app: Flask, world: SimpleNamespace,
                                                        cookie: str) -> None:
    """Replaying the session (or remember-me) cookie saved before logging out gives no data.

    Signed client-side cookies stay valid until they expire unless the server
    keeps something to revoke them by; this checks that logging out does.
    """
    client = sign_in(app, "member@example.test", remember=cookie == "remember_token")
    assert client.get("/leads/").status_code == 200
    saved = client.get_cookie(cookie, domain=COOKIE_DOMAIN)
    assert saved is not None, f"no {cookie} cookie after signing in"
    assert client.post("/logout").status_code == 302

    replay = app.test_client()
    replay.set_cookie(cookie, saved.value, domain=COOKIE_DOMAIN)
    page = replay.get("/leads/")
    api = replay.get("/api/v1/records/leads")
    leaked = world.leads["member"].name in page.text
    assert page.status_code in (302, 401) and not leaked and api.status_code == 401, (
        f"logout left the {cookie} cookie valid: replayed after logout, /leads/ answered "
        f"{page.status_code} (member's lead listed: {leaked}) and /api/v1/records/leads "
        f"answered {api.status_code}")
