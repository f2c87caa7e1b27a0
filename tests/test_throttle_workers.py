"""The database sign-in throttle is one count for two gunicorn workers on PostgreSQL.

Flask-Limiter's per-IP limit is set out of reach here (its own sharing
through Redis is tests/test_rate_limits.py's), so every refusal comes from
:mod:`crm_rbac_plugin.security.throttle`. Failures answered by both workers
add up to one count in ``rbac_sign_in_throttle``, and the wait that count
sets refuses the right password on both workers.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from crm_rbac_plugin.security.throttle import account_key
from tests.test_multiworker import Browser
from tests.test_rate_limits import csrf_token, gunicorn_demo

FREE = 10  # failures before the first wait: enough for one burst to reach both workers
EMAIL = "viewer@example.test"
WAIT = re.compile(r"Too many attempts. Try again in (\d+) second")


@pytest.fixture(scope="module")
def served(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    with gunicorn_demo(pg_url, tmp_path_factory.mktemp("throttle"),
                       FLASK_RBAC_SIGN_IN_RATE_LIMIT="1000 per minute",
                       FLASK_RBAC_SIGN_IN_FREE_FAILURES=str(FREE)) as server:
        engine = sa.create_engine(pg_url)
        server.failures = lambda: _failures(engine)
        try:
            yield server
        finally:
            engine.dispose()


def _failures(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT failures FROM rbac_sign_in_throttle WHERE key = :key"),
            {"key": account_key(EMAIL)}).scalar() or 0)


@pytest.mark.postgres
@pytest.mark.slow
def test_failures_on_both_workers_add_up_and_the_wait_holds_on_both(
        served: SimpleNamespace) -> None:
    browser = Browser(served.base)
    wrong = {"csrf_token": csrf_token(browser), "email": EMAIL, "password": "wrong"}
    with ThreadPoolExecutor(FREE) as pool:
        burst = list(pool.map(lambda _: browser.request("/login", wrong), range(FREE)))
    assert [status for status, _, _ in burst] == [200] * FREE
    assert len({pid for _, pid, _ in burst}) == 2, burst  # both workers counted failures
    assert served.failures() == FREE  # one count, the sum of both workers'

    while served.failures() < FREE + 3:  # 1 s, 2 s, 4 s, then a wait of 8 s
        status, _, page = browser.request("/login", wrong)
        if status == 429:
            time.sleep(int(WAIT.search(page).group(1)))  # type: ignore[union-attr]
        else:
            assert status == 200
    right = {**wrong, "password": "password"}
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: browser.request("/login", right), range(6)))
    assert len({pid for _, pid, _ in answers}) == 2, answers
    assert all(status == 429 and WAIT.search(page) for status, _, page in answers)
    assert served.failures() == FREE + 3  # refused attempts are not counted
