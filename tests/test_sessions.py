"""Server-side sessions: one row per sign-in, checked on every request (SQLite and PostgreSQL).

Clients sign in through the demo's real login form unless a test is about
Flask-Login's test client (adoption). Time is moved with the sessions'
clock (``sessions.service(app).clock``), never by sleeping.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, session
from flask.testing import FlaskClient
from flask_login import user_logged_in

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import signals, tokens
from crm_rbac_plugin.security import devices, sessions
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

DOMAIN = "crm.test"
T0 = dt.datetime(2026, 3, 2, 9, 0, 0)
CHROME_WIN = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0 Safari/537.36")
NEW_PASSWORD = "violet tapestry harbour 1987!"


@pytest.fixture
def clock(app: Flask) -> Iterator[SimpleNamespace]:
    """The sessions' clock, starting at :data:`T0`; ``clock.now`` is moved by the test."""
    state = SimpleNamespace(now=T0)
    service = sessions.service(app)
    saved = service.clock
    service.clock = lambda: state.now
    yield state
    service.clock = saved


def sign_in(app: Flask, email: str, *, agent: str = CHROME_WIN, remember: bool = False,
            client: FlaskClient | None = None) -> FlaskClient:
    client = client or app.test_client()
    data = {"email": email, "password": "password", **({"remember": "y"} if remember else {})}
    response = client.post("/login", data=data, headers={"User-Agent": agent})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


def sid_of(client: FlaskClient) -> str | None:
    with client.session_transaction() as sess:
        return sess.get("rbac_sid")


def rows(user: Any) -> list[Any]:
    S = rbac.models.AuthSession
    db.session.expire_all()
    return list(db.session.scalars(sa.select(S).where(S.user_id == user.id).order_by(S.id)))


def row_of(client: FlaskClient) -> Any:
    S = rbac.models.AuthSession
    sid = sid_of(client)
    assert sid is not None
    db.session.expire_all()
    return db.session.scalar(sa.select(S).where(
        S.sid_hash == hashlib.sha256(sid.encode()).hexdigest()))


def revoked_events(**detail: Any) -> list[Any]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    found = db.session.scalars(sa.select(A).where(A.action == "session.revoked").order_by(A.id))
    return [e for e in found if all(e.detail.get(k) == v for k, v in detail.items())]


def copy_of(app: Flask, client: FlaskClient) -> FlaskClient:
    """A second browser holding a copy of ``client``'s session cookie."""
    saved = client.get_cookie("session", domain=DOMAIN)
    assert saved is not None
    other = app.test_client()
    other.set_cookie("session", saved.value, domain=DOMAIN)
    return other


def assert_alive(client: FlaskClient) -> None:
    response = client.get("/leads/")
    assert response.status_code == 200, response.headers.get("Location")


def assert_ended(client: FlaskClient, reason: str | None = "revoked") -> None:
    """The page redirects to the login with a message; the API answers 401 with the reason
    (``reason`` None: any 401, as when the host's own sign-out killed the cookie first)."""
    api = client.get("/api/v1/records/leads")
    assert api.status_code == 401 and api.json is not None
    if reason is not None:
        assert api.json["error"] == "session_ended" and api.json["reason"] == reason
    page = client.get("/leads/")
    assert page.status_code == 302 and "/login" in page.headers["Location"], page.status_code


def set_policy(workspace: Any, **values: Any) -> None:
    P = rbac.models.SecurityPolicy
    row = db.session.scalar(sa.select(P).where(P.workspace_id == workspace.id))
    if row is None:
        row = P(workspace_id=workspace.id)
        db.session.add(row)
    for key, value in values.items():
        setattr(row, key, value)
    db.session.commit()


# -- sign-in and sign-out ----------------------------------------------------------------------


def test_sign_in_draws_a_new_id_and_drops_the_pre_login_session(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace) -> None:
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["rbac_sid"] = "planted-by-an-attacker"
        sess["planted"] = "value"
    sign_in(app, "member@example.test", client=client)
    sid = sid_of(client)
    assert sid and sid != "planted-by-an-attacker" and len(sid) >= 40
    with client.session_transaction() as sess:
        assert "planted" not in sess
    [row] = rows(world.users["member"])
    assert row.sid_hash == hashlib.sha256(sid.encode()).hexdigest()
    assert row.ip == "127.0.0.1" and row.user_agent == CHROME_WIN
    assert row.created_at == row.last_seen_at == T0 and row.revoked_at is None
    assert devices.describe(row.user_agent) == "Chrome on Windows"
    assert_alive(client)


