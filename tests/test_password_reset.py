"""The password reset by mail: one answer for every address, a single-use expiring link,
the new password under the profile's rules, every session ended, nobody signed in.

Also the invitation form's password confirmation.
"""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer

from crm_app.extensions import db, mail
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.team import password_reset
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_mfa import VERIFY_PAGE, enrolled_directly
from tests.test_sessions import assert_alive, assert_ended, copy_of, sign_in
from tests.test_team import invite, link_token, membership

FORGOT = "/settings/password-reset"
STRONG = "violet tapestry harbour 1987!"
SAME_ANSWER = "If an account uses that address, we sent it a link"


def ask(client: FlaskClient, email: str, **headers: str) -> tuple[Any, list[Any]]:
    """POST the request form; return the response and the mails it sent."""
    with mail.record_messages() as outbox:
        response = client.post(FORGOT, data={"email": email}, headers=headers)
    return response, list(outbox)


def reset_path(message: Any) -> str:
    # On the site's address (the tests' SERVER_NAME), never on the request's Host.
    match = re.search(r"http://crm\.test(/settings/password-reset/[A-Za-z0-9_.\-]+)",
                      message.body)
    assert match, message.body
    return match.group(1)


def events(action: str) -> list[Any]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A).where(A.action == action).order_by(A.id)))


def password_hash(user: Any) -> str:
    db.session.expire_all()
    return str(db.session.get(type(user), user.id).password_hash)


def test_the_whole_flow(app: Flask, world: SimpleNamespace) -> None:
    anon = app.test_client()
    login_page = anon.get("/login")
    assert f'href="{FORGOT}"' in login_page.text and "Forgot your password?" in login_page.text
    form = anon.get(FORGOT)
    assert form.status_code == 200 and 'for="email"' in form.text
    # A Host other than the site's is refused before anything is sent; the link starts
    # with the site's address.
    refused, sent = ask(anon, "Member@Example.test", Host="evil.example")
    assert refused.status_code == 400 and sent == []
    response, [message] = ask(anon, "Member@Example.test")
    assert response.status_code == 200 and SAME_ANSWER in response.text
    assert message.recipients == ["member@example.test"]
    assert "evil.example" not in message.body + message.html
    path = reset_path(message)
    page = anon.get(path)
    assert page.status_code == 200 and "member@example.test" in page.text
    before = password_hash(world.users["member"])

    mismatch = anon.post(path, data={"password": STRONG, "confirm": STRONG + "x"})
    assert mismatch.status_code == 400
    assert re.search(r'id="confirm-errors">\s*<li>The two passwords do not match', mismatch.text)
    weak = anon.post(path, data={"password": "password1234", "confirm": "password1234"})
    assert weak.status_code == 400 and 'id="password-errors"' in weak.text
    assert password_hash(world.users["member"]) == before  # nothing written

    with mail.record_messages() as outbox:
        done = anon.post(path, data={"password": STRONG, "confirm": STRONG})
    assert done.status_code == 302 and done.location.endswith("/login")
    [notice] = outbox
    assert notice.recipients == ["member@example.test"] and "changed" in notice.subject
    assert anon.get("/leads/").status_code == 302  # the reset signs nobody in
    assert "was changed" in anon.get("/login").text
    # The link works once.
    used = anon.post(path, data={"password": STRONG + "2", "confirm": STRONG + "2"})
    assert used.status_code == 400 and f'href="{FORGOT}"' in used.text
    assert anon.get(path).status_code == 400
    # The old password no longer signs in; the new one does.
    assert anon.post("/login", data={"email": "member@example.test",
                                     "password": "password"}).status_code == 200
    signed = anon.post("/login", data={"email": "member@example.test", "password": STRONG})
    assert signed.status_code == 302 and "/login" not in signed.location
    [requested] = events("auth.reset_requested")
    assert requested.workspace_id == world.ws.id and requested.detail["sent"] is True
    assert requested.ip == "127.0.0.1"
    [reset] = events("auth.password_reset")
    assert reset.workspace_id == world.ws.id
    assert reset.actor_user_id == world.users["member"].id


