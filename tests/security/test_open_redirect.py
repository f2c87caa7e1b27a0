"""No route forwards the browser to another site (one rule: ``urls.safe_next``).

Hostile ``next`` values against every route that reads one (sign-in and
view-as), then a sweep of every route of the URL map with ``next`` in the
query string and the form: whatever answers a redirect sends it to a path
on this site.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask

from crm_rbac_plugin.urls import safe_next
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

HOSTILE = [
    "https://evil.example/", "//evil.example", "/\\evil.example", "\\/evil.example",
    "javascript:alert(1)", "http:evil", " //evil.example", "\t//evil.example",
    "\n//evil.example", "/\t/evil.example", "%2F%2Fevil.example", "/%2F%2Fevil.example",
    "/%5Cevil.example", "https:/evil.example", "\x00//evil.example", "http:/evil.example",
    "http:///evil.example",
]


def assert_local(response: Any) -> None:
    """A redirect, if any, goes to a path on this site."""
    location = response.headers.get("Location")
    if location is None:
        return
    parts = urlsplit(location)
    assert parts.netloc in ("", "crm.test", "localhost") and parts.scheme in ("", "http", "https"), location
    # "http:///evil.example" splits into an empty host, which browsers skip to the path's.
    assert not parts.scheme or parts.netloc, location
    assert parts.path.startswith("/") and not location.startswith("//"), location


@pytest.mark.parametrize("target", HOSTILE)
def test_safe_next_refuses_hostile_targets(target: str) -> None:
    assert safe_next(target, "/fallback") == "/fallback"


@pytest.mark.parametrize("target", ["/", "/leads/", "/leads/?page=2&q=a%20b", "/settings/audit#x"])
def test_safe_next_keeps_local_paths(target: str) -> None:
    assert safe_next(target, "/fallback") == target


@pytest.mark.parametrize("target", HOSTILE)
def test_login_next_stays_local(app: Flask, world: SimpleNamespace, target: str) -> None:
    client = app.test_client()
    response = client.post("/login", query_string={"next": target},
                           data={"email": "admin@example.test", "password": "password"})
    if "\x00" in target:  # a NUL in any value is refused before any view: nobody signs in
        assert response.status_code in (302, 400)
        if response.status_code == 302:
            assert_local(response)
            assert response.headers["Location"].startswith("/login")
        return
    assert response.status_code == 302
    assert_local(response)
    assert response.headers["Location"] == "/"  # the dashboard


@pytest.mark.parametrize("target", HOSTILE)
def test_view_as_next_stays_local(world: SimpleNamespace, login: Any, target: str) -> None:
    admin = login(world.users["admin"], world.ws)
    response = admin.post("/settings/view-as", data={
        "membership_id": str(world.members["viewer"].id), "next": target})
    if "\x00" in target:  # the settings pages refuse a NUL in any field (a 400, no redirect)
        assert response.status_code == 400
        assert "next contains a NUL character" in response.text
        return
    assert response.status_code == 302
    assert_local(response)
    assert response.headers["Location"] == "/"
    stop = admin.post("/settings/view-as/stop", data={"next": target})
    assert stop.status_code == 302
    assert_local(stop)


def test_every_route_keeps_next_local(app: Flask, world: SimpleNamespace, login: Any) -> None:
    """Sweep the URL map: no route, read or write, redirects off the site on ``next``."""
    owner = login(world.users["owner"], world.ws)
    anonymous = app.test_client()
    swept = 0
    for rule in app.url_map.iter_rules():
        if rule.arguments or rule.endpoint == "static" or rule.rule.startswith("/admin"):
            continue  # Flask-Admin's own URLs are swept by its tests; arguments need ids
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            for client in (owner, anonymous):
                for target in ("https://evil.example/", "//evil.example"):
                    call = client.get if method == "GET" else client.post
                    response = call(rule.rule, query_string={"next": target},
                                    data={"next": target} if method == "POST" else None)
                    assert_local(response)
                    swept += 1
    assert swept > 50
    print(f"open redirect sweep: {swept} requests")


def test_admin_sends_anonymous_users_to_sign_in_and_back(app: Flask,
                                                          world: SimpleNamespace) -> None:
    """Flask-Admin's sign-in link names the page as a local path, which sign-in honours."""
    client = app.test_client()
    response = client.get("/admin/leads/?page=0")
    assert response.status_code == 302
    assert_local(response)
    login_url = response.headers["Location"]
    assert urlsplit(login_url).path == "/login"
    signed_in = client.post(login_url, data={"email": "admin@example.test",
                                             "password": "password"})
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"] == "/admin/leads/?page=0"


def test_flask_admin_keeps_its_return_address_local(app: Flask, world: SimpleNamespace,
                                                    login: Any) -> None:
    """Every Flask-Admin route, read and write, with each hostile ``url``: a 400 naming
    ``url``, or a redirect to this site; never a redirect off it."""
    owner = login(world.users["owner"], world.ws)
    swept = refused = 0
    for rule in app.url_map.iter_rules():
        if rule.arguments or not rule.rule.startswith("/admin/") or rule.endpoint.endswith("static"):
            continue
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            call = owner.get if method == "GET" else owner.post
            for target in HOSTILE:
                response = call(rule.rule, query_string={"url": target, "id": "1"},
                                data={"url": target} if method == "POST" else None)
                assert response.status_code < 500, (rule.rule, target)
                assert_local(response)
                swept += 1
                refused += response.status_code == 400
    assert swept > 200 and refused > swept // 2, (swept, refused)
    print(f"Flask-Admin return address sweep: {swept} requests, {refused} refused")
    page = owner.get("/admin/deals/details/", query_string={"url": "http:/evil.example"},
                     headers={"Accept": "application/json"})
    assert page.status_code == 400
    assert page.json["field"] == "url" and page.json["error"] == "validation_error"