def test_keys_written_by_other_sign_in_receivers_stay(app: Flask, world: SimpleNamespace) -> None:
    """Only what the cookie carried in is dropped, whichever receiver runs first."""

    def host_receiver(sender: Any, **extra: Any) -> None:
        session["host_flag"] = "kept"
    user_logged_in.connect(host_receiver, app)
    try:
        client = app.test_client()
        with client.session_transaction() as sess:
            sess["planted"] = "value"
        sign_in(app, "member@example.test", client=client)
    finally:
        user_logged_in.disconnect(host_receiver, app)
    with client.session_transaction() as sess:
        assert sess.get("host_flag") == "kept" and "planted" not in sess


def test_sign_out_revokes_the_row_and_a_copied_cookie_is_refused(
        app: Flask, world: SimpleNamespace) -> None:
    client = sign_in(app, "member@example.test")
    copy = copy_of(app, client)
    assert_alive(copy)
    assert client.post("/logout").status_code == 302
    [row] = rows(world.users["member"])
    assert row.revoked_at is not None
    [event] = revoked_events(reason="signed_out")
    assert event.resource == "account" and event.target == "member@example.test"
    detail = dict(event.detail)
    assert detail.pop("user_agent").startswith("Werkzeug/")  # the sign-out's own client
    assert detail == {"session_id": row.id, "reason": "signed_out", "count": 1}
    assert_ended(copy, None)  # the demo's sign-out also rotates the account's cookie id


def test_signing_out_ends_the_rows_of_every_browser_it_signs_out(
        app: Flask, world: SimpleNamespace) -> None:
    """The demo's sign-out signs the account out of every browser: the other browsers'
    rows end too, so the session list, its count and the cap see only live sessions."""
    first = sign_in(app, "member@example.test")
    second = sign_in(app, "member@example.test", agent="Firefox")
    assert sessions.live_count(rbac, world.users["member"].id) == 2
    assert first.post("/logout").status_code == 302
    assert sessions.live_count(rbac, world.users["member"].id) == 0
    assert all(row.revoked_at is not None for row in rows(world.users["member"]))
    assert [e.detail["reason"] for e in revoked_events()] == ["sign_out_everywhere", "signed_out"]
    assert_ended(second, None)

def test_a_revoked_session_ends_on_its_next_request_with_a_message(
        app: Flask, world: SimpleNamespace) -> None:
    client = sign_in(app, "member@example.test")
    assert_alive(client)
    sessions.revoke(rbac, row_of(client).id, by=None, reason="signed_out")
    db.session.commit()
    page = client.get("/leads/", headers={"Accept": "text/html"})
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")
    login_page = client.get(page.headers["Location"])
    assert "Your session ended" in login_page.text
    assert sid_of(client) is None  # signed out: the id is gone from the cookie


def test_a_json_client_gets_401_session_ended(app: Flask, world: SimpleNamespace) -> None:
    client = sign_in(app, "member@example.test")
    sessions.revoke(rbac, row_of(client).id, by=None, reason="signed_out")
    db.session.commit()
    response = client.get("/api/v1/records/leads")
    assert response.status_code == 401
    assert response.json["error"] == "session_ended" and response.json["reason"] == "revoked"


def test_remember_me_restoration_is_a_new_sign_in(app: Flask, world: SimpleNamespace) -> None:
    client = sign_in(app, "member@example.test", remember=True)
    first = sid_of(client)
    client.delete_cookie("session", domain=DOMAIN)  # the browser was closed
    assert_alive(client)
    assert sid_of(client) not in (None, first)
    assert len(rows(world.users["member"])) == 2


