"""Security headers on every response: pages, JSON API, Flask-Admin, static files, errors.

The sweep takes every GET route of ``app.url_map`` (never a hand-written
list, so a new route is covered without anyone thinking of it), fills its
id arguments with real objects of the Owner's workspace, and asks for it as
the Owner; then the answers nobody asks for on purpose: 404s, 403s, 405,
the API's 401 and 403, the login redirect, a CSRF refusal and a 500.

Every answer must carry (see ``crm_app/security.py``):

* ``Content-Security-Policy`` with ``frame-ancestors 'none'``, no
  ``'unsafe-inline'`` or ``'unsafe-eval'`` in ``script-src``, and exactly
  ``script-src 'self'`` / ``style-src 'self'`` outside Flask-Admin (whose
  pages add only hashes of its fixed handlers and a per-request nonce);
* ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff``,
  ``Referrer-Policy: same-origin``.

Every answer to a signed-in user but a static file also carries
``Cache-Control: no-store`` (``crm_rbac_plugin/security/enforce.py``): the
pages show secrets (a TOTP secret, recovery codes, a new token) and data no
shared cache may keep; static files stay cacheable.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections import Counter
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import pyotp
from flask import Flask
from werkzeug.routing import Rule

from crm_app.security import CSP
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.conftest import (
    admin_endpoint,
    id_arguments,
    logged_in,
    own_objects,
    route_values,
    rules_of,
)
from tests.test_mfa import MFA_PAGE, codes_on_page, secret_on_page

#: Headers every response carries, with their exact values.
FIXED_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def parse_csp(header: str) -> dict[str, str]:
    """``{directive: sources}`` of a Content-Security-Policy header."""
    out = {}
    for part in header.split(";"):
        name, _, sources = part.strip().partition(" ")
        if name:
            out[name] = sources.strip()
    return out


def header_problems(response: Any, *, admin: bool = False) -> list[str]:
    """What is missing or too loose in ``response``'s security headers (empty: fine)."""
    problems = [f"{name}: {response.headers.get(name)!r}, expected {value!r}"
                for name, value in FIXED_HEADERS.items()
                if response.headers.get(name) != value]
    header = response.headers.get("Content-Security-Policy")
    if not header:
        return [*problems, "no Content-Security-Policy"]
    csp = parse_csp(header)
    if csp.get("frame-ancestors") != "'none'":
        problems.append(f"frame-ancestors {csp.get('frame-ancestors')!r}")
    script = csp.get("script-src", "")
    if "'unsafe-inline'" in script or "'unsafe-eval'" in script or "*" in script:
        problems.append(f"script-src too loose: {script!r}")
    if not admin:
        for name, value in CSP.items():
            if csp.get(name) != value:
                problems.append(f"{name} {csp.get(name)!r}, expected {value!r}")
    return problems


class _InlineCode(HTMLParser):
    """Collect what a page runs or styles inline: handlers, ``<script>`` blocks, styles."""

    def __init__(self) -> None:
        super().__init__()
        self.handlers: set[str] = set()
        self.styles: set[str] = set()
        self.scripts: list[dict[str, str | None]] = []  # attributes of <script> without src

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers.update(value for name, value in attrs
                             if name.startswith("on") and value is not None)
        self.styles.update(value for name, value in attrs if name == "style" and value)
        if tag == "script" and not dict(attrs).get("src"):
            self.scripts.append(dict(attrs))


def inline_code(html: str) -> _InlineCode:
    parser = _InlineCode()
    parser.feed(html)
    return parser


def inline_handlers(html: str) -> set[str]:
    return inline_code(html).handlers


def csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode() + "'"


def _static_file(app: Flask, endpoint: str) -> str | None:
    """A real file under the static folder serving ``endpoint``."""
    if endpoint == "static":
        folder = app.static_folder
    else:
        blueprint = app.blueprints.get(endpoint.rpartition(".")[0])
        folder = blueprint.static_folder if blueprint is not None else None
    if not folder or not os.path.isdir(folder):
        return None
    for root, _dirs, files in sorted(os.walk(folder)):
        for name in sorted(files):
            return os.path.relpath(os.path.join(root, name), folder).replace(os.sep, "/")
    return None


def _values(app: Flask, w: SimpleNamespace, rule: Rule) -> dict[str, Any] | None:
    """Real values for every argument of ``rule`` in the Owner's workspace, or None."""
    values: dict[str, Any] = dict(route_values(rule))
    if "export_type" in rule.arguments:
        values["export_type"] = "csv"  # Flask-Admin's export format
    if "resource" in rule.arguments:
        values["resource"] = "leads"
    for arg, kind in id_arguments(rule).items():
        if kind == "record:*":
            kind = f"record:{values['resource']}"
        if kind.startswith("capability:"):
            values[arg] = w.targets[w.ws.id]["invitation_token"]
            continue
        objects = own_objects(w, w.ws.id, kind)
        if not objects:
            return None
        values[arg] = objects[0].id
    if "filename" in rule.arguments:
        filename = _static_file(app, rule.endpoint)
        if filename is None:
            return None
        values["filename"] = filename
    return values if set(values) >= set(rule.arguments) else None


