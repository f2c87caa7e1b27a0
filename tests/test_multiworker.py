"""A real deployment: PostgreSQL + gunicorn with two worker processes.

A role change made through one worker (an API call) must be enforced by every
worker on its very next request, although each had the member's effective
access cached: the workspace's policy version, bumped in the same
transaction as the change, tells them their copy is stale.
"""

from __future__ import annotations

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import flask_migrate
import pytest

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import sharing, tokens, workspaces
from tests import gunicornserver
from tests.conftest import build_world, make_app

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(scope="module")
def deployment(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    app = make_app(pg_url)
    with app.app_context():
        flask_migrate.upgrade()  # the production path: migrations, not create_all
        world = build_world()
        owner_token = tokens.create_token(rbac, world.members["owner"], "deploy test")[1]
        finance = workspaces.role_by_key(rbac, world.ws, "finance")
        # Acme shares its clients with Beta, whose Owner (dual) signs in there.
        acme_owner = rbac.access_for(world.members["owner"])
        agreement = sharing.create_agreement(rbac, acme_owner, workspace="beta",
                                             permissions=["clients.view"])
        agreement.status = "active"
        db.session.flush()
        info = SimpleNamespace(owner_token=owner_token, finance_id=finance.id,
                               junior_id=world.members["junior_rep"].id,
                               won_deals=sorted(d.title for d in world.deals.values()
                                                if d.stage == "won"),
                               agreement_id=agreement.id,
                               shared_client=world.clients["member"].name)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    try:
        with gunicornserver.serve(pg_url, tmp_path_factory.mktemp("gunicorn"),
                                  FLASK_SECRET_KEY="multiworker-test") as base:
            info.base = base
            yield info
    finally:
        with app.app_context():
            db.engine.dispose()


class Browser:
    """A cookie-keeping client; every request opens a new connection."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def request(self, path: str, data: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, body: bytes | None = None,
                method: str | None = None) -> tuple[int, str, str]:
        payload = body if body is not None else (
            urllib.parse.urlencode(data).encode() if data is not None else None)
        req = urllib.request.Request(self.base + path, data=payload, headers=headers or {},
                                     method=method)
        try:
            with self.opener.open(req, timeout=10) as resp:
                return resp.status, resp.headers.get("X-Worker-Pid", ""), resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("X-Worker-Pid", ""), err.read().decode()

    def login(self, email: str, password: str) -> None:
        _, _, page = self.request("/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, "the login form carries a CSRF token"
        status, _, _ = self.request("/login", {"csrf_token": token.group(1), "email": email,
                                               "password": password})
        assert status == 200


def statuses_per_worker(browser: Browser, path: str, *, rounds: int = 25) -> dict[str, set[int]]:
    """Request ``path`` in concurrent bursts until both workers have answered.

    A sync worker serves one request at a time, so a burst of simultaneous
    requests spreads over both; sequential ones may all land on one.
    """
    seen: dict[str, set[int]] = {}
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(rounds):
            for status, pid, _ in pool.map(lambda _: browser.request(path), range(6)):
                seen.setdefault(pid, set()).add(status)
            if len(seen) >= 2:
                break
    return seen


def test_role_change_through_one_worker_is_enforced_by_every_worker(
        deployment: SimpleNamespace) -> None:
    junior = Browser(deployment.base)
    junior.login("junior_rep@example.test", "password")
    before = statuses_per_worker(junior, "/deals/")
    assert len(before) == 2, f"both workers answered: {before}"
    assert all(s == {403} for s in before.values()), before

    owner = Browser(deployment.base)
    status, changed_by, body = owner.request(
        f"/api/v1/members/{deployment.junior_id}/roles",
        body=b'{"role_id": %d}' % deployment.finance_id, method="POST",
        headers={"Authorization": f"Bearer {deployment.owner_token}",
                 "Content-Type": "application/json"})
    assert status == 201, body
    assert changed_by in before  # made through one of the two workers

    after = statuses_per_worker(junior, "/deals/")
    assert len(after) == 2, f"both workers answered: {after}"
    assert all(s == {200} for s in after.values()), after
    # And each worker filters with the new role: Finance sees won deals only.
    for _ in range(6):
        status, _, page = junior.request("/deals/")
        for title in deployment.won_deals:
            assert title in page
        assert "new deal of member" not in page


def pages_per_worker(browser: Browser, path: str, *, rounds: int = 25) -> dict[str, list[str]]:
    """Like :func:`statuses_per_worker`, keeping each worker's page bodies."""
    seen: dict[str, list[str]] = {}
    with ThreadPoolExecutor(max_workers=6) as pool:
        for _ in range(rounds):
            for _status, pid, page in pool.map(lambda _: browser.request(path), range(6)):
                seen.setdefault(pid, []).append(page)
            if len(seen) >= 2:
                break
    return seen


def test_revoked_agreement_is_enforced_by_every_worker(deployment: SimpleNamespace) -> None:
    """Revoking a sharing agreement in one worker hides the shared records in both."""
    dual = Browser(deployment.base)
    dual.login("dual@example.test", "password")  # Owner of Beta, which receives the share
    before = pages_per_worker(dual, "/clients/?per_page=100")
    assert len(before) == 2, f"both workers answered: {list(before)}"
    assert all(deployment.shared_client in p for pages in before.values() for p in pages)

    owner = Browser(deployment.base)
    status, _, body = owner.request(
        f"/api/v1/sharing/{deployment.agreement_id}/revoke", body=b"{}", method="POST",
        headers={"Authorization": f"Bearer {deployment.owner_token}",
                 "Content-Type": "application/json"})
    assert status == 200 and '"revoked"' in body, body

    after = pages_per_worker(dual, "/clients/?per_page=100")
    assert len(after) == 2, f"both workers answered: {list(after)}"
    assert not any(deployment.shared_client in p for pages in after.values() for p in pages)