@pytest.mark.parametrize("how", ["sign_out_everywhere", "admin", "password_changed"])
def test_a_copied_remember_me_cookie_dies_with_the_sessions(
        app: Flask, world: SimpleNamespace, login: Any, how: str) -> None:
    """A remember-me cookie names the account, not a session: the demo rotates the login
    id it names whenever every other session of the account is revoked."""
    victim = sign_in(app, "member@example.test", remember=True)
    here = sign_in(app, "member@example.test", remember=True)
    remembered = victim.get_cookie("remember_token", domain=DOMAIN)
    assert remembered is not None
    if how == "sign_out_everywhere":
        assert here.post("/settings/account/sessions/sign-out-others").status_code == 302
    elif how == "admin":
        owner = login(world.users["owner"])
        assert owner.post(f"/settings/members/{world.members['member'].id}"
                          "/sessions/sign-out").status_code == 302
    else:
        form = {"name": "Member", "current_password": "password",
                "new_password": NEW_PASSWORD, "sign_out_others": "y"}
        assert here.post("/settings/profile", data=form).status_code == 302
    thief = app.test_client()  # the remember-me cookie alone, as a thief would replay it
    thief.set_cookie("remember_token", remembered.value, domain=DOMAIN)
    page = thief.get("/leads/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    if how != "admin":
        assert_alive(here)  # the browser that asked stays signed in


def replay_remember_cookie(app: Flask, value: str) -> Any:
    """A request with the remember-me cookie alone, as a thief would replay a copy of it."""
    thief = app.test_client()
    thief.set_cookie("remember_token", value, domain=DOMAIN)
    return thief.get("/leads/")


@pytest.mark.parametrize("how", ["signed_out", "cap", "idle", "expired"])
def test_a_copied_remember_me_cookie_dies_with_its_session(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace, how: str) -> None:
    """The remember-me cookie is bound to the session that issued it: once that session is
    revoked (one sign-out from the profile's list, the cap, idle, expired), a copy restores
    nothing, while the account's other sessions live on."""
    remembered = sign_in(app, "member@example.test", remember=True, agent="Thief/1.0")
    cookie = remembered.get_cookie("remember_token", domain=DOMAIN)
    assert cookie is not None
    here = sign_in(app, "member@example.test")
    if how == "signed_out":
        ended = here.post("/settings/account/sessions/sign-out",
                          data={"session_id": row_of(remembered).id})
        assert ended.status_code == 302
    elif how == "cap":
        set_policy(world.ws, max_sessions=2)
        clock.now = T0 + dt.timedelta(minutes=1)
        here = sign_in(app, "member@example.test")
    else:
        late = dt.timedelta(hours=8, minutes=2) if how == "idle" else dt.timedelta(days=7, hours=1)
        clock.now = T0 + late
        assert_ended(remembered, reason=how)
        here = sign_in(app, "member@example.test")
    assert revoked_events(reason=how)
    page = replay_remember_cookie(app, cookie.value)
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert_alive(here)


@pytest.mark.parametrize(("email", "late", "restores"), [
    ("member@example.test", dt.timedelta(hours=7, minutes=59), True),
    ("member@example.test", dt.timedelta(hours=8, minutes=2), False),       # member idle: 8 h
    ("owner@example.test", dt.timedelta(minutes=29), True),
    ("owner@example.test", dt.timedelta(minutes=32), False),                # privileged: 30 min
])
def test_a_remember_me_cookie_of_a_closed_browser_obeys_the_idle_timeout(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace, email: str,
        late: dt.timedelta, restores: bool) -> None:
    """The browser that signed in is closed and never comes back, so nothing marks its
    session idle: the remember-me cookie must not restore it past the workspace's idle
    timeout (the strictest of the account's workspaces, privileged or not), or closing
    the browser would beat the timeout."""
    browser = sign_in(app, email, remember=True)
    cookie = browser.get_cookie("remember_token", domain=DOMAIN)
    assert cookie is not None
    clock.now = T0 + late
    page = replay_remember_cookie(app, cookie.value)
    if restores:
        assert page.status_code == 200, page.status_code
    else:
        assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_a_remember_me_cookie_of_a_closed_browser_obeys_the_absolute_lifetime(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace) -> None:
    browser = sign_in(app, "member@example.test", remember=True)
    cookie = browser.get_cookie("remember_token", domain=DOMAIN)
    assert cookie is not None
    for hours in range(1, 7 * 24, 6):  # active in another tab of the browser, every 6 hours
        clock.now = T0 + dt.timedelta(hours=hours)
        assert_alive(browser)
    clock.now = T0 + dt.timedelta(days=7, minutes=1)  # past the member's 7 days
    page = replay_remember_cookie(app, cookie.value)
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_a_restoration_keeps_the_absolute_lifetime_of_the_session_it_replaces(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace) -> None:
    """Closing and reopening the browser every few hours restores a new session from the
    remember-me cookie each time; each keeps the first one's start, so the member's
    7 days still end the visit."""
    client = sign_in(app, "member@example.test", remember=True)
    for hours in range(6, 7 * 24, 6):
        clock.now = T0 + dt.timedelta(hours=hours)
        client.delete_cookie("session", domain=DOMAIN)  # the browser was closed
        assert_alive(client)
    clock.now = T0 + dt.timedelta(days=7, minutes=1)
    client.delete_cookie("session", domain=DOMAIN)
    page = client.get("/leads/")
    assert page.status_code == 302 and "/login" in page.headers["Location"]


def test_a_restoration_binds_a_new_remember_me_cookie(app: Flask, world: SimpleNamespace) -> None:
    """A restoration retires the session the cookie was bound to and writes a cookie bound to
    the new one: the old cookie restores nothing, and signing the new session out from the
    list ends the new cookie too."""
    client = sign_in(app, "member@example.test", remember=True)
    first = client.get_cookie("remember_token", domain=DOMAIN)
    assert first is not None
    client.delete_cookie("session", domain=DOMAIN)  # the browser was closed
    assert_alive(client)
    second = client.get_cookie("remember_token", domain=DOMAIN)
    assert second is not None and second.value != first.value
    assert [r.revoked_at is not None for r in rows(world.users["member"])] == [True, False]
    page = replay_remember_cookie(app, first.value)
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    assert_alive(client)
    other = sign_in(app, "member@example.test")
    assert other.post("/settings/account/sessions/sign-out",
                      data={"session_id": row_of(client).id}).status_code == 302
    page = replay_remember_cookie(app, second.value)
    assert page.status_code == 302 and "/login" in page.headers["Location"]


# -- timeouts ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "idle", "absolute"), [
    ("owner", 30, 12 * 60),            # privileged
    ("member", 8 * 60, 7 * 24 * 60),   # ordinary
])
def test_idle_timeout_boundary(app: Flask, world: SimpleNamespace, clock: SimpleNamespace,
                               key: str, idle: int, absolute: int) -> None:
    # The limit is the idle timeout plus the touch slack (60 s here): the stored
    # last-seen time may trail the last request by that much.
    alive = sign_in(app, f"{key}@example.test")
    late = sign_in(app, f"{key}@example.test")
    clock.now = T0 + dt.timedelta(minutes=idle + 1)
    assert_alive(alive)                      # exactly at the limit: still alive
    clock.now = T0 + dt.timedelta(minutes=idle + 1, seconds=1)
    assert_ended(late, "idle")               # one second after: ended
    assert row_of(alive).revoked_at is None
    [event] = revoked_events(reason="idle")
    assert event.detail["count"] == 1