def get_urls(app: Flask, w: SimpleNamespace) -> list[tuple[str, bool]]:
    """``(url, is_admin)`` for every GET route, with real ids (Flask-Admin's in ``?id=``)."""
    adapter = app.url_map.bind("crm.test")
    urls: dict[str, bool] = {}
    for rule in rules_of(app):
        if "GET" not in (rule.methods or ()):
            continue
        values = _values(app, w, rule)
        assert values is not None, f"no value for an argument of {rule.rule} ({rule.endpoint})"
        url = adapter.build(rule.endpoint, values, method="GET")
        found = admin_endpoint(app, rule)
        if found is not None and found[1] in ("details_view", "edit_view"):
            panel, _ = found
            objects = own_objects(w, w.ws.id, panel.kind)
            if objects:
                url += f"?id={objects[0].id}"
        is_admin = rule.endpoint.partition(".")[0] in _admin_blueprints(app)
        urls[url] = is_admin
    return sorted(urls.items())


def unallowed_handlers(response: Any) -> list[str]:
    """Inline code of an HTML answer that its CSP would block (a broken page, or an injection).

    Handlers need ``'unsafe-hashes'`` and their hash, an inline ``<script>``
    the page's nonce, a ``style`` attribute ``'unsafe-inline'`` in style-src.
    """
    if response.mimetype != "text/html":
        return []
    csp = parse_csp(response.headers.get("Content-Security-Policy", ""))
    scripts, styles = csp.get("script-src", "").split(), csp.get("style-src", "").split()
    found = inline_code(response.get_data(as_text=True))
    problems = [f"inline handler not allowed: {h!r}" for h in sorted(found.handlers)
                if "'unsafe-hashes'" not in scripts or csp_hash(h) not in scripts]
    problems += [f"inline <script> without the page's nonce: {attrs}" for attrs in found.scripts
                 if f"'nonce-{attrs.get('nonce')}'" not in scripts]
    if "'unsafe-inline'" not in styles:
        problems += [f"style attribute not allowed: {v!r}" for v in sorted(found.styles)]
    return problems


def _admin_blueprints(app: Flask) -> set[str]:
    return {view.blueprint.name for admin in app.extensions.get("admin", [])
            for view in admin._views if view.blueprint is not None}


def cache_problems(response: Any, *, static: bool) -> list[str]:
    """``no-store`` missing from a signed-in answer, or set on a static file (empty: fine)."""
    value = response.headers.get("Cache-Control") or ""
    if static:
        return [f"static file not cacheable: {value!r}"] if "no-store" in value else []
    if "no-store" not in value or response.headers.get("Pragma") != "no-cache":
        return [f"Cache-Control {value!r}, Pragma {response.headers.get('Pragma')!r}: "
                "a signed-in answer must not be stored"]
    return []


def _is_static(app: Flask, url: str) -> bool:
    endpoint = app.url_map.bind("crm.test").match(url.partition("?")[0], method="GET")[0]
    return endpoint == "static" or endpoint.endswith(".static")


