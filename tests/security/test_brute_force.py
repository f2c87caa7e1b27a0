"""The attack battery's brute-force run: many wrong passwords, then the right one.

The attacker drives the demo's real login page (CSRF token and all, through
``csrf_app``). Two runs, each ending with the right password:

* **the database throttle alone** (the per-IP rate limit lifted, the clock
  of ``rbac.auth`` frozen so the figures are exact): 200 wrong passwords
  from one address, then one guess from each of 50 more addresses (as a
  botnet would), then the right password. After the free allowance every
  attempt is refused without its password being checked, so the right one is
  refused too while the account waits; once the wait has passed it signs in.
* **with the per-IP rate limit** (``RBAC_SIGN_IN_RATE_LIMIT``, default "20
  per minute"): 60 wrong passwords and the right one from one address, cut
  off with 429 after its 20th attempt.

The counts (attempts made, passwords checked, attempts throttled or rate
limited, attackers let in) go to the battery summary.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.rbac_setup import rbac
from crm_rbac_plugin.security import throttle

EMAIL = "owner@example.test"
RIGHT = "password"  # the world's password
T0 = dt.datetime(2026, 12, 1, 9, 0, 0)


def token(client: Any, ip: str) -> str:
    page = client.get("/login", environ_base={"REMOTE_ADDR": ip}).text
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match, "the login form carries a CSRF token"
    return match.group(1)


def attempt(client: Any, csrf: str, password: str, ip: str) -> str:
    """One sign-in attempt; return what happened: checked, throttled, limited or in."""
    response = client.post("/login", data={"csrf_token": csrf, "email": EMAIL,
                                           "password": password},
                           environ_base={"REMOTE_ADDR": ip})
    if response.status_code == 302:
        return "in"
    if response.status_code == 429:
        return "limited" if "from your address" in response.text else "throttled"
    assert response.status_code == 200 and "do not match an account" in response.text
    return "checked"


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    state = SimpleNamespace(now=T0)
    monkeypatch.setattr(rbac.auth, "clock", lambda: state.now)
    return state


def record(probe_stats: Counter[str], outcomes: Counter[str]) -> None:
    probe_stats["brute_force_attempts"] += sum(outcomes.values())
    probe_stats["brute_force_checked"] += outcomes["checked"]
    probe_stats["brute_force_throttled"] += outcomes["throttled"]
    probe_stats["brute_force_limited"] += outcomes["limited"]


def test_two_hundred_wrong_passwords_then_the_right_one_is_refused(
        csrf_app: Flask, csrf_world: Any, frozen: SimpleNamespace,
        probe_stats: Counter[str]) -> None:
    csrf_app.config["RBAC_SIGN_IN_RATE_LIMIT"] = None  # the database throttle alone
    client = csrf_app.test_client()
    csrf = token(client, "203.0.113.5")
    outcomes: Counter[str] = Counter()
    for n in range(200):
        outcomes[attempt(client, csrf, f"guess-{n}", "203.0.113.5")] += 1
    for n in range(50):  # a botnet: one guess from each of 50 addresses
        outcomes[attempt(client, csrf, f"spread-{n}", f"198.51.100.{n + 1}")] += 1
    right = attempt(client, csrf, RIGHT, "192.0.2.99")
    outcomes[right] += 1
    record(probe_stats, outcomes)
    probe_stats["brute_force_let_in"] += outcomes["in"]
    assert right == "throttled"  # the right password, while the account waits
    # Only the free allowance had its password checked.
    assert outcomes == Counter({"checked": 5, "throttled": 246})
    wait = throttle.check(rbac, EMAIL, "192.0.2.99", now=frozen.now)
    assert wait.wait_seconds == 1 and wait.scope == "account"
    frozen.now = T0 + dt.timedelta(seconds=1)
    assert attempt(client, csrf, RIGHT, "192.0.2.99") == "in"  # the owner, once it passed


def test_the_rate_limit_cuts_one_address_off_after_twenty_attempts(
        csrf_app: Flask, csrf_world: Any, frozen: SimpleNamespace,
        probe_stats: Counter[str]) -> None:
    assert csrf_app.config["RBAC_SIGN_IN_RATE_LIMIT"] == "20 per minute"
    client = csrf_app.test_client()
    csrf = token(client, "203.0.113.6")
    outcomes: Counter[str] = Counter()
    for n in range(60):
        outcomes[attempt(client, csrf, f"guess-{n}", "203.0.113.6")] += 1
    right = attempt(client, csrf, RIGHT, "203.0.113.6")
    outcomes[right] += 1
    record(probe_stats, outcomes)
    probe_stats["brute_force_let_in"] += outcomes["in"]
    assert right == "limited"
    assert outcomes == Counter({"checked": 5, "throttled": 15, "limited": 41})