@pytest.mark.parametrize(("key", "idle", "absolute"), [
    ("owner", 30, 12 * 60),
    ("member", 8 * 60, 7 * 24 * 60),
])
def test_absolute_lifetime_boundary(app: Flask, world: SimpleNamespace, clock: SimpleNamespace,
                                    key: str, idle: int, absolute: int) -> None:
    client = sign_in(app, f"{key}@example.test")
    S = rbac.models.AuthSession

    def active_until(at: dt.datetime) -> None:
        """The member kept working: their last request was a minute before ``at``."""
        db.session.execute(sa.update(S).where(S.id == row_of(client).id)
                           .values(last_seen_at=at - dt.timedelta(minutes=1)))
        db.session.commit()
        clock.now = at

    active_until(T0 + dt.timedelta(minutes=absolute))
    assert_alive(client)
    active_until(T0 + dt.timedelta(minutes=absolute, seconds=1))
    assert_ended(client, "expired")
    assert revoked_events(reason="expired")


def test_a_workspace_policy_sets_the_timeouts(app: Flask, world: SimpleNamespace,
                                              clock: SimpleNamespace) -> None:
    set_policy(world.ws, idle_minutes_member=5)
    client = sign_in(app, "member@example.test")
    clock.now = T0 + dt.timedelta(minutes=5, seconds=31)  # 5 minutes and their 30 s slack
    assert_ended(client, "idle")