def test_every_address_gets_the_same_answer_and_only_a_live_account_a_mail(
        app: Flask, world: SimpleNamespace) -> None:
    member = world.members["member2"]
    member.status = "inactive"  # deactivated
    world.users["viewer"].password_hash = ""  # no password (an invitee who never accepted)
    db.session.commit()
    anon = app.test_client()
    answers = []
    for email in ("nobody@example.test", "member2@example.test", "viewer@example.test",
                  "member@example.test"):
        response, outbox = ask(anon, email)
        assert response.status_code == 200
        answers.append((re.sub(r'name="csrf_token"[^>]*>', "", response.text)
                        .replace(email, "ADDRESS"), len(outbox)))
    assert [n for _, n in answers] == [0, 0, 0, 1]
    assert len({text for text, _ in answers}) == 1
    sent = {e.target or "unknown": (e.workspace_id, e.detail["sent"])
            for e in events("auth.reset_requested")}
    assert sent["unknown"] == (None, False)  # an unknown address: no workspace
    assert sent["member2@example.test"] == (world.ws.id, False)
    assert sent["member@example.test"] == (world.ws.id, True)
    # A malformed address is a 400 on its field, and writes nothing.
    bad = anon.post(FORGOT, data={"email": "not an address"})
    assert bad.status_code == 400 and 'id="email-errors"' in bad.text


def test_requests_are_limited_per_address_and_per_ip(app: Flask, world: SimpleNamespace) -> None:
    app.config["RBAC_SIGN_IN_RATE_LIMIT"] = "5 per minute"  # the form's limit per IP
    anon = app.test_client()
    counts = [len(ask(anon, "member@example.test")[1]) for _ in range(4)]
    assert counts == [1, 1, 1, 0]  # RBAC_PASSWORD_RESET_RATE_LIMIT: 3 per hour
    fourth = events("auth.reset_requested")[-1]
    assert fourth.detail == {**fourth.detail, "sent": False, "limited": True}
    response, outbox = ask(anon, "member@example.test")
    assert response.status_code == 200 and SAME_ANSWER in response.text and outbox == []

    refused, outbox = ask(anon, "owner@example.test")
    assert refused.status_code == 429 and refused.headers["Retry-After"] and outbox == []
    assert app.test_client().get(FORGOT).status_code == 200  # showing the form is free


def test_expired_forged_and_other_accounts_links_change_nothing(
        app: Flask, world: SimpleNamespace, monkeypatch: Any) -> None:
    anon = app.test_client()
    _, [message] = ask(anon, "member@example.test")
    path = reset_path(message)
    before = password_hash(world.users["member"])
    form = {"password": STRONG, "confirm": STRONG}

    monkeypatch.setattr(rbac.auth, "clock", lambda: utcnow() + dt.timedelta(minutes=31))
    expired = anon.post(path, data=form)
    assert expired.status_code == 400 and "expired" in expired.text
    assert f'href="{FORGOT}"' in expired.text
    monkeypatch.undo()
    assert anon.get(path).status_code == 200  # within RBAC_PASSWORD_RESET_MAX_AGE

    forged = anon.post(path[:-2] + ("AA" if not path.endswith("AA") else "BB"), data=form)
    assert forged.status_code == 404 and "not a valid" in forged.text
    stranger = URLSafeTimedSerializer("another key", salt=password_reset.RESET_SALT)
    token = stranger.dumps({"u": world.users["member"].id,
                            "f": password_reset.fingerprint(world.users["member"])})
    assert anon.post(f"{FORGOT}/{token}", data=form).status_code == 404
    # A genuine signature over another account's fingerprint opens neither account.
    ours = URLSafeTimedSerializer(app.secret_key, salt=password_reset.RESET_SALT)
    token = ours.dumps({"u": world.users["owner"].id,
                        "f": password_reset.fingerprint(world.users["member"])})
    other = anon.post(f"{FORGOT}/{token}", data=form)
    assert other.status_code == 400
    assert password_hash(world.users["member"]) == before
    assert events("auth.password_reset") == []
    # A link dies when the password changes another way.
    world.users["member"].set_password("another strong passphrase 42")
    db.session.commit()
    assert anon.get(path).status_code == 400


