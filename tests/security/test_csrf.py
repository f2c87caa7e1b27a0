"""CSRF: with protection on (as deployed), no state-changing request without a token.

* Every POST/PUT/PATCH/DELETE form route of ``app.url_map`` (CRM pages,
  Flask-Admin, settings, oversight, sign-in/out, workspace switch), sent by
  a signed-in Owner with exactly the body that would succeed but no
  ``csrf_token``: 400, database unchanged.
* The JSON API (``api/views.py``): a request with ``Authorization: Bearer``
  is exempt by design (a cross-site page cannot attach that header); a
  request authenticated by the session cookie must carry the CSRF token in
  ``X-CSRFToken``, so each API write by the Owner's session without it is a
  400 ``csrf_failed``, database unchanged.
* Positive controls, so a refusal is known to come from the missing token:
  the same form with the page's token, the same API write with the
  ``X-CSRFToken`` header and with a Bearer token all get through.
"""

from __future__ import annotations

import re
from collections import Counter
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.conftest import (
    body_text,
    logged_in,
    snapshot_database,
    snapshot_diff,
)
from tests.security.write_specs import Req, family, legit_request, unsafe_routes

CSRF_INPUT = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def page_token(client: FlaskClient, url: str = "/settings/departments") -> str:
    """The CSRF token a page hands the signed-in client (as a browser would read it)."""
    match = CSRF_INPUT.search(body_text(client.get(url)))
    assert match, f"no csrf_token input on {url}"
    return match.group(1)


def send(client: FlaskClient, req: Req, headers: dict[str, str] | None = None) -> Any:
    return client.open(req.url, method=req.method, data=req.data, json=req.json,
                       headers=headers or {})


def test_form_routes_refuse_requests_without_a_token(
        csrf_app: Flask, csrf_world: SimpleNamespace, probe_stats: Counter[str]) -> None:
    """Every state-changing form route, by the Owner, without a token: 400, nothing written."""
    w = csrf_world
    owner = logged_in(csrf_app, w.users["owner"], w.ws)
    before = snapshot_database()
    failures = []
    routes = [(r, m) for r, m in unsafe_routes(csrf_app) if family(csrf_app, r) != "api"]
    assert routes
    for rule, method in routes:
        req = legit_request(csrf_app, w, rule, method, w.ws.id)
        response = send(owner, req)
        after = snapshot_database()
        changes = snapshot_diff(before, after)
        probe_stats["csrf_routes"] += 1
        if response.status_code != 400 or changes:
            probe_stats["csrf_holes"] += 1
            failures.append(f"{req.method} {req.url} ({rule.endpoint}): "
                            f"{response.status_code}" + "".join(f"\n    {c}" for c in changes))
            before = after
    assert not failures, "accepted without a CSRF token:\n" + "\n".join(failures)


def test_api_session_writes_need_the_csrf_header(
        csrf_app: Flask, csrf_world: SimpleNamespace, probe_stats: Counter[str]) -> None:
    """Each API write with the Owner's session cookie and no (or a wrong) X-CSRFToken:
    400 ``csrf_failed``, nothing written. An Authorization header that is not a
    valid Bearer token does not turn the session request into an exempt one."""
    w = csrf_world
    owner = logged_in(csrf_app, w.users["owner"], w.ws)
    before = snapshot_database()
    failures = []
    routes = [(r, m) for r, m in unsafe_routes(csrf_app) if family(csrf_app, r) == "api"]
    assert routes
    for rule, method in routes:
        req = legit_request(csrf_app, w, rule, method, w.ws.id)
        for headers, expected in (({}, 400), ({"X-CSRFToken": "forged"}, 400),
                                  ({"Authorization": "Basic b3duZXI6cGFzc3dvcmQ="}, 401),
                                  ({"Authorization": "Bearer "}, 401)):
            response = send(owner, req, headers)
            after = snapshot_database()
            changes = snapshot_diff(before, after)
            probe_stats["csrf_api_routes"] += 1
            error = (response.get_json(silent=True) or {}).get("error")
            if response.status_code != expected or changes or (
                    expected == 400 and error != "csrf_failed"):
                probe_stats["csrf_holes"] += 1
                failures.append(f"{req.method} {req.url} with {headers}: "
                                f"{response.status_code} {error}"
                                + "".join(f"\n    {c}" for c in changes))
                before = after
    assert not failures, "API session writes accepted without CSRF:\n" + "\n".join(failures)


def _department_names() -> set[str]:
    with rbac.system():
        names = set(db.session.scalars(sa.select(rbac.models.Department.name)))
    db.session.rollback()
    return names


def test_tokens_and_bearer_requests_get_through(csrf_app: Flask,
                                                csrf_world: SimpleNamespace) -> None:
    """Positive controls: the refusals above come from the missing token, nothing else."""
    w = csrf_world
    owner = logged_in(csrf_app, w.users["owner"], w.ws)
    token = page_token(owner)
    response = owner.post("/settings/departments",
                          data={"name": "Made with a token", "csrf_token": token})
    assert response.status_code == 302, response.status_code
    assert "Made with a token" in _department_names()

    role_id = w.targets[w.ws.id]["role"]
    response = owner.patch(f"/api/v1/roles/{role_id}", json={"name": "Renamed via session"},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.get_json()

    # Bearer tokens are exempt by design: no cookie, so no cross-site forgery.
    bearer = csrf_app.test_client()
    response = bearer.patch(f"/api/v1/roles/{role_id}", json={"name": "Renamed via token"},
                            headers={"Authorization": f"Bearer {w.prober['owner'].token}"})
    assert response.status_code == 200, response.get_json()