def test_every_get_route_answers_with_the_headers(app: Flask, security_world: SimpleNamespace,
                                                  probe_stats: Counter[str]) -> None:
    """The Owner asks for every GET route of the URL map, with real ids."""
    w = security_world
    owner = logged_in(app, w.users["owner"], w.ws)
    failures, statuses = [], Counter()
    urls = get_urls(app, w)
    assert len(urls) > 80, "the sweep found too few routes"
    for url, is_admin in urls:
        response = owner.get(url)
        statuses[response.status_code // 100] += 1
        problems = header_problems(response, admin=is_admin)
        problems += unallowed_handlers(response)
        problems += cache_problems(response, static=_is_static(app, url))
        if response.status_code >= 500:
            problems.append(f"status {response.status_code}")
        if problems:
            failures.append(f"{url} ({response.status_code}): {problems}")
        probe_stats["header_responses"] += 1
    probe_stats["header_missing"] += len(failures)
    assert failures == [], "\n".join(failures)
    assert statuses[2] > len(urls) // 2, f"most routes should answer 2xx: {dict(statuses)}"


def test_refusals_and_errors_answer_with_the_headers(
        app: Flask, security_world: SimpleNamespace, probe_stats: Counter[str]) -> None:
    """404, 403, 405, the API's 401/403, the login redirect and a 500 page."""
    w = security_world
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom() -> str:
        raise RuntimeError("a bug in a view")

    app.add_url_rule("/header-test-boom", "header_test_boom", boom)
    owner = logged_in(app, w.users["owner"], w.ws)
    viewer = logged_in(app, w.users["viewer"], w.ws)
    anonymous = app.test_client()
    lead = own_objects(w, w.ws.id, "record:leads")[0].id
    cases = [
        ("unknown page", owner.get("/no-such-page"), 404, False),
        ("unknown record", owner.get("/leads/999999"), 404, False),
        ("unknown static file", owner.get("/static/no-such-file.js"), 404, False),
        ("unknown admin page", owner.get("/admin/no-such-panel/"), 404, False),
        ("settings refused", viewer.get("/settings/roles"), 403, False),
        ("admin refused", viewer.get("/admin/rbac_admin_roles/"), 403, True),
        ("method not allowed", owner.put(f"/leads/{lead}"), 405, False),
        ("API unknown record", owner.get("/api/v1/records/leads/999999"), 404, False),
        ("API refused", viewer.get("/api/v1/roles/1/members"), None, False),
        ("API bad token", anonymous.get("/api/v1/records/leads",
                                        headers={"Authorization": "Bearer crmrbac_nope"}),
         401, False),
        ("anonymous", anonymous.get("/leads/"), 302, False),
        ("server error", owner.get("/header-test-boom"), 500, False),
    ]
    failures = []
    for what, response, status, is_admin in cases:
        if status is not None and response.status_code != status:
            failures.append(f"{what}: status {response.status_code}, expected {status}")
        if problems := header_problems(response, admin=is_admin):
            failures.append(f"{what} ({response.status_code}): {problems}")
        probe_stats["header_responses"] += 1
    probe_stats["header_missing"] += len(failures)
    assert failures == [], "\n".join(failures)


def test_admin_pages_allow_only_their_fixed_handlers(app: Flask,
                                                      security_world: SimpleNamespace) -> None:
    """Flask-Admin's CSP: hashes of its own handlers, a fresh nonce per page, nothing else inline."""
    w = security_world
    owner = logged_in(app, w.users["owner"], w.ws)
    first, second = owner.get("/admin/leads/"), owner.get("/admin/leads/")
    assert first.status_code == second.status_code == 200
    csp = [parse_csp(r.headers["Content-Security-Policy"]) for r in (first, second)]
    nonces = [next(s for s in c["script-src"].split() if s.startswith("'nonce-")) for c in csp]
    assert nonces[0] != nonces[1], "the nonce is drawn per request"
    assert f'nonce="{nonces[0][7:-1]}"' in first.get_data(as_text=True)
    handlers = inline_handlers(first.get_data(as_text=True))
    assert any("safeConfirm" in h for h in handlers) and any("modelActions" in h for h in handlers)
    assert unallowed_handlers(first) == []
    sources = csp[0]["script-src"].split()
    assert sources[:2] == ["'self'", "'unsafe-hashes'"]
    assert all(s.startswith(("'sha256-", "'nonce-")) for s in sources[2:]), sources


def test_pages_viewed_as_a_member_carry_no_inline_code(app: Flask,
                                                       security_world: SimpleNamespace) -> None:
    """The view-as banner (shown on every page meanwhile) holds no style or script inline."""
    w = security_world
    owner = logged_in(app, w.users["owner"], w.ws)
    started = owner.post("/settings/view-as", data={"membership_id": w.members["member"].id})
    assert started.status_code == 302
    for path in ("/", "/leads/"):
        response = owner.get(path)
        assert response.status_code == 200 and "Stop viewing as" in response.text, path
        assert unallowed_handlers(response) == [], path
        assert header_problems(response) == [], path


def test_answers_showing_secrets_are_never_stored(app: Flask,
                                                  security_world: SimpleNamespace) -> None:
    """A new token's plaintext, the MFA secret and the recovery codes (POST answers the
    sweep does not reach), a CSV export; a static file stays cacheable."""
    w = security_world
    owner = logged_in(app, w.users["owner"], w.ws)
    created = owner.post("/settings/tokens", data={"name": "cache test"})
    assert created.status_code == 201 and "crmrbac_" in created.text
    setup = owner.get(MFA_PAGE)
    codes = owner.post(MFA_PAGE, data={"code": pyotp.TOTP(secret_on_page(setup.text)).now()})
    assert len(codes_on_page(codes.text)) == 10
    export = owner.get("/settings/members.csv")
    assert export.status_code == 200 and export.mimetype == "text/csv"
    failures = [f"{what}: {problems}" for what, response in
                (("token", created), ("MFA set-up", setup), ("recovery codes", codes),
                 ("members CSV", export))
                if (problems := cache_problems(response, static=False))]
    static = owner.get("/static/js/app.js")
    assert static.status_code == 200
    failures += cache_problems(static, static=True)
    assert failures == [], "\n".join(failures)
