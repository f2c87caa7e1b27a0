"""Per-IP request limits on the sign-in and invitation routes (Flask-Limiter).

In one process with the default ``memory://`` storage, then between two
gunicorn workers sharing a Redis server (Debian's ``redis-server``, started
on loopback by :mod:`tests.redisserver`), which also share the database
throttle on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.extensions import db
from tests import gunicornserver
from tests.conftest import app_with_tables, build_world, empty_tables
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.redisserver import RedisServer, redis_available
from tests.test_multiworker import Browser


@pytest.fixture
def limited(database_url: str) -> Iterator[Flask]:
    with app_with_tables(database_url, RBAC_SIGN_IN_RATE_LIMIT="3 per minute") as app:
        build_world()
        yield app


def attempt(client: Any, path: str, ip: str, **kwargs: Any) -> Any:
    return client.post(path, data={"email": "owner@example.test", "password": "wrong"},
                       environ_base={"REMOTE_ADDR": ip}, **kwargs)


def test_the_sign_in_route_answers_429_past_the_limit_per_address(limited: Flask) -> None:
    client = limited.test_client()
    assert [attempt(client, "/login", "192.0.2.1").status_code for _ in range(3)] == [200] * 3
    refused = attempt(client, "/login", "192.0.2.1")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "Too many attempts from your address. Try again in" in refused.text
    as_json = attempt(client, "/login", "192.0.2.1", headers={"Accept": "application/json"})
    assert as_json.status_code == 429 and as_json.json["error"] == "rate_limited"
    assert as_json.json["retry_after"] >= 1
    # Another address has its own count, and showing the form is not an attempt.
    assert attempt(client, "/login", "192.0.2.2").status_code == 200
    assert client.get("/login", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 200


def test_invitation_links_have_their_own_count(limited: Flask) -> None:
    client = limited.test_client()
    for _ in range(3):
        attempt(client, "/login", "192.0.2.3")
    path = "/settings/invitations/not-a-real-token"
    assert [attempt(client, path, "192.0.2.3").status_code for _ in range(3)] == [404] * 3
    assert attempt(client, path, "192.0.2.3").status_code == 429


def test_mfa_codes_have_their_own_count(limited: Flask) -> None:
    """The code page checks a secret too: past the limit from one address it answers 429
    before the code is looked at, whoever posts (signed in or not)."""
    client = limited.test_client()
    path = "/settings/account/verify"

    def post() -> int:
        return client.post(path, data={"code": "000000"},
                           environ_base={"REMOTE_ADDR": "192.0.2.4"}).status_code

    assert 429 not in [post() for _ in range(3)]
    assert post() == 429


def test_other_requests_run_no_limiter_hook(limited: Flask) -> None:
    """Only the limited views count; Flask-Limiter's app-wide hooks are not installed."""
    hooks = [*limited.before_request_funcs.get(None, []),
             *limited.after_request_funcs.get(None, []),
             *limited.teardown_request_funcs.get(None, [])]
    assert not [h for h in hooks if "limit" in repr(h).lower()]


def test_no_limit_when_the_key_is_none(database_url: str) -> None:
    with app_with_tables(database_url, RBAC_SIGN_IN_RATE_LIMIT=None) as app:
        client = app.test_client()
        pages = [attempt(client, "/login", "192.0.2.4").text for _ in range(25)]
        # The database throttle still answers (after 5 failures), the rate limit never does.
        assert not any("from your address" in page for page in pages)


# -- shared between workers through Redis --------------------------------------------------

#: The last byte of each Redis test's client address, unique within the process.
_FRESH_HOSTS = itertools.count(1)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing on CI (.ci/run installs it)")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with RedisServer() as server:
        yield server.url


