"""The session's MFA check belongs to one server session, through the real login form.

The attacks (SQLite and PostgreSQL):

* A copy of an enrolled user's session cookie, taken after they entered a
  code, carries the signed check. Once that session is dead (signed out,
  or signed out everywhere from another browser), signing in with the
  password alone through the copy must still ask for a code: a check counts
  only in the server session that passed it.
* The one sign-in that keeps the check is the same user's, in the same live
  session: the profile signs in again after a password change.
* Five wrong codes in a row end the session (the README's rule).
* A pending TOTP secret belongs to the session that started the set-up and
  expires: another session (a thief's) never sees the secret the member
  confirms.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pyotp
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.security import mfa, sessions
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_mfa import MFA_PAGE, VERIFY_PAGE, enrolled_directly, secret_on_page
from tests.test_sessions import copy_of

DOMAIN = "crm.test"  # the tests' SERVER_NAME
ADMIN_PAGE = "/settings/roles"
NEW_PASSWORD = "violet tapestry harbour 1987!"


def password_sign_in(app: Flask, email: str, client: FlaskClient | None = None) -> FlaskClient:
    """Sign in through the demo's login form with the password alone."""
    client = client or app.test_client()
    response = client.post("/login", data={"email": email, "password": "password"})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


def asks_for_a_code(client: FlaskClient) -> bool:
    response = client.get(ADMIN_PAGE)
    return response.status_code == 302 and response.location.startswith(VERIFY_PAGE)


def signed_in_with_code(app: Flask, code: str) -> FlaskClient:
    """The admin signed in with the password, then a (recovery) code."""
    client = password_sign_in(app, "admin@example.test")
    assert asks_for_a_code(client)
    assert client.post(VERIFY_PAGE, data={"code": code}).status_code == 302
    assert client.get(ADMIN_PAGE).status_code == 200
    return client


def test_a_copied_cookie_of_a_signed_out_session_needs_a_code(
        app: Flask, world: SimpleNamespace) -> None:
    _, codes = enrolled_directly(world.users["admin"])
    victim = signed_in_with_code(app, codes[0])
    thief = copy_of(app, victim)
    assert victim.post("/logout").status_code == 302
    assert thief.get(ADMIN_PAGE).status_code == 302  # the copy alone is anonymous
    password_sign_in(app, "admin@example.test", thief)  # the password, phished
    assert asks_for_a_code(thief), "a password sign-in through a copied cookie skipped MFA"
    assert thief.get("/api/v1/members").status_code == 401


def test_a_copied_cookie_of_a_session_signed_out_elsewhere_needs_a_code(
        app: Flask, world: SimpleNamespace) -> None:
    """Sign-out everywhere ends the session without Flask-Login's sign-out in that browser."""
    _, codes = enrolled_directly(world.users["admin"])
    victim = signed_in_with_code(app, codes[0])
    thief = copy_of(app, victim)
    here = signed_in_with_code(app, codes[1])
    assert here.post("/settings/account/sessions/sign-out-others").status_code == 302
    password_sign_in(app, "admin@example.test", thief)
    assert asks_for_a_code(thief)


def test_the_check_counts_only_in_its_own_server_session(
        app: Flask, world: SimpleNamespace) -> None:
    """A check moved into another live session's cookie counts for nothing there."""
    _, codes = enrolled_directly(world.users["admin"])
    checked = signed_in_with_code(app, codes[0])
    other = password_sign_in(app, "admin@example.test")
    with checked.session_transaction() as sess:
        check = sess["rbac_mfa"]
    with other.session_transaction() as sess:
        sess["rbac_mfa"] = check
    assert asks_for_a_code(other)
    assert checked.get(ADMIN_PAGE).status_code == 200


def test_a_password_change_keeps_this_sessions_check(app: Flask, world: SimpleNamespace) -> None:
    """The profile signs in again after a password change: same person, same live session."""
    _, codes = enrolled_directly(world.users["admin"])
    here = signed_in_with_code(app, codes[0])
    with here.session_transaction() as sess:
        before = sess["rbac_sid"]
    form = {"name": "Admin", "current_password": "password", "new_password": NEW_PASSWORD,
            "sign_out_others": "y"}
    assert here.post("/settings/profile", data=form).status_code == 302
    with here.session_transaction() as sess:
        after = sess["rbac_sid"]
        assert sess["rbac_mfa"]["sid"] == sessions.sid_hash(after)
    assert after != before
    assert here.get(ADMIN_PAGE).status_code == 200
    db.session.expire_all()
    assert sessions.live_count(rbac, world.users["admin"].id) == 1


# -- the pending secret of an enrolment ------------------------------------------------------------


def test_a_pending_secret_is_never_shown_to_another_session(
        app: Flask, world: SimpleNamespace) -> None:
    """A thief's session saw a pending secret; the member's own set-up gets another one."""
    thief = password_sign_in(app, "member@example.test")
    seen = secret_on_page(thief.get(MFA_PAGE).text)
    member = password_sign_in(app, "member@example.test")
    page = member.get(MFA_PAGE)
    secret = secret_on_page(page.text)
    assert secret != seen, "another session was shown the same pending secret"
    assert secret_on_page(member.get(MFA_PAGE).text) == secret  # stable within the attempt
    late = thief.post(MFA_PAGE, data={"code": pyotp.TOTP(seen).now()})
    assert late.status_code == 400 and mfa.mfa_status(
        rbac, [world.users["member"].id])[world.users["member"].id] == "pending"
    done = member.post(MFA_PAGE, data={"code": pyotp.TOTP(secret_on_page(
        member.get(MFA_PAGE).text)).now()})
    assert done.status_code == 200 and "Save your recovery codes" in done.text


def test_a_pending_secret_expires(app: Flask, world: SimpleNamespace) -> None:
    member = password_sign_in(app, "member@example.test")
    secret = secret_on_page(member.get(MFA_PAGE).text)
    C = rbac.models.MfaCredential
    cred = db.session.scalar(sa.select(C).where(C.user_id == world.users["member"].id))
    cred.created_at = utcnow() - dt.timedelta(days=1)  # far beyond PENDING_LIFETIME
    db.session.commit()
    late = member.post(MFA_PAGE, data={"code": pyotp.TOTP(secret).now()})
    assert late.status_code == 400 and "expired" in late.text
    fresh = secret_on_page(late.text)
    assert fresh != secret
    assert member.post(MFA_PAGE, data={"code": pyotp.TOTP(fresh).now()}).status_code == 200


# -- wrong codes ------------------------------------------------------------------------------------


def test_five_wrong_codes_in_a_row_end_the_session(app: Flask, world: SimpleNamespace) -> None:
    """Whoever holds the password alone is signed out, as the README says, not left guessing."""
    enrolled_directly(world.users["admin"])
    client = password_sign_in(app, "admin@example.test")
    for _ in range(4):
        assert client.post(VERIFY_PAGE, data={"code": "000000"}).status_code == 400
    fifth = client.post(VERIFY_PAGE, data={"code": "000000"})
    assert fifth.status_code == 302 and "/login" in fifth.location, fifth.status_code
    page = client.get(ADMIN_PAGE)
    assert page.status_code == 302 and "/login" in page.location  # signed out, not asked a code
    db.session.expire_all()
    S = rbac.models.AuthSession
    assert sessions.live_count(rbac, world.users["admin"].id) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(S)) == 1
    events = db.session.scalars(sa.select(rbac.models.AuditEvent.detail).where(
        rbac.models.AuditEvent.action == "session.revoked")).all()
    assert {e["reason"] for e in events} == {"mfa_failed"}