def test_a_member_active_within_the_idle_timeout_stays_signed_in(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace) -> None:
    """One minute idle, a request every 45 s: the session lives on however the
    last-seen writes fall, and ends only a full minute after the last request."""
    set_policy(world.ws, idle_minutes_member=1)
    client = sign_in(app, "member@example.test")
    for step in range(1, 9):
        clock.now = T0 + dt.timedelta(seconds=45 * step)
        assert_alive(client)
    last = clock.now
    for seconds in (1, 30, 59, 60):
        clock.now = last + dt.timedelta(seconds=seconds)
        assert_alive(client)
        last = clock.now
    clock.now = last + dt.timedelta(minutes=1, seconds=7)  # past the minute and its 6 s slack
    assert_ended(client, "idle")


def test_last_seen_is_written_at_most_once_a_minute(app: Flask, world: SimpleNamespace,
                                                    clock: SimpleNamespace) -> None:
    client = sign_in(app, "member@example.test")
    clock.now = T0 + dt.timedelta(seconds=59)
    assert_alive(client)
    assert row_of(client).last_seen_at == T0
    statements: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)
    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert_alive(client)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    assert not [s for s in statements if "rbac_session" in s and s.lstrip().upper()
                .startswith(("UPDATE", "INSERT"))]
    clock.now = T0 + dt.timedelta(seconds=60)
    assert_alive(client)
    assert row_of(client).last_seen_at == T0 + dt.timedelta(seconds=60)


# -- cap ---------------------------------------------------------------------------------------


def test_the_cap_revokes_the_oldest_sessions(app: Flask, world: SimpleNamespace,
                                             clock: SimpleNamespace) -> None:
    set_policy(world.ws, max_sessions=2)
    clients = []
    for minute in range(3):
        clock.now = T0 + dt.timedelta(minutes=minute)
        clients.append(sign_in(app, "member@example.test"))
    assert_ended(clients[0])
    assert_alive(clients[1])
    assert_alive(clients[2])
    [event] = revoked_events(reason="cap")
    assert event.detail["count"] == 1


# -- the profile ---------------------------------------------------------------------------------


