"""The account's own rules through the real sign-in, MFA and session pages (SQLite and PostgreSQL).

Each test is an attack on the account itself: a header that switched off
the remember-me binding, a password alone (MFA not passed) acting on the
account's other sessions, a sign-in that counted towards another
throttle, a stale MFA check handing out roles.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm_app.extensions import db, mail
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.notify import delivery
from crm_rbac_plugin.security import sessions
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.test_mfa_session import (
    ADMIN_PAGE,
    asks_for_a_code,
    password_sign_in,
    signed_in_with_code,
)
from tests.test_mfa import MFA_PAGE, VERIFY_PAGE, enrolled_directly, set_check
from tests.test_sessions import (
    DOMAIN,
    T0,
    assert_alive,
    copy_of,
    replay_remember_cookie,
    revoked_events,
    row_of,
    set_policy,
    sign_in,
)
from tests.test_team import invite, link_token

JUNK_AUTHORIZATION = {"Authorization": "Basic eDp5"}


@pytest.fixture
def clock(app: Flask) -> Iterator[SimpleNamespace]:
    """The sessions' clock, starting at ``T0``; ``clock.now`` is moved by the test."""
    state = SimpleNamespace(now=T0)
    service = sessions.service(app)
    saved, service.clock = service.clock, lambda: state.now
    yield state
    service.clock = saved


# -- the remember-me binding ---------------------------------------------------------------------


def test_a_junk_authorization_header_keeps_the_remember_me_binding(
        app: Flask, world: SimpleNamespace) -> None:
    """A copied remember-me cookie restores a session and signs the session it came from
    out, whatever Authorization header the copy sends: only an API token is stateless."""
    victim = sign_in(app, "member@example.test", remember=True)
    cookie = victim.get_cookie("remember_token", domain=DOMAIN)
    assert cookie is not None
    thief = app.test_client()
    thief.set_cookie("remember_token", cookie.value, domain=DOMAIN)
    assert thief.get("/leads/", headers=JUNK_AUTHORIZATION).status_code == 200
    page = victim.get("/leads/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_a_remember_me_cookie_issued_beside_a_junk_header_dies_with_its_session(
        app: Flask, world: SimpleNamespace) -> None:
    attacker = app.test_client()
    signed = attacker.post("/login", headers=JUNK_AUTHORIZATION, data={
        "email": "member@example.test", "password": "password", "remember": "y"})
    assert signed.status_code == 302
    assert attacker.get("/leads/", headers=JUNK_AUTHORIZATION).status_code == 200
    cookie = attacker.get_cookie("remember_token", domain=DOMAIN)
    assert cookie is not None
    victim = sign_in(app, "member@example.test")
    assert victim.post("/settings/account/sessions/sign-out",
                       data={"session_id": row_of(attacker).id}).status_code == 302
    page = replay_remember_cookie(app, cookie.value)
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert_alive(victim)


# -- step-up for what gives roles ----------------------------------------------------------------


def stale_owner(world: SimpleNamespace, login: Any) -> FlaskClient:
    """The Owner, enrolled, in a session whose MFA check is older than the step-up window."""
    enrolled_directly(world.users["owner"])
    client = login(world.users["owner"], world.ws)
    set_check(client, world.users["owner"], minutes_ago=60)
    return client


@pytest.mark.parametrize("action", ["resend", "revoke"])
def test_resending_or_revoking_an_invitation_needs_a_recent_check(
        app: Flask, world: SimpleNamespace, login: Any, action: str) -> None:
    """A resend is a new link that gives the invitation's roles again (an Admin's too)."""
    owner = stale_owner(world, login)
    admin = workspaces.role_by_key(rbac, world.ws, "admin")
    set_check(owner, world.users["owner"], minutes_ago=0)
    sent = owner.post("/settings/members/invite",
                      data={"email": "hire@example.test", "roles": [admin.id]})
    assert sent.status_code == 302 and VERIFY_PAGE not in sent.location
    invitation = db.session.scalar(sa.select(rbac.models.Invitation))
    nonce = invitation.nonce_hash
    set_check(owner, world.users["owner"], minutes_ago=60)
    answer = owner.post(f"/settings/invitations/{invitation.id}/{action}")
    assert answer.status_code == 302 and answer.location.startswith(VERIFY_PAGE)
    db.session.expire_all()
    kept = db.session.get(rbac.models.Invitation, invitation.id)
    assert (kept.nonce_hash, kept.revoked_at) == (nonce, None)


