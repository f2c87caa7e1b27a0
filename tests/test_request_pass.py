"""The plugin's one ``before_request`` pass, and the work a signed-in request does.

The pass stamps the member's last activity, checks the IP allowlist and then
the session and MFA gate, reading the user, the workspace and the account
row once for all three (``extension.before_request``). These tests pin the
order of the checks and the work a signed-in request pays for them: no
statement besides the user loader's, the access resolved once, the
workspace looked up once, and a member seen within the interval costing no
lock.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import identity, require_permission
from crm_rbac_plugin.extension import before_request
from crm_rbac_plugin.security import save_policy
from crm_rbac_plugin.team.activity import EXTENSION_KEY, RecentlySeen
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

PINNED = "/_pinned/leads"
OUTSIDE = "198.51.100.20"


@pytest.fixture
def pinned(app: Flask) -> str:
    """A page guarded by the plugin that runs no statement of its own."""
    @app.get(PINNED)
    @require_permission("leads", "view")
    def pinned_leads() -> str:
        return "ok"
    return PINNED


def _statements(client: Any, path: str) -> tuple[int, list[str]]:
    seen: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        status = client.get(path).status_code
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    # PostgreSQL's teardown asks whether the transaction wrote (transactions.py).
    return status, [s for s in seen if "txid_current_if_assigned" not in s]


def test_one_plugin_hook_runs_before_each_request(app: Flask) -> None:
    hooks = [f for f in app.before_request_funcs.get(None, [])
             if getattr(f, "__module__", "").startswith("crm_rbac_plugin")]
    assert hooks == [before_request]


def test_a_signed_in_request_runs_the_user_query_alone(
        app: Flask, world: SimpleNamespace, login: Any, pinned: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Last activity, allowlist, session, MFA and access: all from the user's one query."""
    client = login(world.users["member"], world.ws)
    assert client.get(pinned).status_code == 200  # adopts the session, stamps last activity
    resolved: list[Any] = []
    workspaces: list[Any] = []
    access_for_row, default_workspace = identity.access_for_row, identity.default_workspace
    monkeypatch.setattr(identity, "access_for_row",
                        lambda r, row: resolved.append(row.id) or access_for_row(r, row))
    monkeypatch.setattr(identity, "default_workspace",
                        lambda r, user: workspaces.append(user) or default_workspace(r, user))
    for _ in range(3):
        status, statements = _statements(client, pinned)
        assert status == 200
        assert len(statements) == 1, statements  # the user loader's
        assert "rbac_membership" in statements[0] and "rbac_session" in statements[0]
    member = world.members["member"]
    assert resolved == [member.id] * 3  # once per request, gate and view alike
    assert len(workspaces) == 3


def test_a_refused_address_is_refused_before_the_mfa_gate_and_still_seen(
        app: Flask, world: SimpleNamespace, login: Any, pinned: str) -> None:
    save_policy(rbac, world.ws.id, {"mfa": "everyone", "ip_allowlist": "203.0.113.0/24"})
    db.session.commit()
    client = login(world.users["member"], world.ws)
    refused = client.get(pinned, environ_base={"REMOTE_ADDR": OUTSIDE})
    assert refused.status_code == 403 and OUTSIDE in refused.text  # not the MFA redirect
    M = rbac.models.Membership
    db.session.expire_all()
    seen = db.session.scalar(sa.select(M.last_seen_at).where(M.id == world.members["member"].id))
    assert seen is not None
    inside = client.get(pinned, environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert inside.status_code == 302 and "/mfa" in inside.headers["Location"]


class _NoLock:
    def __enter__(self) -> None:
        raise AssertionError("a member seen within the interval takes no lock")

    def __exit__(self, *exc: Any) -> None:
        return None


def test_a_member_seen_within_the_interval_costs_no_lock(
        app: Flask, world: SimpleNamespace, login: Any, pinned: str) -> None:
    client = login(world.users["member"], world.ws)
    assert client.get(pinned).status_code == 200
    seen: RecentlySeen = app.extensions[EXTENSION_KEY]
    assert len(seen) == 1
    seen._lock = _NoLock()  # type: ignore[assignment]
    assert client.get(pinned).status_code == 200


def test_a_request_setting_changed_after_the_first_request_takes_effect(app: Flask) -> None:
    """The per-request settings follow the config: a changed value, and a list
    changed in place, are read on the next request."""
    from crm_rbac_plugin.config import request_settings

    before = request_settings(app)
    assert request_settings(app) is before  # unchanged config: the same snapshot
    app.config["RBAC_MFA_STEP_UP_MINUTES"] = before.step_up_minutes + 7
    assert request_settings(app).step_up_minutes == before.step_up_minutes + 7
    exempt = list(app.config["RBAC_MFA_EXEMPT_ENDPOINTS"])
    app.config["RBAC_MFA_EXEMPT_ENDPOINTS"] = exempt
    request_settings(app)
    exempt.append("host.some_page")
    assert "host.some_page" in request_settings(app).exempt_endpoints
