"""Failed sign-ins wait longer and longer, per account and per IP, in the database.

The waits run on a controlled clock (``now=`` for the service, ``rbac.auth.clock``
for the demo's login page). Both backends; the concurrent counting test uses
a file database on SQLite, so that its threads have connections of their own.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import signals
from crm_rbac_plugin.security import throttle
from tests.conftest import app_with_tables
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

T0 = dt.datetime(2026, 12, 1, 9, 0, 0)
EMAIL = "owner@example.test"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


@pytest.mark.parametrize(("failures", "wait"), [
    (0, 0), (4, 0), (5, 1), (6, 2), (7, 4), (10, 32), (14, 512), (15, 900), (10_000, 900)])
def test_the_wait_doubles_after_the_allowance_up_to_the_cap(failures: int, wait: int) -> None:
    assert throttle.wait_after(failures, free=5, max_wait=900) == wait


def test_an_account_waits_1_2_4_seconds_and_a_success_resets_it(
        app: Flask, world: SimpleNamespace) -> None:
    for n in range(4):
        assert throttle.record_failure(rbac, EMAIL, "198.51.100.1", now=at(n)).wait_seconds == 0
    fifth = throttle.record_failure(rbac, EMAIL, "198.51.100.1", now=at(4))
    assert (fifth.wait_seconds, fifth.scope, fifth.failures) == (1, "account", 5)
    assert throttle.check(rbac, EMAIL, "198.51.100.2", now=at(4.5)).message == (
        "Too many attempts. Try again in 1 second.")
    assert throttle.check(rbac, EMAIL, "198.51.100.2", now=at(5)).allowed
    assert throttle.record_failure(rbac, EMAIL, "198.51.100.1", now=at(5)).wait_seconds == 2
    assert throttle.check(rbac, EMAIL, None, now=at(6)).wait_seconds == 1
    assert throttle.record_failure(rbac, EMAIL, "198.51.100.1", now=at(7)).wait_seconds == 4
    # The address is hashed: no row holds it.
    keys = set(db.session.scalars(sa.select(rbac.models.SignInThrottle.key)))
    assert keys == {throttle.account_key(EMAIL), "ip:198.51.100.1"} and not any(
        "owner" in k for k in keys)
    throttle.reset_account(rbac, EMAIL)
    assert throttle.check(rbac, EMAIL, "198.51.100.9", now=at(8)).allowed
    # The IP's count survives the account's success.
    assert throttle.failures_of(rbac, "ip:198.51.100.1").failures == 7


def test_one_address_guessing_many_accounts_waits_after_its_larger_allowance(
        app: Flask, world: SimpleNamespace) -> None:
    for n in range(19):
        throttle.record_failure(rbac, f"user{n}@example.test", "203.0.113.7", now=at(0))
    assert throttle.check(rbac, "fresh@example.test", "203.0.113.7", now=at(0)).allowed
    twentieth = throttle.record_failure(rbac, "user19@example.test", "203.0.113.7", now=at(0))
    assert (twentieth.wait_seconds, twentieth.scope) == (1, "ip")
    refused = throttle.check(rbac, "fresh@example.test", "203.0.113.7", now=at(0.5))
    assert (refused.wait_seconds, refused.scope) == (1, "ip")
    assert throttle.check(rbac, "fresh@example.test", "203.0.113.8", now=at(0.5)).allowed


def test_many_addresses_guessing_one_account_share_its_wait(
        app: Flask, world: SimpleNamespace) -> None:
    for n in range(5):
        throttle.record_failure(rbac, EMAIL, f"192.0.2.{n}", now=at(0))
    assert throttle.check(rbac, EMAIL.upper(), "192.0.2.200", now=at(0)).scope == "account"


def test_an_old_count_starts_again(app: Flask, world: SimpleNamespace) -> None:
    for _ in range(8):
        throttle.record_failure(rbac, EMAIL, "192.0.2.1", now=at(0))
    later = at(24 * 3600 + 1)
    assert throttle.record_failure(rbac, EMAIL, "192.0.2.1", now=later).failures == 1
    assert throttle.check(rbac, EMAIL, "192.0.2.1", now=later).allowed


@pytest.fixture
def file_app(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    url = (str(request.getfixturevalue("pg_url")) if backend == "postgresql"
           else f"sqlite:///{tmp_path / 'throttle.db'}")
    with app_with_tables(url) as app:
        yield app


def test_concurrent_failures_all_count(file_app: Flask) -> None:
    """Eight workers failing at once raise the count by eight: the increment is atomic."""
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def fail() -> None:
        try:
            with file_app.app_context():
                start.wait()
                throttle.record_failure(rbac, EMAIL, "192.0.2.50", now=at(0))
                db.session.commit()
                db.session.remove()
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=fail) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    db.session.remove()
    assert throttle.failures_of(rbac, throttle.account_key(EMAIL)).failures == 8
    assert throttle.check(rbac, EMAIL, "192.0.2.51", now=at(1)).wait_seconds == 8 - 1


# -- rbac.auth through the demo's login page -----------------------------------------------


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """``rbac.auth``'s clock, moved by hand: ``clock.now``."""
    state = SimpleNamespace(now=T0)
    monkeypatch.setattr(rbac.auth, "clock", lambda: state.now)
    return state