def team_and_department_changes(world: SimpleNamespace) -> list[tuple[str, dict[str, Any]]]:
    """The member's-page writes that widen someone's roles or reach, with their forms."""
    member, manager = world.members["viewer"].id, world.members["manager"].id
    return [
        (f"/settings/members/{member}/department",
         {"department_id": world.departments["sales"].id}),
        (f"/settings/members/{manager}/team", {"member_id": member}),
        (f"/settings/members/{manager}/team/{world.members['member'].id}/remove", {}),
    ]


def test_department_and_team_changes_need_a_recent_check(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """A department gives its roles and a manager's team widens their reach: both are
    role assignments for the step-up."""
    owner = stale_owner(world, login)
    M = rbac.models.Membership
    for url, form in team_and_department_changes(world):
        answer = owner.post(url, data=form)
        assert answer.status_code == 302 and answer.location.startswith(VERIFY_PAGE), url
    db.session.expire_all()
    assert db.session.get(M, world.members["viewer"].id).department_id == (
        world.departments["support"].id)
    pairs = {(a.manager_id, a.member_id)
             for a in db.session.scalars(sa.select(rbac.models.ManagerAssignment))}
    assert pairs == {(world.members["manager"].id, world.members["member"].id)}
    set_check(owner, world.users["owner"], minutes_ago=0)
    for url, form in team_and_department_changes(world):
        answer = owner.post(url, data=form)
        assert answer.status_code == 302 and VERIFY_PAGE not in answer.location, url


# -- the MFA code's throttle ---------------------------------------------------------------------


def test_a_typed_address_never_counts_towards_an_accounts_mfa_codes(
        app: Flask, world: SimpleNamespace) -> None:
    """Failed sign-ins typed as ``mfa:<user id>`` (refused as bad input, and even when a
    host counts them) neither throttle the account's code check nor end its session."""
    user = world.users["admin"]
    _, codes = enrolled_directly(user)
    victim = sign_in(app, "admin@example.test")
    attacker = app.test_client()
    for _ in range(6):
        refused = attacker.post("/login", data={"email": f"mfa:{user.id}", "password": "x"})
        assert refused.status_code == 400 and "Enter an email address." in refused.text
    for _ in range(6):
        rbac.auth.failed(f"mfa:{user.id}", "198.51.100.7")  # a host without the form's check
    db.session.commit()
    wrong = victim.post(VERIFY_PAGE, data={"code": "000000"})
    assert wrong.status_code == 400, wrong.status_code  # one wrong code: no more
    right = victim.post(VERIFY_PAGE, data={"code": codes[0]})
    assert right.status_code == 302 and VERIFY_PAGE not in right.location
    assert_alive(victim)


# -- live sessions -------------------------------------------------------------------------------


def test_idle_sessions_are_not_listed_counted_or_capped(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace, login: Any) -> None:
    """A session past its idle timeout is dead even before its browser comes back: the
    profile's list, the admin's count and the cap see only the live ones."""
    set_policy(world.ws, idle_minutes_member=1)
    idle = sign_in(app, "member@example.test")
    clock.now = T0 + dt.timedelta(minutes=3)
    here = sign_in(app, "member@example.test")
    user = world.users["member"]
    assert [s.id for s in sessions.list_sessions(rbac, user.id)] == [row_of(here).id]
    assert sessions.live_count(rbac, user.id) == 1
    owner = login(world.users["owner"], world.ws)
    page = owner.get(f"/settings/members/{world.members['member'].id}")
    assert re.search(r"data-session-count>1<", page.text)
    set_policy(world.ws, max_sessions=2)
    third = sign_in(app, "member@example.test")
    assert revoked_events(reason="cap") == [], "the cap counted a dead session"
    assert_alive(here)
    assert_alive(third)
    page = idle.get("/leads/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


# -- what the password alone may end -------------------------------------------------------------


def test_signing_out_a_session_that_owes_its_code_ends_only_that_session(
        app: Flask, world: SimpleNamespace) -> None:
    _, codes = enrolled_directly(world.users["admin"])
    victim = signed_in_with_code(app, codes[0])
    token = world.users["admin"].session_token
    attacker = password_sign_in(app, "admin@example.test")
    assert asks_for_a_code(attacker)
    assert attacker.post("/logout").status_code == 302
    assert victim.get(ADMIN_PAGE).status_code == 200, "the password alone signed the victim out"
    db.session.expire_all()
    assert db.session.get(User, world.users["admin"].id).session_token == token
    assert revoked_events(reason="sign_out_everywhere") == []
    assert [e.detail["reason"] for e in revoked_events()] == ["signed_out"]


def test_the_cap_ends_sessions_only_for_a_sign_in_that_passed_its_code(
        app: Flask, world: SimpleNamespace) -> None:
    set_policy(world.ws, max_sessions=1)
    _, codes = enrolled_directly(world.users["admin"])
    victim = signed_in_with_code(app, codes[0])
    attacker = password_sign_in(app, "admin@example.test")
    assert victim.get(ADMIN_PAGE).status_code == 200, "the password alone took the cap's place"
    assert attacker.post(VERIFY_PAGE, data={"code": codes[1]}).status_code == 302
    assert attacker.get(ADMIN_PAGE).status_code == 200
    ended = victim.get(ADMIN_PAGE)
    assert ended.status_code == 302 and "/login" in ended.location
    assert [e.detail["count"] for e in revoked_events(reason="cap")] == [1]


def test_an_mfa_reset_ends_the_session_waiting_at_the_code_prompt(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """After a reset the member signs in again: a session that held the password alone
    is never turned into a full one."""
    enrolled_directly(world.users["admin"])
    attacker = password_sign_in(app, "admin@example.test")
    assert asks_for_a_code(attacker)
    token = world.users["admin"].session_token
    owner = login(world.users["owner"], world.ws)
    set_check(owner, world.users["owner"], minutes_ago=0)
    reset = owner.post(f"/settings/members/{world.members['admin'].id}/mfa/reset")
    assert reset.status_code == 302
    page = attacker.get(ADMIN_PAGE)
    assert page.status_code == 302 and "/login" in page.location, page.location
    assert attacker.get("/settings/tokens").status_code == 302
    db.session.expire_all()
    assert db.session.get(User, world.users["admin"].id).session_token != token
    assert [e.detail["reason"] for e in revoked_events()] == ["admin"]


def test_accepting_an_invitation_signs_out_the_browsers_previous_account(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """The browser is someone else's from the acceptance on: the previous account's
    session ends as its sign-out would end it, wherever its cookie was copied."""
    owner = login(world.users["owner"], world.ws)
    with mail.record_messages() as outbox:
        assert invite(owner, world, "ghost@example.test", "member").status_code == 302
    token = link_token(outbox[0].body)
    browser = sign_in(app, "manager@example.test")
    copy = copy_of(app, browser)
    manager_row = row_of(browser)
    accepted = browser.post(f"/settings/invitations/{token}",
                            data={"name": "Ghost", "password": "correct horse",
                                  "confirm": "correct horse"})
    assert accepted.status_code == 302
    assert sessions.live_count(rbac, world.users["manager"].id) == 0
    db.session.expire_all()
    assert db.session.get(rbac.models.AuthSession, manager_row.id).revoked_at is not None
    page = copy.get("/leads/")
    assert page.status_code == 302 and "/login" in page.location
    assert [e.detail["reason"] for e in revoked_events()] == ["signed_out"]


# -- what the password alone shows ---------------------------------------------------------------


def shows_the_account(html: str) -> bool:
    """Whether a page shows the signed-in layout: the switcher, the workspace, the account's
    navigation (the sign-in's own "Signed in as <email>" names only what was typed)."""
    return any(text in html for text in ("Switch workspace", "Acme Sales", "My access",
                                         'class="user-menu'))


def test_a_session_owing_its_code_sees_no_signed_in_layout(
        app: Flask, world: SimpleNamespace) -> None:
    """The verification page and a 404 render as for an anonymous visitor until the code
    passes: the password alone tells nothing of the account's workspaces or roles."""
    _, codes = enrolled_directly(world.users["admin"])
    client = password_sign_in(app, "admin@example.test")
    for path, status in ((VERIFY_PAGE, 200), ("/no-such-page", 404),
                         ("/settings/no-such-page", 404)):
        page = client.get(path)
        assert page.status_code == status and not shows_the_account(page.text), path
    assert client.post(VERIFY_PAGE, data={"code": codes[0]}).status_code == 302
    page = client.get("/no-such-page")
    assert page.status_code == 404 and shows_the_account(page.text)


def test_a_session_owing_its_enrolment_sees_no_signed_in_layout(
        app: Flask, world: SimpleNamespace) -> None:
    set_policy(world.ws, mfa="everyone")
    client = password_sign_in(app, "admin@example.test")
    page = client.get(MFA_PAGE)
    assert page.status_code == 200 and "data-mfa-secret" in page.text
    assert not shows_the_account(page.text)
    page = client.get("/no-such-page")
    assert page.status_code == 404 and not shows_the_account(page.text)


# -- an invitation to someone deactivated elsewhere ----------------------------------------------


def test_someone_deactivated_everywhere_signs_in_to_accept_an_invitation(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """Deactivation is per workspace: a person who left Acme joins Beta through the
    invitation's "Sign in to accept", which comes back to the link."""
    acme_owner = login(world.users["owner"], world.ws)
    gone = acme_owner.post(f"/settings/members/{world.members['member2'].id}/deactivate")
    assert gone.status_code == 302
    anon = app.test_client()
    refused = anon.post("/login", data={"email": "member2@example.test", "password": "password"})
    assert refused.status_code == 200 and "do not match" in refused.text  # no invitation yet
    beta_owner = login(world.users["dual"], world.ws2)
    with mail.record_messages() as outbox:
        sent = beta_owner.post("/settings/members/invite", data={
            "email": "member2@example.test",
            "roles": [workspaces.role_by_key(rbac, world.ws2, "member").id]})
        assert sent.status_code == 302
    link = f"/settings/invitations/{link_token(outbox[0].body)}"
    browser = app.test_client()
    assert "Sign in to accept" in browser.get(link).text
    signed = browser.post(f"/login?next={link}",
                          data={"email": "member2@example.test", "password": "password"})
    assert signed.status_code == 302 and signed.location.endswith(link), signed.location
    assert browser.post(link, data={}).status_code == 302
    M = rbac.models.Membership
    db.session.expire_all()
    statuses = {m.workspace_id: m.status for m in db.session.scalars(
        sa.select(M).where(M.user_id == world.users["member2"].id))}
    assert statuses == {world.ws.id: "inactive", world.ws2.id: "active"}
    assert browser.get("/leads/").status_code == 200


# -- the site's address in mails -----------------------------------------------------------------


ACCESS_REQUEST = {"action": "view", "resource": "roles", "next": "/settings/roles",
                  "note": "please"}


def test_a_request_naming_another_host_is_refused(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """A member cannot make the CRM's own mail to the Owners link to their host."""
    junior = login(world.users["junior_rep"], world.ws)
    with mail.record_messages() as outbox:
        refused = junior.post("/settings/request-access", data=ACCESS_REQUEST,
                              headers={"Host": "evil.example"})
        assert refused.status_code == 400 and outbox == []
        sent = junior.post("/settings/request-access", data=ACCESS_REQUEST)
        assert sent.status_code == 302 and outbox
    assert all("http://crm.test/settings/members/" in m.body and "evil" not in m.body
               for m in outbox)


def test_mail_links_never_come_from_the_host_header(app: Flask) -> None:
    """Without TRUSTED_HOSTS vetting the request's host, links use the configured address."""
    app.config["TRUSTED_HOSTS"] = None
    with app.test_request_context("/", base_url="http://evil.example"):
        assert delivery.absolute("/settings/profile") == "http://crm.test/settings/profile"
        app.config["RBAC_BASE_URL"] = "https://crm.example.com/"
        assert delivery.absolute("/settings/profile") == "https://crm.example.com/settings/profile"
        app.config.update(RBAC_BASE_URL=None, SERVER_NAME=None)
        assert delivery.absolute("/x") == "http://127.0.0.1:5000/x"