def test_the_profile_lists_and_signs_out_sessions(app: Flask, world: SimpleNamespace) -> None:
    here = sign_in(app, "member@example.test")
    phone = sign_in(app, "member@example.test", agent=(
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"))
    laptop = sign_in(app, "member@example.test", agent=(
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"))
    page = here.get("/settings/profile").text
    assert "Safari on iPhone" in page and "Firefox on Linux" in page
    assert page.count("This browser</span>") == 1 and "Sign out everywhere else" in page

    phone_id = row_of(phone).id
    assert here.post("/settings/account/sessions/sign-out",
                     data={"session_id": phone_id}).status_code == 302
    assert_ended(phone)
    assert_alive(laptop)
    assert here.post("/settings/account/sessions/sign-out-others").status_code == 302
    assert_ended(laptop, reason=None)  # the demo rotates its login id too
    assert_alive(here)
    assert revoked_events(reason="sign_out_everywhere")[0].detail["count"] == 1
    assert [r for r in rows(world.users["member"]) if r.revoked_at is None] == [row_of(here)]


def test_another_accounts_session_is_a_404(app: Flask, world: SimpleNamespace) -> None:
    mine = sign_in(app, "member@example.test")
    theirs = sign_in(app, "member2@example.test")
    response = mine.post("/settings/account/sessions/sign-out",
                         data={"session_id": row_of(theirs).id})
    assert response.status_code == 404
    assert_alive(theirs)


def test_a_bad_session_id_is_a_400_naming_the_field(app: Flask, world: SimpleNamespace) -> None:
    client = sign_in(app, "member@example.test")
    for data in ({}, {"session_id": "abc"}):
        response = client.post("/settings/account/sessions/sign-out", data=data)
        assert response.status_code == 400 and "session_id" in response.text
    assert_alive(client)
    assert not revoked_events()


def test_signing_out_this_browser_from_the_list(app: Flask, world: SimpleNamespace) -> None:
    client = sign_in(app, "member@example.test")
    response = client.post("/settings/account/sessions/sign-out",
                           data={"session_id": row_of(client).id})
    assert response.status_code == 302
    assert client.get("/leads/").status_code == 302
    assert revoked_events(reason="signed_out")


# -- the member page -----------------------------------------------------------------------------


def test_an_admin_signs_a_member_out_everywhere(app: Flask, world: SimpleNamespace,
                                               login: Any) -> None:
    one, two = sign_in(app, "member@example.test"), sign_in(app, "member@example.test")
    admin = login(world.users["admin"])
    url = f"/settings/members/{world.members['member'].id}"
    assert "signed in on <strong data-session-count>2</strong>" in admin.get(url).text
    assert admin.post(url + "/sessions/sign-out").status_code == 302
    assert_ended(one, reason=None)
    assert_ended(two, reason=None)
    [event] = revoked_events(reason="admin")
    assert event.detail["count"] == 2 and event.actor_user_id == world.users["admin"].id
    assert event.workspace_id == world.ws.id


def test_an_admin_may_not_sign_an_owner_out(app: Flask, world: SimpleNamespace,
                                            login: Any) -> None:
    owner = sign_in(app, "owner@example.test")
    admin = login(world.users["admin"])
    url = f"/settings/members/{world.members['owner'].id}"
    assert "/sessions/sign-out" not in admin.get(url).text
    assert admin.post(url + "/sessions/sign-out").status_code == 403
    assert_alive(owner)
    assert not revoked_events()
    owner_client = login(world.users["owner"])
    assert owner_client.post(
        f"/settings/members/{world.members['admin'].id}/sessions/sign-out").status_code == 302
    assert_ended(admin, reason=None)


def test_without_members_manage_there_is_no_sessions_card(app: Flask, world: SimpleNamespace,
                                                          login: Any) -> None:
    manager = login(world.users["manager"])  # members.view, not manage
    url = f"/settings/members/{world.members['member'].id}"
    page = manager.get(url)
    assert page.status_code == 200 and "member-sessions" not in page.text
    assert manager.post(url + "/sessions/sign-out").status_code == 403


def test_another_workspaces_member_is_a_404(app: Flask, world: SimpleNamespace,
                                            login: Any) -> None:
    outsider_membership = db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.user_id == world.users["outsider"].id))
    admin = login(world.users["admin"])
    response = admin.post(f"/settings/members/{outsider_membership.id}/sessions/sign-out")
    assert response.status_code == 404


# -- password change -----------------------------------------------------------------------------


@pytest.mark.parametrize("tick", [True, False])
def test_a_password_change_ends_the_other_sessions_when_ticked(
        app: Flask, world: SimpleNamespace, tick: bool) -> None:
    here = sign_in(app, "member@example.test")
    other = sign_in(app, "member@example.test")
    other_row = row_of(other)
    form = {"name": "Member", "current_password": "password", "new_password": NEW_PASSWORD,
            **({"sign_out_others": "y"} if tick else {})}
    response = here.post("/settings/profile", data=form)
    assert response.status_code == 302, response.text[:500]
    assert_alive(here)
    db.session.expire_all()
    revoked = db.session.get(rbac.models.AuthSession, other_row.id).revoked_at is not None
    assert revoked is tick
    assert bool(revoked_events(reason="password_changed")) is tick
    # In the demo too: the other browser lives on exactly when the box was left unticked.
    if tick:
        assert_ended(other, reason=None)
    else:
        assert_alive(other)


def test_the_profile_states_the_password_rule_and_ticks_the_box(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    page = login(world.users["member"]).get("/settings/profile").text
    assert "Sign out my other sessions" in page
    assert 'id="sign_out_others" name="sign_out_others" type="checkbox" value="y"' in page
    assert 'checked' in page.split('id="sign_out_others"')[0][-200:] + page.split(
        'id="sign_out_others"')[1][:100]
    assert "At least 12 characters" in page


# -- tokens, adoption, signal --------------------------------------------------------------------


def test_bearer_tokens_have_no_session(app: Flask, world: SimpleNamespace) -> None:
    _, plaintext = tokens.create_token(rbac, world.members["member"], "sessions test")
    db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get("/api/v1/records/leads", headers=headers).status_code == 200
    assert rows(world.users["member"]) == []
    browser = sign_in(app, "member@example.test")
    sessions.revoke_all(rbac, world.users["member"].id, except_current=False, by=None,
                        reason="sign_out_everywhere")
    db.session.commit()
    assert_ended(browser, reason=None)
    assert client.get("/api/v1/records/leads", headers=headers).status_code == 200


def test_a_flask_login_test_client_session_is_adopted(app: Flask, world: SimpleNamespace,
                                                      login: Any) -> None:
    client = login(world.users["member"])
    assert sid_of(client) is None
    assert_alive(client)
    sid = sid_of(client)
    assert sid is not None and len(rows(world.users["member"])) == 1
    assert_alive(client)
    assert sid_of(client) == sid and len(rows(world.users["member"])) == 1
    sessions.revoke(rbac, row_of(client).id, by=None, reason="signed_out")
    db.session.commit()
    assert_ended(client)  # the id is there and revoked: never adopted again


def test_every_revocation_sends_the_signal(app: Flask, world: SimpleNamespace) -> None:
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)
    signals.session_revoked.connect(receiver, app)
    try:
        client = sign_in(app, "dual@example.test")  # a member of two workspaces
        client.post("/logout")
    finally:
        signals.session_revoked.disconnect(receiver, app)
    [sent] = received
    assert sent["reason"] == "signed_out" and sent["count"] == 1
    assert sent["user_id"] == world.users["dual"].id and sent["by"] is None
    events = revoked_events(reason="signed_out")
    assert sorted(e.workspace_id for e in events) == sorted([world.ws.id, world.ws2.id])


def test_devices_are_named_from_the_user_agent() -> None:
    assert devices.describe(CHROME_WIN) == "Chrome on Windows"
    assert devices.describe("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 "
                            "(KHTML, like Gecko) Version/17.4 Safari/605.1.15") == "Safari on macOS"
    assert devices.describe("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/124.0 "
                            "Mobile Safari/537.36 EdgA/124.0") == "Edge on Android"
    assert devices.describe("") == "Unknown browser on unknown device"


@pytest.mark.parametrize("idle, kept", [(20, True), (45, False)])
def test_a_switch_into_a_stricter_workspace_judges_the_idle_time_by_it(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace, idle: int,
        kept: bool) -> None:
    """``dual`` owns Beta (privileged there: 30 minutes idle) and is a Viewer of Acme
    (8 hours). A session left idle in Acme for longer than Beta allows ends when it
    switches into Beta, instead of acting as Beta's Owner."""
    client = sign_in(app, "dual@example.test")
    to_acme = client.post("/settings/workspace", data={"workspace_id": str(world.ws.id)})
    assert to_acme.status_code == 302 and "/login" not in to_acme.headers["Location"]
    clock.now = T0 + dt.timedelta(minutes=idle)
    to_beta = client.post("/settings/workspace", data={"workspace_id": str(world.ws2.id)})
    page = client.get("/settings/security")
    if kept:
        assert to_beta.status_code == 302 and "/login" not in to_beta.headers["Location"]
        assert page.status_code == 200
    else:
        assert to_beta.status_code == 302 and "/login" in to_beta.headers["Location"]
        assert page.status_code == 302 and "/login" in page.headers["Location"]
        (row,) = rows(world.users["dual"])
        assert row.revoked_at is not None


def test_a_password_change_keeps_the_sessions_absolute_start(app: Flask, world: SimpleNamespace,
                                                             clock: Any) -> None:
    """The profile signs the member in again after a password change, with a new session
    id: the session still ends where it would have, counted from the sign-in, so
    changing the password (no MFA code asked) never stretches a session."""
    client = sign_in(app, "member@example.test")
    first = row_of(client)
    clock.now = T0 + dt.timedelta(days=7) - dt.timedelta(minutes=2)  # the member's limit: 7 days
    S = rbac.models.AuthSession
    db.session.execute(sa.update(S).where(S.id == first.id)
                       .values(last_seen_at=clock.now - dt.timedelta(minutes=1)))
    db.session.commit()
    changed = client.post("/settings/profile", data={
        "name": "Member", "current_password": "password",
        "new_password": "violet tapestry harbour 1987!"})
    assert changed.status_code == 302
    renewed = row_of(client)
    assert renewed.id != first.id and renewed.created_at == first.created_at
    clock.now = T0 + dt.timedelta(days=7) + dt.timedelta(minutes=5)
    assert_ended(client, "expired")