def sign_in(client: Any, email: str, password: str, ip: str = "198.51.100.77") -> Any:
    return client.post("/login", data={"email": email, "password": password},
                       environ_base={"REMOTE_ADDR": ip},
                       headers={"User-Agent": "pytest-attacker/1.0"})


def auth_events(action: str) -> list[Any]:
    A = rbac.models.AuditEvent
    return list(db.session.scalars(sa.select(A).where(A.action == action).order_by(A.id)))


def test_the_login_page_throttles_without_checking_the_password(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace,
        monkeypatch: pytest.MonkeyPatch) -> None:
    anon = app.test_client()
    for _ in range(5):
        page = sign_in(anon, EMAIL, "wrong")
        assert page.status_code == 200 and "do not match an account" in page.text
    checked: list[str] = []
    monkeypatch.setattr("crm_app.auth.verify_password",
                        lambda user, pw: checked.append(pw) or False)
    refused = sign_in(anon, EMAIL, "password")
    assert refused.status_code == 429
    assert "Too many attempts. Try again in 1 second." in refused.text
    assert checked == []  # the password was not even looked at
    monkeypatch.undo()
    monkeypatch.setattr(rbac.auth, "clock", lambda: clock.now)
    clock.now = at(1)
    assert sign_in(anon, EMAIL, "password").status_code == 302
    assert throttle.failures_of(rbac, throttle.account_key(EMAIL)) is None  # reset

    failed, throttled, login = (auth_events(a) for a in
                                ("auth.failed", "auth.throttled", "auth.login"))
    assert len(failed) == 5 and len(throttled) == 1 and len(login) == 1
    assert {e.workspace_id for e in failed + throttled + login} == {world.ws.id}
    assert all(e.ip == "198.51.100.77" and e.detail["user_agent"] == "pytest-attacker/1.0"
               for e in failed + throttled + login)
    assert failed[-1].detail["failures"] == 5 and throttled[0].detail["wait_seconds"] == 1
    assert login[0].actor_user_id == world.users["owner"].id and login[0].target == EMAIL


def test_an_unknown_address_gets_the_same_answer_as_a_wrong_password(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace) -> None:
    anon = app.test_client()
    pages = [sign_in(anon, email, "wrong") for email in (EMAIL, "nobody@example.test")]
    assert [p.status_code for p in pages] == [200, 200]
    assert "do not match an account" in pages[0].text and "do not match an account" in pages[1].text
    for _ in range(4):
        sign_in(anon, "nobody@example.test", "wrong")
    unknown = sign_in(anon, "nobody@example.test", "wrong")
    assert unknown.status_code == 429 and "Try again in 1 second." in unknown.text
    stray = [e for e in auth_events("auth.failed") if e.workspace_id is None]
    assert len(stray) == 5 and all(e.target == "" and e.detail["account"] == "unknown"
                                   for e in stray)


@pytest.mark.parametrize("how", ["account", "membership"])
def test_a_deactivated_account_fails_like_a_wrong_password(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace, how: str) -> None:
    """The right password of a deactivated account (the account itself, or its only
    membership) is audited and counted as a failure, with the wrong password's answer."""
    if how == "account":
        world.users["member"].is_active_user = False
    else:
        world.members["member"].status = "inactive"
    db.session.commit()
    email = "member@example.test"
    anon = app.test_client()
    for n in range(5):
        page = sign_in(anon, email, "password")
        assert page.status_code == 200 and "do not match an account" in page.text
        assert "deactivated" not in page.text
        assert throttle.failures_of(rbac, throttle.account_key(email)).failures == n + 1
    assert sign_in(anon, email, "password").status_code == 429
    failed = auth_events("auth.failed")
    assert len(failed) == 5 and {e.target for e in failed} == {email}
    assert auth_events("auth.login") == []


def test_a_member_of_two_workspaces_is_audited_in_both_and_owners_see_it(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace, login: Any) -> None:
    sign_in(app.test_client(), "dual@example.test", "wrong")
    assert {e.workspace_id for e in auth_events("auth.failed")} == {world.ws.id, world.ws2.id}
    page = login(world.users["owner"], world.ws).get("/settings/audit?action=auth.failed")
    assert page.status_code == 200 and "dual@example.test" in page.text


