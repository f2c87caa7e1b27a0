"""Battery: a copied session cookie after its session was revoked opens no page.

For several members and each way a session ends (signing out, "sign out
everywhere" from another browser, an admin's "sign out everywhere", a
password change with "Sign out my other sessions" ticked), a victim
browser signs in through the real login form and an attacker copies its
cookie jar into a second client. After the revocation the copy requests
every GET page of the app, the copied cookie put back before each request
(a refusal that clears the cookie must not make the next request trivially
anonymous). A request is *accepted* when it answers 200 on a page an
anonymous client cannot get a 200 from. A positive control shows the copy
is accepted before the revocation, so a 0 is the revocation's doing.

Reported as "Copied cookie after revoke: requests N, accepted 0".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

DOMAIN = "crm.test"
MEMBERS = ("owner", "admin", "member", "viewer")
NEW_PASSWORD = "violet tapestry harbour 1987!"


def sign_in(app: Flask, key: str) -> FlaskClient:
    client = app.test_client()
    response = client.post("/login", data={"email": f"{key}@example.test",
                                           "password": "password"})
    assert response.status_code == 302 and "/login" not in response.headers["Location"]
    return client


def cookie_jar(client: FlaskClient) -> dict[str, str]:
    return {name: value for name in ("session", "remember_token")
            if (cookie := client.get_cookie(name, domain=DOMAIN)) is not None
            for value in (cookie.value,)}


def with_jar(app: Flask, jar: dict[str, str]) -> FlaskClient:
    client = app.test_client()
    for name, value in jar.items():
        client.set_cookie(name, value, domain=DOMAIN)
    return client


def get_urls(app: Flask, world: SimpleNamespace) -> list[str]:
    """Every GET page without URL arguments, and a record, a member and the API list."""
    urls = sorted(str(rule.rule) for rule in app.url_map.iter_rules()
                  if "GET" in (rule.methods or ()) and not rule.arguments
                  and not rule.endpoint.endswith("static"))
    return [*urls, f"/leads/{world.leads['member'].id}",
            f"/settings/members/{world.members['member'].id}", "/api/v1/records/leads"]


def signed_in_only(app: Flask, urls: list[str]) -> list[str]:
    """The URLs an anonymous client does not get a 200 from (the login page is public)."""
    anonymous = app.test_client()
    return [url for url in urls if anonymous.get(url).status_code != 200]


def revokers(app: Flask, world: SimpleNamespace, key: str) -> dict[str, Callable[[FlaskClient],
                                                                                  None]]:
    """Each way to end the victim's session, given the victim's own client."""
    member_id = world.members[key].id

    def sign_out(victim: FlaskClient) -> None:
        assert victim.post("/logout").status_code == 302

    def everywhere(victim: FlaskClient) -> None:
        other = sign_in(app, key)
        assert other.post("/settings/account/sessions/sign-out-others").status_code == 302

    def admin(victim: FlaskClient) -> None:
        actor = sign_in(app, "owner")  # the Owner signs anyone out, themselves included
        url = f"/settings/members/{member_id}/sessions/sign-out"
        assert actor.post(url).status_code == 302

    def password(victim: FlaskClient) -> None:
        other = sign_in(app, key)
        response = other.post("/settings/profile", data={
            "name": key.title(), "current_password": "password", "new_password": NEW_PASSWORD,
            "sign_out_others": "y"})
        assert response.status_code == 302, response.text[:300]

    return {"sign_out": sign_out, "everywhere": everywhere, "admin": admin,
            "password": password}


@pytest.mark.parametrize("how", ["sign_out", "everywhere", "admin", "password"])
def test_a_copied_cookie_is_refused_after_every_kind_of_revocation(
        app: Flask, world: SimpleNamespace, probe_stats: Counter[str], how: str) -> None:
    app.config["RBAC_SIGN_IN_RATE_LIMIT"] = None  # many sign-ins from one test address
    urls = signed_in_only(app, get_urls(app, world))
    assert "/leads/" in urls and len(urls) > 20
    requests = accepted = 0
    leaks: list[str] = []
    for key in MEMBERS:
        victim = sign_in(app, key)
        jar = cookie_jar(victim)
        assert with_jar(app, jar).get("/leads/").status_code == 200  # positive control
        revokers(app, world, key)[how](victim)
        for url in urls:
            response = with_jar(app, jar).get(url)
            requests += 1
            if response.status_code == 200:
                accepted += 1
                leaks.append(f"{key} {how} {url}")
    probe_stats["session_copy_requests"] += requests
    probe_stats["session_copy_accepted"] += accepted
    assert accepted == 0, leaks