def test_two_app_instances_share_the_limit_through_redis(database_url: str,
                                                         redis_url: str) -> None:
    config = {"RBAC_SIGN_IN_RATE_LIMIT": "4 per minute", "RBAC_RATELIMIT_STORAGE_URI": redis_url}
    # An address of its own: the module's Redis keeps the other backend's run's counts
    # for the minute, and both runs may start within the same second.
    ip = f"198.18.{os.getpid() % 250}.{next(_FRESH_HOSTS)}"
    with app_with_tables(database_url, **config) as first:
        codes = [attempt(first.test_client(), "/login", ip).status_code for _ in range(2)]
    with app_with_tables(database_url, **config) as second:
        codes += [attempt(second.test_client(), "/login", ip).status_code for _ in range(3)]
    assert codes == [200, 200, 200, 200, 429]


@contextlib.contextmanager
def gunicorn_demo(pg_url: str, log_dir: Path, **env: str) -> Iterator[SimpleNamespace]:
    """The demo under gunicorn with two sync workers on a fresh world in ``pg_url``.

    ``env``: more ``FLASK_*`` settings (see :func:`tests.gunicornserver.serve`);
    ``base`` is the server's URL.
    """
    from crm_app.rbac_setup import rbac  # noqa: F401  (the models on db)
    from tests.conftest import make_app

    app = make_app(pg_url)
    with app.app_context():
        db.create_all()  # the module's database may already have the tables: start empty
        empty_tables()
        build_world()
        db.session.remove()
        db.engine.dispose()
    try:
        with gunicornserver.serve(pg_url, log_dir,
                                  FLASK_SECRET_KEY="rate-limit-test-secret-key-0123",
                                  **env) as base:
            yield SimpleNamespace(base=base)
    finally:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="module")
def workers(pg_url: str, redis_url: str,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """The demo under gunicorn with two workers, on PostgreSQL, rate limits in Redis."""
    with gunicorn_demo(pg_url, tmp_path_factory.mktemp("gunicorn"),
                       FLASK_RBAC_RATELIMIT_STORAGE_URI=redis_url,
                       FLASK_RBAC_SIGN_IN_RATE_LIMIT="30 per minute") as served:
        yield served


def csrf_token(browser: Browser) -> str:
    _, _, page = browser.request("/login")
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert match
    return match.group(1)


def burst(browser: Browser, path: str, data: dict[str, str], count: int) -> list[tuple[int, str]]:
    """``count`` simultaneous POSTs, so that both sync workers answer some."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return [(status, pid) for status, pid, _ in
                pool.map(lambda _: browser.request(path, data), range(count))]


@pytest.mark.postgres
@pytest.mark.slow
def test_two_gunicorn_workers_share_the_per_ip_limit(workers: SimpleNamespace) -> None:
    browser = Browser(workers.base)
    data = {"csrf_token": csrf_token(browser), "name": "x", "password": "y"}
    answers = burst(browser, "/settings/invitations/not-a-real-token", data, 24)
    answers += burst(browser, "/settings/invitations/not-a-real-token", data, 16)
    statuses = [status for status, _ in answers]
    assert len({pid for _, pid in answers}) == 2, answers  # both workers answered
    # 30 per minute in all, not 30 per worker.
    assert statuses.count(404) == 30 and statuses.count(429) == 10, statuses


@pytest.mark.postgres
@pytest.mark.slow
def test_two_gunicorn_workers_share_the_sign_in_throttle(workers: SimpleNamespace) -> None:
    browser = Browser(workers.base)
    token = csrf_token(browser)
    wrong = {"csrf_token": token, "email": "viewer@example.test", "password": "wrong"}
    counted = 0
    while counted < 8:  # eight failures: the account now waits 8 s
        status, _, page = browser.request("/login", wrong)
        if status == 200:
            counted += 1
        else:
            wait = re.search(r"Too many attempts. Try again in (\d+) second", page)
            assert status == 429 and wait, page[:500]
            time.sleep(int(wait.group(1)))
    right = {**wrong, "password": "password"}
    answers = [(status, pid, page) for status, pid, page in ThreadPoolExecutor(6).map(
        lambda _: browser.request("/login", right), range(6))]
    assert len({pid for _, pid, _ in answers}) == 2  # both workers answered
    # Whichever worker answers, the account waits: the right password is refused.
    assert all(status == 429 and "Too many attempts. Try again in" in page
               for status, _, page in answers)
