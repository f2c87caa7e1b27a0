"""The IP allowlist: pages and API tokens from outside the list are refused and audited.

The client's address is ``request.remote_addr`` alone; these tests set it
through the WSGI environ (``REMOTE_ADDR``) as a server would, and through
Werkzeug's ``ProxyFix`` for an app behind a reverse proxy.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.security import network
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

OFFICE = "203.0.113.0/24\n2001:db8:1::/48"
INSIDE, OUTSIDE = "203.0.113.7", "198.51.100.20"
PAGE = "/settings/profile"


def allow(workspace: Any, text: str = OFFICE) -> None:
    P = rbac.models.SecurityPolicy
    row = db.session.scalar(sa.select(P).where(P.workspace_id == workspace.id))
    if row is None:
        row = P(workspace_id=workspace.id)
        db.session.add(row)
    row.ip_allowlist = text
    db.session.commit()


def refusals() -> list[Any]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A).where(A.action == "access.ip_refused")
                                   .order_by(A.id)))


def get(client: Any, path: str, ip: str, **kw: Any) -> Any:
    return client.get(path, environ_base={"REMOTE_ADDR": ip}, **kw)


@pytest.fixture
def owner(app: Flask, world: SimpleNamespace, login: Any) -> Any:
    return login(world.users["owner"], world.ws)


# -- the address rule ---------------------------------------------------------------------------


@pytest.mark.parametrize(("address", "allowed"), [
    ("203.0.113.7", True), ("203.0.114.7", False),
    ("::ffff:203.0.113.7", True),          # IPv4-mapped counts as its IPv4 address
    ("::ffff:198.51.100.1", False),
    ("2001:db8:1::42", True), ("2001:db8:2::42", False),
    ("", False), (None, False), ("not-an-ip", False),
])
def test_address_allowed(address: str | None, allowed: bool) -> None:
    assert network.address_allowed(address, network.networks_of(OFFICE)) is allowed


def test_an_empty_list_allows_every_address() -> None:
    assert network.address_allowed("198.51.100.1", network.networks_of(""))
    assert network.address_allowed(None, ())


def test_parsed_networks_are_cached_by_text() -> None:
    assert network.networks_of(OFFICE) is network.networks_of(OFFICE)


# -- pages --------------------------------------------------------------------------------------


def test_pages_from_outside_are_refused_and_audited(owner: Any, world: SimpleNamespace) -> None:
    allow(world.ws)
    assert get(owner, PAGE, INSIDE).status_code == 200
    refused = get(owner, PAGE, OUTSIDE)
    assert refused.status_code == 403
    assert OUTSIDE in refused.text and "Owner" in refused.text
    [event] = refusals()
    assert event.ip == OUTSIDE and event.workspace_id == world.ws.id
    assert event.resource == "account" and event.target == "owner@example.test"
    assert event.actor_user_id == world.users["owner"].id
    assert event.actor_membership_id == world.members["owner"].id
    assert {k: v for k, v in event.detail.items() if k != "user_agent"} == {"path": PAGE,
                                                                            "via": "page"}


def test_crm_pages_are_refused_too(app: Flask, world: SimpleNamespace, login: Any) -> None:
    allow(world.ws)
    member = login(world.users["member"], world.ws)
    assert get(member, "/leads/", OUTSIDE).status_code == 403
    assert get(member, "/leads/", INSIDE).status_code == 200


def test_refusals_are_audited_once_per_address_and_member_per_minute(
        owner: Any, world: SimpleNamespace, login: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    allow(world.ws)
    for _ in range(5):
        assert get(owner, PAGE, OUTSIDE).status_code == 403
    assert len(refusals()) == 1
    assert get(owner, PAGE, "198.51.100.21").status_code == 403   # another address
    admin = login(world.users["admin"], world.ws)
    assert get(admin, PAGE, OUTSIDE).status_code == 403             # another member
    assert len(refusals()) == 3
    later = utcnow() + dt.timedelta(minutes=2)  # past the window, a refusal is written again
    monkeypatch.setattr(network, "utcnow", lambda: later)
    assert get(owner, PAGE, OUTSIDE).status_code == 403
    assert len(refusals()) == 4


def test_other_workspaces_and_anonymous_pages_are_not_checked(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    allow(world.ws)
    outsider = login(world.users["outsider"], world.ws2)
    assert get(outsider, PAGE, OUTSIDE).status_code == 200
    anonymous = app.test_client()
    assert get(anonymous, "/login", OUTSIDE).status_code == 200
    assert refusals() == []


def test_a_json_client_gets_the_json_refusal(owner: Any, world: SimpleNamespace) -> None:
    allow(world.ws)
    refused = get(owner, PAGE, OUTSIDE, headers={"Accept": "application/json"})
    assert refused.status_code == 403
    assert refused.json["error"] == "ip_not_allowed" and refused.json["ip"] == OUTSIDE


def test_ipv6_networks(owner: Any, world: SimpleNamespace) -> None:
    allow(world.ws)
    assert get(owner, PAGE, "2001:db8:1:5::9").status_code == 200
    assert get(owner, PAGE, "::ffff:203.0.113.7").status_code == 200
    refused = get(owner, PAGE, "2001:db8:9::1")
    assert refused.status_code == 403
    assert refusals()[-1].ip == "2001:db8:9::1"


# -- API tokens ---------------------------------------------------------------------------------


def test_a_bearer_token_from_outside_gets_the_json_403(app: Flask, world: SimpleNamespace) -> None:
    allow(world.ws)
    _, plaintext = tokens.create_token(rbac, world.members["manager"], "allowlist test")
    db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert get(client, "/api/v1/members", INSIDE, headers=headers).status_code == 200
    refused = get(client, "/api/v1/members", OUTSIDE, headers=headers)
    assert refused.status_code == 403
    assert refused.json["error"] == "ip_not_allowed" and refused.json["ip"] == OUTSIDE
    [event] = refusals()
    assert event.ip == OUTSIDE and event.detail["via"] == "token"
    assert event.detail["path"] == "/api/v1/members"
    assert event.actor_user_id == world.users["manager"].id


def test_a_token_of_another_workspace_is_checked_against_its_own_list(
        app: Flask, world: SimpleNamespace) -> None:
    allow(world.ws2)
    _, plaintext = tokens.create_token(rbac, world.members["dual"], "ws1 token")
    db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    # dual's token acts in ws (no list), though dual's ws2 has one.
    assert get(client, "/api/v1/members/" + str(world.members["dual"].id) + "/roles", OUTSIDE,
               headers=headers).status_code == 200


# -- behind a reverse proxy ---------------------------------------------------------------------


def test_forwarded_for_is_ignored_without_proxy_fix(owner: Any, world: SimpleNamespace) -> None:
    allow(world.ws)
    refused = get(owner, PAGE, "10.0.0.2", headers={"X-Forwarded-For": INSIDE})
    assert refused.status_code == 403
    assert refusals()[-1].ip == "10.0.0.2"


def test_proxy_fix_with_one_hop_believes_only_the_proxys_entry(
        app: Flask, owner: Any, world: SimpleNamespace) -> None:
    allow(world.ws)
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]
    proxy = "10.0.0.2"  # the reverse proxy, the only peer the server sees
    assert get(owner, PAGE, proxy, headers={"X-Forwarded-For": INSIDE}).status_code == 200
    # A client prepends a forged hop; the proxy appends the real address, which decides.
    spoofed = get(owner, PAGE, proxy, headers={"X-Forwarded-For": f"{INSIDE}, {OUTSIDE}"})
    assert spoofed.status_code == 403
    assert refusals()[-1].ip == OUTSIDE
    assert get(owner, PAGE, proxy, headers={"X-Forwarded-For": f"{OUTSIDE}, {INSIDE}"}
               ).status_code == 200