def test_the_current_password_is_refused(app: Flask, world: SimpleNamespace) -> None:
    world.users["member"].set_password(STRONG)
    db.session.commit()
    anon = app.test_client()
    _, [message] = ask(anon, "member@example.test")
    same = anon.post(reset_path(message), data={"password": STRONG, "confirm": STRONG})
    assert same.status_code == 400 and "current password" in same.text


def test_a_reset_ends_every_session_and_copied_cookies(app: Flask, world: SimpleNamespace) -> None:
    browser = sign_in(app, "member@example.test", remember=True)
    copy = copy_of(app, browser)
    assert_alive(browser)
    _, [message] = ask(app.test_client(), "member@example.test")
    done = app.test_client().post(reset_path(message), data={"password": STRONG,
                                                             "confirm": STRONG})
    assert done.status_code == 302
    assert_ended(browser, reason=None)
    assert_ended(copy, reason=None)
    assert [e.detail["reason"] for e in events("session.revoked")] == ["password_changed"]
    S = rbac.models.AuthSession
    assert db.session.scalar(sa.select(sa.func.count()).select_from(S).where(
        S.user_id == world.users["member"].id, S.revoked_at.is_(None))) == 0


def test_two_factor_is_still_asked_after_a_reset(app: Flask, world: SimpleNamespace) -> None:
    enrolled_directly(world.users["member"])
    anon = app.test_client()
    _, [message] = ask(anon, "member@example.test")
    assert anon.post(reset_path(message), data={"password": STRONG,
                                                "confirm": STRONG}).status_code == 302
    signed = anon.post("/login", data={"email": "member@example.test", "password": STRONG})
    assert signed.status_code == 302
    page = anon.get("/leads/")
    assert page.status_code == 302 and page.location.startswith(VERIFY_PAGE)


def test_the_invitation_form_asks_the_password_twice(app: Flask, world: SimpleNamespace,
                                                     login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    with mail.record_messages() as outbox:
        invite(owner, world, "twice@example.test", "member")
    path = f"/settings/invitations/{link_token(outbox[0].body)}"
    anon = app.test_client()
    assert 'name="confirm"' in anon.get(path).text
    wrong = anon.post(path, data={"name": "Twice", "password": STRONG, "confirm": STRONG + "!"})
    assert wrong.status_code == 400
    assert re.search(r'id="confirm-errors">\s*<li>The two passwords do not match', wrong.text)
    assert membership("twice@example.test", world.ws).status == "pending"
    right = anon.post(path, data={"name": "Twice", "password": STRONG, "confirm": STRONG})
    assert right.status_code == 302
    assert membership("twice@example.test", world.ws).status == "active"


def test_a_failing_mail_server_changes_neither_answer(app: Flask, world: SimpleNamespace,
                                                     monkeypatch: Any) -> None:
    anon = app.test_client()
    _, [message] = ask(anon, "member@example.test")
    path = reset_path(message)

    def down(message: Any) -> None:
        raise ConnectionRefusedError("the mail server is down")

    monkeypatch.setattr(app.extensions["mail"], "send", down)
    response, _ = ask(anon, "owner@example.test")
    assert response.status_code == 200 and SAME_ANSWER in response.text
    assert events("auth.reset_requested")[-1].detail["mail_failed"] is True
    done = anon.post(path, data={"password": STRONG, "confirm": STRONG})
    assert done.status_code == 302  # the password is changed; the notice is only logged
    assert events("auth.password_reset")