def test_the_signals_carry_the_attempt(app: Flask, world: SimpleNamespace,
                                       clock: SimpleNamespace) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []

    def receiver(name: str) -> Any:
        # The user's id is read while the request's session still holds it.
        return lambda sender, **kw: seen.append(
            (name, {**kw, "user_id": getattr(kw.get("user"), "id", None)}))

    receivers = {s: receiver(s.name) for s in (signals.sign_in_failed, signals.sign_in_throttled,
                                               signals.signed_in)}
    for signal, fn in receivers.items():
        signal.connect(fn, app)
    try:
        anon = app.test_client()
        for _ in range(5):
            sign_in(anon, EMAIL, "wrong")
        sign_in(anon, EMAIL, "password")
        clock.now = at(2)
        sign_in(anon, EMAIL, "password")
    finally:
        for signal, fn in receivers.items():
            signal.disconnect(fn, app)
    names = [name for name, _ in seen]
    assert names == ["rbac-sign-in-failed"] * 5 + ["rbac-sign-in-throttled", "rbac-signed-in"]
    assert seen[4][1]["throttle"].wait_seconds == 1 and seen[4][1]["user_id"] == world.users["owner"].id
    assert seen[-1][1]["ip"] == "198.51.100.77"


# -- the profile's current password --------------------------------------------------------------


def test_the_profiles_current_password_is_throttled_like_a_sign_in(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace, login: Any) -> None:
    """A stolen session guesses the password no faster on the profile than on the login page:
    failures count for the account, the 6th attempt waits (429, the password not checked),
    every wrong one is audited ``auth.failed``, and a wait also holds the login page."""
    client = login(world.users["owner"], world.ws)
    new = "violet tapestry harbour 1987!"

    def change(current: str) -> Any:
        return client.post("/settings/profile", environ_base={"REMOTE_ADDR": "198.51.100.78"},
                           data={"name": "Owner", "current_password": current,
                                 "new_password": new})

    for _ in range(5):
        wrong = change("wrong")
        assert wrong.status_code == 400 and "current password is not correct" in wrong.text
    refused = change("password")  # the right one, but the account waits
    assert refused.status_code == 429 and "Too many attempts. Try again in 1 second." in refused.text
    db.session.refresh(world.users["owner"])
    assert world.users["owner"].check_password("password")
    assert sign_in(app.test_client(), EMAIL, "password").status_code == 429
    failed, throttled = auth_events("auth.failed"), auth_events("auth.throttled")
    assert len(failed) == 5 and failed[-1].detail["failures"] == 5 and len(throttled) == 2
    assert {e.ip for e in failed} == {"198.51.100.78"}
    clock.now = at(1)
    assert change("password").status_code == 302
    db.session.refresh(world.users["owner"])
    assert world.users["owner"].check_password(new)


def test_the_ownership_transfers_password_is_throttled_like_a_sign_in(
        app: Flask, world: SimpleNamespace, clock: SimpleNamespace, login: Any) -> None:
    """The transfer's password check is no faster a password oracle than the login page,
    through the API and the page: failures count for the account, the 6th attempt waits
    (429, the password not checked, nothing transferred), each wrong one is ``auth.failed``."""
    client = login(world.users["owner"], world.ws)
    target = world.members["admin"].id
    ip = {"REMOTE_ADDR": "198.51.100.79"}

    def transfer(password: str) -> Any:
        return client.post("/api/v1/workspace/transfer", environ_base=ip,
                           json={"membership_id": target, "password": password})

    for _ in range(4):
        wrong = transfer("wrong")
        assert wrong.status_code == 400 and wrong.json["field"] == "password"
    page = client.post("/settings/lifecycle/transfer", environ_base=ip,
                       data={"membership_id": str(target), "password": "wrong"})
    assert page.status_code == 400 and "password is not correct" in page.text
    refused = transfer("password")  # the right one, but the account waits
    assert refused.status_code == 429 and refused.json["field"] == "password"
    assert "Too many attempts. Try again in 1 second." in refused.text
    assert client.post("/settings/lifecycle/transfer", environ_base=ip, data={
        "membership_id": str(target), "password": "password"}).status_code == 429
    db.session.expire_all()
    assert {mr.role.key for mr in world.members["owner"].member_roles} == {"owner"}
    failed, throttled = auth_events("auth.failed"), auth_events("auth.throttled")
    assert len(failed) == 5 and failed[-1].detail["failures"] == 5 and len(throttled) == 2
    assert {e.ip for e in failed} == {"198.51.100.79"}
    clock.now = at(1)
    done = transfer("password")
    assert done.status_code == 200, done.text[:300]
    assert done.json["owner_membership_id"] == target
