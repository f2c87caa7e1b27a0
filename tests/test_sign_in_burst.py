"""Guesses sent at once are throttled as if sent one after another.

An account that failed four times waits after its fifth failure: thirty
passwords posted at the same moment from thirty addresses get one password
checked, not one each, and the same holds for MFA codes from thirty
password-only sessions (``throttle.claim`` counts an attempt before its
check). A right password after failures takes nothing from the IP's count.
SQLite (a file: the threads get connections of their own) and PostgreSQL.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from werkzeug.security import check_password_hash

import crm_app.auth as auth
from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.security import mfa, throttle
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_mfa import VERIFY_PAGE, enrolled_directly

pytestmark = pytest.mark.sqlite_file
BURST = 30


def at_once(count: int, send: Any) -> list[int]:
    """Run ``send(i)`` for ``i`` in ``range(count)`` from as many threads, released together."""
    barrier = threading.Barrier(count, timeout=30)
    statuses: list[int] = []

    def run(i: int) -> None:
        barrier.wait()
        statuses.append(send(i))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.session.remove()
    return statuses


def test_a_burst_of_passwords_gets_one_checked(app: Flask, world: SimpleNamespace,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    checked: list[str] = []

    def slow_check(stored: str, password: str) -> bool:  # a real hash takes tens of ms
        checked.append(password)
        time.sleep(0.05)
        return check_password_hash(stored, password)

    monkeypatch.setattr(auth, "check_password_hash", slow_check)
    for _ in range(4):
        throttle.record_failure(rbac, "owner@example.test", "192.0.2.1")
    db.session.commit()
    db.session.remove()
    statuses = at_once(BURST, lambda i: app.test_client().post(
        "/login", data={"email": "owner@example.test", "password": f"guess{i}"},
        environ_base={"REMOTE_ADDR": f"198.51.100.{i + 1}"}).status_code)
    assert len(checked) == 1 and sorted(statuses) == [200] + [429] * (BURST - 1)
    row = throttle.failures_of(rbac, throttle.account_key("owner@example.test"))
    assert row.failures == 5  # the refused guesses are not counted


def test_a_burst_of_codes_gets_one_checked(app: Flask, world: SimpleNamespace,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    enrolled_directly(world.users["admin"])
    db.session.commit()
    uid = world.users["admin"].id
    checked: list[int] = []
    verify = mfa.verify

    def counting(*args: Any, **kwargs: Any) -> Any:
        checked.append(1)
        return verify(*args, **kwargs)

    monkeypatch.setattr(mfa, "verify", counting)
    clients = []
    for i in range(BURST):  # password-only sessions: the attacker knows the password
        client = app.test_client()
        signed = client.post("/login", data={"email": "admin@example.test",
                                             "password": "password"},
                             environ_base={"REMOTE_ADDR": f"203.0.113.{i + 1}"})
        assert signed.status_code == 302
        clients.append(client)
    name = mfa.throttle_name(uid)
    for _ in range(4):
        throttle.record_failure(rbac, name, "192.0.2.1", kind=throttle.MFA)
    db.session.commit()
    db.session.remove()
    statuses = at_once(BURST, lambda i: clients[i].post(
        VERIFY_PAGE, data={"code": f"{i:06d}"},
        environ_base={"REMOTE_ADDR": f"203.0.113.{i + 1}"}).status_code)
    assert len(checked) == 1 and statuses.count(429) == BURST - 1


def test_a_right_password_takes_nothing_from_the_ip(app: Flask, world: SimpleNamespace) -> None:
    client = app.test_client()
    ip = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(2):
        client.post("/login", data={"email": "owner@example.test", "password": "nope"},
                    environ_base=ip)
    ok = client.post("/login", data={"email": "owner@example.test", "password": "password"},
                     environ_base=ip)
    assert ok.status_code == 302
    assert throttle.failures_of(rbac, throttle.ip_key("198.51.100.7")).failures == 2
    assert throttle.failures_of(rbac, throttle.account_key("owner@example.test")) is None
