"""The unenrolled-MFA sweep: a member who must use MFA and has not enrolled reaches nothing.

The workspace's policy is set with :func:`crm_rbac_plugin.security.policy.save_policy`
(``everyone`` for a plain Member, ``privileged`` for an Admin). Then EVERY
rule of ``app.url_map`` is requested with EVERY method it allows (GET,
HEAD, OPTIONS and each state-changing one), ids filled with real objects of
the member's workspace and, for a write, the plausible body of
:mod:`tests.security.write_specs` (what an honest member with every right
would send, so a leak would change the database), with the member's
browser session, and on the JSON API's routes with the member's bearer API
token too (elsewhere a token signs nobody in).

An answer counts as *reached* unless it is one of:

* a redirect to the enrolment page (or the verification page);
* ``401``/``403`` JSON with ``error`` ``mfa_required`` (the demo loads a
  token's user on every route, pages included, so the token is refused so
  everywhere);
* for HEAD, which carries no body: the same 401/403 as the refused GET of
  the same URL.

Exempt endpoints (static files, the enrolment and verification pages, the
sign-out: ``RBAC_MFA_EXEMPT_ENDPOINTS``) are requested too but after the
database comparison, each with a fresh client, since reaching them is the
point (the enrolment page writes a pending secret, the sign-out ends the
session). Every table but the append-only audit trail and the sign-in
throttle counts must be exactly as before the sweep
(:func:`~tests.security.conftest.snapshot_database`). The battery reports
"Unenrolled MFA sweep: requests N, reached 0".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.config import setting
from crm_rbac_plugin.security import policy as security_policy
from crm_rbac_plugin.security import stepup
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.conftest import (
    UNSAFE_METHODS,
    admin_endpoint,
    id_arguments,
    logged_in,
    route_values,
    rules_of,
    snapshot_database,
    snapshot_diff,
)
from tests.security.write_specs import first_record, legit_request, url_ids

ENROL_PATH = "/settings/account/mfa"
VERIFY_PATH = "/settings/account/verify"
#: Values of the arguments that name no object (see NOT_RECORD_IDS in the conftest).
PLAIN_VALUES = {"filename": "rbac/rbac.css", "export_type": "csv", "resource": "leads"}


def exempt(app: Flask, rule: Rule) -> bool:
    """Whether the gate lets a member owing an enrolment through ``rule`` (by design)."""
    endpoint = rule.endpoint
    with app.app_context():
        listed = setting("RBAC_MFA_EXEMPT_ENDPOINTS")
    return (endpoint == "static" or endpoint.endswith(".static") or endpoint in listed
            or endpoint in (stepup.ENROL_ENDPOINT, stepup.VERIFY_ENDPOINT))


def path_values(app: Flask, w: SimpleNamespace, rule: Rule, ws_id: int) -> dict[str, Any]:
    """Real ids of ``ws_id`` (records, plugin objects, an invitation link) for ``rule``."""
    values: dict[str, Any] = {**route_values(rule), **url_ids(w, rule, ws_id)}
    for arg, kind in id_arguments(rule).items():
        if kind == "record:*":
            values[arg] = first_record(w, ws_id, PLAIN_VALUES["resource"]).id
        elif kind.startswith("record:"):
            values[arg] = first_record(w, ws_id, kind.partition(":")[2]).id
        elif kind.startswith("capability:"):
            values[arg] = w.targets[ws_id]["invitation_token"]
    for arg in rule.arguments:
        values.setdefault(arg, PLAIN_VALUES.get(arg, "x"))
    return values


def requests_of(app: Flask, w: SimpleNamespace, rule: Rule,
                ws_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    """``(method, url, open() keywords)`` for every method of ``rule``."""
    adapter = app.url_map.bind("crm.test")
    out = []
    for method in sorted(rule.methods or ()):
        if method in UNSAFE_METHODS:
            req = legit_request(app, w, rule, method, ws_id)
            out.append((method, req.url, {"data": req.data, "json": req.json}))
            continue
        url = str(adapter.build(rule.endpoint, path_values(app, w, rule, ws_id), method=method))
        admin = admin_endpoint(app, rule)
        if admin is not None and admin[1] in ("details_view", "edit_view"):
            kind = admin[0].kind
            target = (first_record(w, ws_id, kind.partition(":")[2]).id
                      if kind.startswith("record:") else w.targets[ws_id].get(kind, 1))
            url += f"?id={target}"
        out.append((method, url, {}))
    return out


def refused(response: Any, *, twin: int | None = None) -> bool:
    """Whether ``response`` is one of the sweep's refusals (see the module docstring).

    ``twin``: for a HEAD request, which carries no body to read the error
    from, the status of the same URL's GET when that GET was refused; the
    HEAD is refused when it answers the same.
    """
    status = response.status_code
    if status in (301, 302, 303, 307, 308):
        return urlsplit(response.headers.get("Location", "")).path in (ENROL_PATH, VERIFY_PATH)
    if status not in (401, 403):
        return False
    if twin is not None:
        return status == twin
    error = (response.get_json(silent=True) or {}).get("error") if response.is_json else None
    return error == "mfa_required"


def sweep(app: Flask, w: SimpleNamespace, key: str,
          send_as: dict[str, Callable[[str, str, dict[str, Any]], Any]]) -> tuple[int, list[str]]:
    """Request every non-exempt route with each way of sending; return (count, reached)."""
    prober = w.prober[key]
    count, reached = 0, []
    refused_get: dict[tuple[str, str], int] = {}
    for rule in rules_of(app):
        if exempt(app, rule):
            continue
        for method, url, kwargs in requests_of(app, w, rule, prober.workspace_id):
            for via, send in send_as.items():
                if via == "token" and rule.endpoint.partition(".")[0] != "rbac_api":
                    continue  # a token signs nobody in outside the API (RBAC_TOKEN_BLUEPRINTS)
                response = send(method, url, kwargs)
                count += 1
                twin = refused_get.get((via, url)) if method == "HEAD" else None
                if refused(response, twin=twin):
                    if method == "GET":
                        refused_get[(via, url)] = response.status_code
                else:
                    reached.append(f"{via}: {method} {url} -> {response.status_code} "
                                   f"{response.headers.get('Location', '')}")
    return count, reached


def exempt_requests(app: Flask, w: SimpleNamespace, key: str) -> int:
    """Request each exempt route once with a fresh session of the member: it answers."""
    prober = w.prober[key]
    count = 0
    for rule in rules_of(app):
        if not exempt(app, rule) or "GET" not in (rule.methods or ()):
            continue
        client = logged_in(app, prober.user, prober.workspace)
        for method, url, kwargs in requests_of(app, w, rule, prober.workspace_id):
            if method != "GET":
                continue
            response = client.open(url, method=method, **kwargs)
            count += 1
            assert response.status_code < 500, (url, response.status_code)
    return count


def clients_for(app: Flask, w: SimpleNamespace,
                key: str) -> dict[str, Callable[[str, str, dict[str, Any]], Any]]:
    prober = w.prober[key]
    browser: FlaskClient = logged_in(app, prober.user, prober.workspace)
    bare = app.test_client()
    headers = {"Authorization": f"Bearer {prober.token}"}
    return {
        "session": lambda method, url, kw: browser.open(url, method=method, **kw),
        "token": lambda method, url, kw: bare.open(url, method=method, headers=headers, **kw),
    }


@pytest.mark.parametrize(("mfa", "key"), [("everyone", "member"), ("privileged", "admin")])
def test_unenrolled_member_reaches_no_route(app: Flask, security_world: SimpleNamespace,
                                            probe_stats: Counter[str], mfa: str,
                                            key: str) -> None:
    w = security_world
    owner = w.prober["owner"]
    security_policy.save_policy(rbac, w.ws.id, {"mfa": mfa}, membership_id=owner.membership.id)
    db.session.commit()
    before = snapshot_database()
    count, reached = sweep(app, w, key, clients_for(app, w, key))
    changes = snapshot_diff(before, snapshot_database())
    count += exempt_requests(app, w, key)
    probe_stats["mfa_sweep_requests"] += count
    probe_stats["mfa_sweep_reached"] += len(reached)
    assert count > 400, count  # every route, every method, two ways: not a handful
    assert reached == [], f"{len(reached)} of {count} reached:\n" + "\n".join(reached[:40])
    assert not changes, "the sweep changed the database:\n" + "\n".join(changes)


def test_the_sweep_counts_an_enrolled_member_as_reaching(app: Flask,
                                                         security_world: SimpleNamespace) -> None:
    """The judge is not blind: the same member, when the policy asks nothing, reaches
    pages, and the sweep's writes are plausible enough to change the database."""
    w = security_world
    before = snapshot_database()
    count, reached = sweep(app, w, "member", clients_for(app, w, "member"))
    assert count > 400 and len(reached) > count // 4
    assert snapshot_diff(before, snapshot_database())
