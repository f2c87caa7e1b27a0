"""A browser that signed in to an account is not kept out by someone failing elsewhere.

Guesses from other addresses set the account's wait; the owner's browser,
which signed in before (its ``rbac_device`` cookie), is counted under a key of
its own and signs in; any other browser waits. A wrong password from the
known browser counts on its own key; a cookie for another address, or a
forged one, counts nothing of its own. SQLite and PostgreSQL.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Flask

from crm_app.rbac_setup import rbac
from crm_rbac_plugin.security import known_devices, throttle
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

OWNER = "owner@example.test"


def sign_in(client: Any, password: str, ip: str, email: str = OWNER) -> int:
    return int(client.post("/login", data={"email": email, "password": password},
                           environ_base={"REMOTE_ADDR": ip}).status_code)


def device_cookie(app: Flask, client: Any) -> Any:
    return client.get_cookie(known_devices.COOKIE, domain=app.config["SERVER_NAME"] or "localhost")


def known_browser(app: Flask) -> Any:
    """A browser that signed in to the owner's account, then signed out."""
    client = app.test_client()
    assert sign_in(client, "password", "192.0.2.10") == 302
    assert device_cookie(app, client) is not None
    client.post("/logout")
    return client


def lock_out(app: Flask) -> None:
    """Enough wrong passwords from elsewhere that the owner's account waits."""
    for i in range(8):
        sign_in(app.test_client(), "wrong", f"198.51.100.{i + 1}")
    assert sign_in(app.test_client(), "password", "198.51.100.99") == 429


def test_the_owners_browser_signs_in_while_the_account_waits(app: Flask,
                                                             world: SimpleNamespace) -> None:
    browser = known_browser(app)
    lock_out(app)
    assert sign_in(browser, "password", "192.0.2.10") == 302
    # The account's count is the attackers' still: a browser without the cookie waits.
    assert sign_in(app.test_client(), "password", "192.0.2.11") == 429
    assert throttle.failures_of(rbac, throttle.account_key(OWNER)).failures == 5  # not reset


def test_a_known_browser_guessing_waits_on_its_own_key(app: Flask,
                                                       world: SimpleNamespace) -> None:
    browser = known_browser(app)
    statuses = [sign_in(browser, "wrong", "192.0.2.10") for _ in range(7)]
    assert statuses[:5] == [200] * 5 and 429 in statuses[5:]
    assert throttle.failures_of(rbac, throttle.account_key(OWNER)) is None
    assert sign_in(app.test_client(), "password", "192.0.2.12") == 302  # elsewhere: no wait


def test_a_cookie_of_another_address_or_a_forged_one_counts_as_none(
        app: Flask, world: SimpleNamespace) -> None:
    browser = known_browser(app)
    lock_out(app)
    forged = app.test_client()
    forged.set_cookie(known_devices.COOKIE, device_cookie(app, browser).value + "x",
                      domain=app.config["SERVER_NAME"] or "localhost")
    assert sign_in(forged, "password", "192.0.2.13") == 429
    # The owner's cookie, typed with another account's address: that account's key.
    assert sign_in(browser, "wrong", "192.0.2.10", email="admin@example.test") == 200
    assert throttle.failures_of(rbac, throttle.account_key("admin@example.test")).failures == 1


def test_no_cookie_when_devices_are_not_remembered(app: Flask, world: SimpleNamespace) -> None:
    app.config["RBAC_SIGN_IN_DEVICE_DAYS"] = 0
    client = app.test_client()
    assert sign_in(client, "password", "192.0.2.14") == 302
    assert device_cookie(app, client) is None
