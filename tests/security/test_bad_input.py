"""Bad input: a clear 4xx with a message, nothing written, never a 500.

Hand-written tables first (malformed ids, unknown resources and actions,
oversized bodies, wrongly typed JSON, conditions naming unknown fields or
operators), through the JSON API and the settings pages; then a
property-based fuzz of the whole JSON API, its requests generated from the
API's own OpenAPI description (:func:`crm_rbac_plugin.api.openapi.openapi_document`)
by :func:`from_schema`, a small JSON Schema to Hypothesis translation covering
the keywords that description uses (``hypothesis-jsonschema`` 0.23.1, the
latest release, fails on the installed Hypothesis: ``'many' object has no
attribute 'more'`` when drawing arrays).

Every table runs on one ``world``: bad input writes nothing, so the snapshot
taken before the table must hold after each case (:func:`.test_escalation.snapshot`,
every table but the append-only audit trail). A failing case is collected and
the test lists them all, with the exception behind each 500.

The fuzz keeps going after a failure, recording one reproducer per kind of
failure (route, and status or exception), so one run reports every distinct
problem and how many examples it ran. ``RBAC_FUZZ_EXAMPLES`` sets the number
of examples per backend (default 100).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import TestResponse

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens, workspaces
from crm_rbac_plugin.api.openapi import openapi_document
from tests.rbac_helpers import (
    CHUNKED,
    fast_passwords,  # noqa: F401  (autouse fixture)
    multipart,
)
from tests.security.test_escalation import (
    changed_tables,
    membership_id,
    snapshot,
)
from tests.test_settings_ui import matrix_values, role

FUZZ_EXAMPLES = int(os.environ.get("RBAC_FUZZ_EXAMPLES", "100"))
JSON_HEADERS = {"Accept": "application/json"}
#: Out of every integer column's range on both backends (SQLite: 64-bit; PostgreSQL: 32-bit ids).
HUGE = "9" * 30


class Sender:
    """Requests as one member: the JSON API with a token, the pages with a session.

    Each call returns the response, or, when the view raised (the test client
    propagates a view's exception under ``TESTING``, where a server would answer
    500), a :class:`Raised` standing in for the 500.
    """

    def __init__(self, app: Flask, token: str | None, browser: FlaskClient | None) -> None:
        self.client = app.test_client()
        self.headers = dict(JSON_HEADERS)
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        self.browser = browser

    def api(self, method: str, path: str, **kwargs: Any) -> TestResponse | Raised:
        return _guard(lambda: self.client.open(f"/api/v1{path}", method=method.upper(),
                                               headers={**self.headers,
                                                        **kwargs.pop("headers", {})},
                                               **kwargs))

    def page(self, method: str, path: str, **kwargs: Any) -> TestResponse | Raised:
        assert self.browser is not None
        return _guard(lambda: self.browser.open(path, method=method.upper(),  # type: ignore[union-attr]
                                                **kwargs))


class Raised:
    """A request whose view raised: what a server would answer with a 500."""

    status_code = 500

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.text = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:200]
        self.is_json = False
        self.json = None


def _guard(send: Callable[[], TestResponse]) -> TestResponse | Raised:
    try:
        return send()
    except Exception as exc:  # noqa: BLE001  (recorded as the 500 a server would send)
        db.session.rollback()
        return Raised(exc)


def problem_of(response: TestResponse | Raised, *, api: bool) -> str | None:
    """What is wrong with the answer to bad input, if anything."""
    if isinstance(response, Raised):
        return f"500 ({response.text})"
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.get_data(as_text=True)[:120]!r}"
    if status < 400:
        return f"accepted with {status}"
    if api:
        body = response.json if response.is_json else None
        if not (isinstance(body, dict) and body.get("error") and body.get("message")):
            return f"{status} without a JSON error and message: " \
                   f"{response.get_data(as_text=True)[:120]!r}"
    return None


Case = tuple[str, Callable[[], "TestResponse | Raised"], bool]

#: Marks a case whose input may also be accepted: it must only never be a 5xx.
LENIENT = "(may be accepted) "


def check_cases(cases: list[Case]) -> int:
    """Send every case; fail listing each one answered badly or that wrote anything.

    A case labelled with :data:`LENIENT` may be accepted (and then write); it
    must still never answer 5xx.
    """
    before = snapshot()
    problems = []
    for label, send, api in cases:
        response = send()
        lenient = label.startswith(LENIENT)
        problem = problem_of(response, api=api)
        if problem and not (lenient and response.status_code < 400):
            problems.append(f"{label}: {problem}")
        after = snapshot()
        if lenient and response.status_code < 400:
            before = after
        elif after != before:
            problems.append(f"{label}: wrote to {changed_tables(before, after)}")
            before = after
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)
    return len(cases)


@pytest.fixture
def owner(app: Flask, world: SimpleNamespace, login: Any) -> Sender:
    """The Owner, by token (API) and by session (pages): bad input is refused even for them."""
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "bad input")
    db.session.commit()
    return Sender(app, plaintext, login(world.users["owner"], world.ws))


# -- malformed ids -------------------------------------------------------------------------------


def test_malformed_ids(world: SimpleNamespace, owner: Sender) -> None:
    """Ids that are not ids, or out of range, in paths, queries and bodies."""
    viewer = world.members["viewer"].id
    finance = role(world, "finance").id
    lead = world.leads["member"].id
    api, page = owner.api, owner.page
    cases: list[Case] = []
    for bad in ("abc", "-1", "0", "1.5", "%00", HUGE):
        cases += [
            (f"api GET /roles/{bad}", lambda b=bad: api("get", f"/roles/{b}"), True),
            (f"api PATCH /roles/{bad}", lambda b=bad: api("patch", f"/roles/{b}",
                                                          json={"name": "X"}), True),
            (f"api GET /records/leads/{bad}",
             lambda b=bad: api("get", f"/records/leads/{b}"), True),
            (f"api DELETE member role {bad}",
             lambda b=bad: api("delete", f"/members/{viewer}/roles/{b}"), True),
            (f"page /leads/{bad}", lambda b=bad: page("get", f"/leads/{b}"), False),
            (f"page /settings/roles/{bad}/edit",
             lambda b=bad: page("get", f"/settings/roles/{b}/edit"), False),
            (f"page /settings/members/{bad}/access",
             lambda b=bad: page("get", f"/settings/members/{b}/access"), False),
        ]
    for bad_id in ("3", 1.5, True, None, [finance], {"id": finance}, -1, 0, 10**30):
        cases.append((f"api role_id={bad_id!r}", lambda v=bad_id: api(
            "post", f"/members/{viewer}/roles", json={"role_id": v}), True))
        if bad_id is not None:  # a null parent is valid: no parent
            cases.append((f"api parent_id={bad_id!r}", lambda v=bad_id: api(
                "post", "/roles", json={"name": "Orphan", "parent_id": v}), True))
    for query in (f"ids={finance},abc", f"ids={finance}", f"ids={finance},{HUGE}",
                  f"ids={finance},-3"):
        cases.append((f"api compare ?{query}",
                      lambda q=query: api("get", f"/roles/compare?{q}"), True))
    for query in ("move_to=abc", "move_to=-1", f"move_to={HUGE}"):
        cases.append((f"api delete ?{query}",
                      lambda q=query: api("delete", f"/roles/{finance}?{q}"), True))
    for query in ("page=abc", "page=0", "per_page=1000", f"page={HUGE}", "per_page=-5"):
        cases.append((f"api records ?{query}",
                      lambda q=query: api("get", f"/records/leads?{q}"), True))
    for query in ("actor=abc", f"actor={HUGE}", f"page={HUGE}", "per_page=0",
                  "from=notadate", "to=2026-13-45"):
        cases.append((f"api audit ?{query}", lambda q=query: api("get", f"/audit?{q}"), True))
    for query in (f"page={HUGE}",):  # (page=abc shows page 1: harmless)
        cases.append((f"page /leads/?{query}", lambda q=query: page("get", f"/leads/?{q}"),
                      False))
    cases += [
        ("page assign role_id=abc", lambda: page(
            "post", f"/settings/members/{viewer}/roles", data={"role_id": "abc"}), False),
        (f"page assign role_id={HUGE}", lambda: page(
            "post", f"/settings/members/{viewer}/roles", data={"role_id": HUGE}), False),
        ("page members ?role=abc", lambda: page("get", "/settings/members?role=abc"), False),
        ("page bulk delete ids=abc",
         lambda: page("post", "/leads/bulk-delete", data={"ids": ["abc", HUGE]}), False),
        (f"page edit lead {lead} owner_id={HUGE}", lambda: page(
            "post", f"/leads/{lead}/edit", data={"name": "X", "status": "new",
                                                 "owner_id": HUGE}), False),
    ]
    check_cases(cases)


# -- unknown resources and actions ------------------------------------------------------------


def test_unknown_resources_and_actions(world: SimpleNamespace, owner: Sender) -> None:
    api, page = owner.api, owner.page
    junior = role(world, "junior_rep").id
    form = matrix_values(owner.browser, f"/settings/roles/{junior}/edit")  # type: ignore[arg-type]
    cases: list[Case] = [
        ("api records of spaceships", lambda: api("get", "/records/spaceships"), True),
        ("api records of roles (no model)", lambda: api("get", "/records/roles"), True),
        ("api record of spaceships", lambda: api("get", "/records/spaceships/1"), True),
        ("api granting rockets.launch",
         lambda: api("get", "/roles/granting?permission=rockets.launch"), True),
        ("api granting leads.fly", lambda: api("get", "/roles/granting?permission=leads.fly"),
         True),
        ("api granting without dot", lambda: api("get", "/roles/granting?permission=leads"),
         True),
        ("api role with spaceships.view", lambda: api(
            "post", "/roles", json={"name": "U", "permissions": ["spaceships.view"]}), True),
        ("api role with leads.fly", lambda: api(
            "post", "/roles", json={"name": "U", "permissions": ["leads.fly"]}), True),
        ("api role with effect maybe", lambda: api("post", "/roles", json={
            "name": "U", "permissions": [{"resource": "leads", "action": "view",
                                          "effect": "maybe"}]}), True),
        ("api scopes for rockets", lambda: api("patch", f"/roles/{junior}", json={
            "permissions": ["leads.view"], "scopes": {"rockets": "own"}}), True),
        ("api field rule on rockets", lambda: api("patch", f"/roles/{junior}", json={
            "field_rules": {"rockets": {"fuel": "hidden"}}}), True),
        ("api field rule on owner_id", lambda: api("patch", f"/roles/{junior}", json={
            "field_rules": {"leads": {"owner_id": "hidden"}}}), True),
        ("page compare ?permission=rockets.launch",
         lambda: page("get", "/settings/roles/compare?permission=rockets.launch"), False),
        ("page matrix with an unknown cell and scope", lambda: page(
            "post", f"/settings/roles/{junior}/edit", data={
                **form, "scope__leads__view": "galaxy", "scope__spaceships__view": "all",
                "step": "save"}), False),
        ("page members ?status=bogus", lambda: page("get", "/settings/members?status=bogus"),
         False),
        ("page plan galaxy", lambda: page("post", "/settings/plan", data={"plan": "galaxy"}),
         False),
        ("page export of spaceships", lambda: page("get", "/spaceships/export.csv"), False),
    ]
    check_cases(cases)


# -- oversized bodies --------------------------------------------------------------------------


def test_oversized_bodies(app: Flask, world: SimpleNamespace, owner: Sender) -> None:
    """Over ``RBAC_API_MAX_BODY``: 413 (with or without a Content-Length); big forms: 4xx."""
    limit = app.config["RBAC_API_MAX_BODY"]
    big = json.dumps({"name": "Big", "description": "x" * limit}).encode()
    junior = role(world, "junior_rep").id
    api, page = owner.api, owner.page

    def streamed(path: str, method: str = "post") -> TestResponse | Raised:
        """No Content-Length (a chunked upload): the limit must still apply while reading."""
        return api(method, path, input_stream=io.BytesIO(big), content_type="application/json",
                   environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""})

    cases: list[Case] = [
        ("api create, Content-Length over the limit",
         lambda: api("post", "/roles", data=big, content_type="application/json"), True),
        ("api patch, Content-Length over the limit",
         lambda: api("patch", f"/roles/{junior}", data=big, content_type="application/json"),
         True),
        ("api create, streamed without Content-Length", lambda: streamed("/roles"), True),
        ("api patch, streamed without Content-Length",
         lambda: streamed(f"/roles/{junior}", "patch"), True),
        ("api a huge permissions list under the limit", lambda: api("post", "/roles", json={
            "name": "Many", "permissions": ["leads.view"] * (limit // 16)}), True),
        ("page role form with a 2 MB description", lambda: page(
            "post", "/settings/roles/new", data={"name": "Big", "description": "y" * 2_000_000,
                                                 "step": "save"}), False),
        ("page role form with a 64 KiB condition", lambda: page(
            "post", "/settings/roles/new", data={"name": "Big", "scope__deals__view": "all",
                                                 "cond__deals__view": "[" + "1," * 32_000 + "1]",
                                                 "step": "save"}), False),
    ]
    check_cases(cases)
    response = api("post", "/roles", data=big, content_type="application/json")
    assert response.status_code == 413
    assert response.json["error"] == "payload_too_large"  # type: ignore[index]


def test_page_bodies_over_a_mebibyte_are_413_and_change_nothing(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """``MAX_CONTENT_LENGTH``: a page form is a few KiB; a file part sent to a form
    that takes none, or a long body without a Content-Length, is refused before
    Werkzeug spools it, on the login page too."""
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    owner = login(world.users["owner"], world.ws)
    before = snapshot()
    big = b"x" * (2 * 1024 * 1024)
    with_file = {"name": "Big", "file": (big, "a.bin")}
    assert owner.post("/leads/new", **multipart(with_file)).status_code == 413
    chunked = owner.post("/leads/new", input_stream=io.BytesIO(b"name=Chunked&notes=" + big),
                         content_type="application/x-www-form-urlencoded", **CHUNKED)
    assert chunked.status_code == 413
    anonymous = app.test_client().post("/login", **multipart(with_file))
    assert anonymous.status_code == 413
    assert snapshot() == before


def _chunked(sender: Sender, path: str, body: bytes) -> TestResponse | Raised:
    """POST ``body`` as a chunked upload: no Content-Length, a stream the server ends."""
    return sender.api("post", path, input_stream=io.BytesIO(body),
                      content_type="application/json", **CHUNKED)


def test_a_chunked_body_over_the_limit_is_a_413_never_a_truncated_write(
        app: Flask, world: SimpleNamespace, owner: Sender) -> None:
    """A chunked JSON body past ``RBAC_API_MAX_BODY`` is a 413 naming the limit.

    Its first ``limit`` bytes may hold a whole JSON object (padding after it), or
    cut a string short: neither is read as the request. A chunked body of
    exactly the limit is accepted, as it is with a Content-Length.
    """
    limit = app.config["RBAC_API_MAX_BODY"]
    padded = b'{"name": "padded-chunked"}' + b" " * (100 * 1024)
    long_text = json.dumps({"name": "Long", "description": "x" * limit}).encode()
    before = snapshot()
    for body in (padded, long_text):
        response = _chunked(owner, "/roles", body)
        assert not isinstance(response, Raised)
        assert response.status_code == 413, response.text[:300]
        assert response.json["error"] == "payload_too_large"  # type: ignore[index]
        assert str(limit) in response.json["message"]  # type: ignore[index]
        assert response.json["field"] is None  # type: ignore[index]
    assert snapshot() == before
    exact = b'{"name": "exactly-at-the-limit"}'
    exact += b" " * (limit - len(exact))
    assert len(exact) == limit
    response = _chunked(owner, "/roles", exact)
    assert not isinstance(response, Raised)
    assert response.status_code == 201, response.text[:300]


# -- NUL in page forms ---------------------------------------------------------------------------


def test_no_page_form_stores_a_nul(world: SimpleNamespace, owner: Sender) -> None:
    """A NUL in any field of any page (the plugin's, the host's CRM forms, Flask-Admin, the
    sign-in form) is a 400 naming it, nothing written.

    PostgreSQL text cannot hold a NUL (the page would 500) and SQLite would
    store it; the API refuses it with the same message (``check_text``).
    """
    sales = world.departments["sales"].id
    forms: list[tuple[str, dict[str, str], str]] = [
        ("/settings/workspaces/new", {"name": "Nul\x00WS"}, "name"),
        ("/settings/departments", {"name": "Nul\x00Dept"}, "name"),
        (f"/settings/departments/{sales}/rename", {"name": "Nul\x00Dept"}, "name"),
        ("/settings/tokens", {"name": "Nul\x00Token"}, "name"),
        ("/settings/roles/new", {"name": "Fine", "description": "a\x00b", "step": "save"},
         "description"),
        ("/settings/request-access", {"action": "view", "resource": "leads",
                                      "note": "a\x00b"}, "note"),
        ("/settings/members?q=a%00b", {}, "q"),
        ("/deals/new", {"title": "crm nul\x00y", "stage": "new", "amount": "1"}, "title"),
        ("/admin/deals/new/", {"title": "adm nul\x00x", "stage": "new", "amount": "1"},
         "title"),
        ("/leads/?q=a%00b", {}, "q"),
        ("/login", {"email": "owner\x00@example.test", "password": "x"}, "email"),
    ]
    before = snapshot()
    for path, data, field in forms:
        answer = owner.page("post" if data else "get", path, data=data)
        assert answer.status_code == 400, (path, answer.status_code, answer.text[:200])
        assert f"{field} contains a NUL character" in answer.get_data(as_text=True), path
        assert snapshot() == before, (path, changed_tables(before, snapshot()))


# -- wrongly typed JSON ------------------------------------------------------------------------


WRONG_JSON: list[tuple[str, Any]] = [
    # (label, raw body text or a JSON value)
    ("empty", ""), ("not JSON", "name=X"), ("truncated", '{"name": "X", '),
    ("NaN", '{"name": NaN}'), ("Infinity", '{"name": "X", "parent_id": Infinity}'),
    ("array", '["leads.view"]'), ("null", "null"), ("number", "5"), ("string", '"X"'),
    ("invalid UTF-8", b'{"name": "\xff\xfe"}'),
    ("lone surrogate", '{"name": "\\ud800"}'),
    (LENIENT + "NUL in a name", {"name": "a\x00b"}),
    (LENIENT + "NUL in a description", {"name": "N", "description": "a\x00b"}),
    ("NUL in a permission", {"name": "N", "permissions": ["leads\x00.view"]}),
    ("deeply nested array", "[" * 20_000 + "]" * 20_000),
    ("deeply nested value", '{"name": ' + "[" * 5_000 + "]" * 5_000 + "}"),
    ("name a list", {"name": ["X"]}), ("name an object", {"name": {"en": "X"}}),
    ("name too long", {"name": "x" * 81}), ("name blank", {"name": "   "}),
    ("description a number", {"name": "D", "description": 5}),
    ("permissions null", {"name": "P", "permissions": None}),
    ("permission an int", {"name": "P", "permissions": [5]}),
    ("permission resource int", {"name": "P", "permissions": [{"resource": 5,
                                                                "action": "view"}]}),
    ("scope an int", {"name": "P", "permissions": [{"resource": "leads", "action": "view",
                                                    "scope": 1}]}),
    ("scopes a string", {"name": "P", "permissions": ["leads.view"], "scopes": "own"}),
    ("field_rules a list", {"name": "P", "field_rules": ["deals.amount"]}),
    ("field mode an int", {"name": "P", "field_rules": {"deals": {"amount": 1}}}),
    ("duplicate keys", '{"name": "A", "name": ["B"]}'),
]


def test_wrongly_typed_json(world: SimpleNamespace, owner: Sender) -> None:
    """Each body on create and on update; also on an assignment and a clone."""
    junior = role(world, "junior_rep").id
    viewer = world.members["viewer"].id
    cases: list[Case] = []
    for label, body in WRONG_JSON:
        for method, path in (("post", "/roles"), ("patch", f"/roles/{junior}"),
                             ("post", f"/roles/{junior}/clone"),
                             ("post", f"/members/{viewer}/roles")):
            if isinstance(body, (str, bytes)):
                kwargs: dict[str, Any] = {"data": body, "content_type": "application/json"}
            else:
                kwargs = {"json": body}
            lenient = LENIENT if label.startswith(LENIENT) else ""
            cases.append((f"{lenient}{method} {path}: {label.removeprefix(LENIENT)}",
                          lambda m=method, p=path, k=kwargs: owner.api(m, p, **k), True))
    for label, body in [("starts_at a number", {"role_id": 3, "starts_at": 20300101}),
                        ("starts_at year 99999", {"role_id": 3,
                                                  "starts_at": "99999-01-01T00:00:00Z"}),
                        ("expires_at garbage", {"role_id": 3, "expires_at": "soon"}),
                        ("expires_at with a bad offset",
                         {"role_id": 3, "expires_at": "2030-01-01T00:00:00+25:00"})]:
        cases.append((f"assign: {label}", lambda b=body: owner.api(
            "post", f"/members/{viewer}/roles", json=b), True))
    check_cases(cases)


# -- conditions ------------------------------------------------------------------------------


BAD_CONDITIONS: list[Any] = [
    [{"field": "nope", "op": "eq", "value": 1}],
    [{"field": "stage", "op": "like", "value": "w%"}],
    [{"field": "stage", "op": "regex", "value": ".*"}],
    [{"field": "stage; DROP TABLE deal", "op": "eq", "value": "won"}],
    [{"field": "__class__", "op": "eq", "value": 1}],
    [{"field": "client", "op": "eq", "value": 1}],          # a relationship, not a column
    [{"field": "stage", "op": "in", "value": "won"}],        # in needs a list
    [{"field": "stage", "op": "eq", "value": {"$ne": 1}}],
    [{"field": "amount", "op": "gt", "value": "lots"}],
    [{"field": "close_date", "op": "lt", "value": "yesterday"}],
    [{"field": "stage", "op": "eq"}],                        # no value
    [{"field": "stage", "op": "eq", "value": "won", "extra": 1}],
    [{"op": "eq", "value": "won"}],
    "stage == 'won'",
    [["stage", "eq", "won"]],
]


def test_conditions_naming_unknown_fields_or_operators(world: SimpleNamespace,
                                                       owner: Sender) -> None:
    """Through the API and through the matrix editor's condition input."""
    finance = role(world, "finance").id
    url = f"/settings/roles/{finance}/edit"
    form = matrix_values(owner.browser, url)  # type: ignore[arg-type]
    cases: list[Case] = []
    for i, condition in enumerate(BAD_CONDITIONS):
        grant = {"resource": "deals", "action": "view", "condition": condition}
        cases += [
            (f"api create #{i} {condition!r:.50}", lambda g=grant, n=i: owner.api(
                "post", "/roles", json={"name": f"C{n}", "permissions": [g]}), True),
            (f"api patch #{i}", lambda g=grant: owner.api(
                "patch", f"/roles/{finance}", json={"permissions": [g]}), True),
            (f"page #{i}", lambda c=condition: owner.page("post", url, data={
                **form, "cond__deals__view": json.dumps(c), "step": "save"}), False),
        ]
    # A condition on a resource without records (no columns to name).
    cases.append(("api condition on roles.view", lambda: owner.api("post", "/roles", json={
        "name": "R", "permissions": [{"resource": "roles", "action": "view",
                                      "condition": BAD_CONDITIONS[0]}]}), True))
    check_cases(cases)
    response = owner.api("post", "/roles", json={"name": "C", "permissions": [
        {"resource": "deals", "action": "view", "condition": BAD_CONDITIONS[1]}]})
    assert response.status_code == 400
    body = response.json
    assert body["field"] == "permissions[0].condition" and "like" in body["message"]  # type: ignore[index]


# -- property-based fuzz of the JSON API, from its OpenAPI description ------------------------


def _inline(schema: Any, components: dict[str, Any]) -> Any:
    """Replace ``{"$ref": "#/components/schemas/X"}`` by X itself (keeping sibling keys)."""
    if isinstance(schema, list):
        return [_inline(s, components) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        merged = {**_inline(components[name], components),
                  **{k: v for k, v in schema.items() if k != "$ref"}}
        return _inline(merged, components)
    return {k: _inline(v, components) for k, v in schema.items()}


DOC = openapi_document("/api/v1")
COMPONENTS = DOC["components"]["schemas"]
OPERATIONS = sorted((path, method, op) for path, ops in DOC["paths"].items()
                    for method, op in ops.items() if path != "/openapi.json")

#: Any JSON value: what a confused or hostile client may send instead of the schema's.
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)

_INSTANTS = st.datetimes(min_value=dt.datetime(1990, 1, 1), max_value=dt.datetime(2100, 1, 1))


def from_schema(schema: Any) -> st.SearchStrategy[Any]:
    """Values valid by ``schema`` (``$ref`` already inlined), for the keywords the API uses.

    ``type`` (one or a list), ``enum``, ``oneOf``/``anyOf``, objects (``properties``,
    ``required``, ``additionalProperties``), arrays (``items``), strings (``maxLength``,
    ``pattern``, ``format`` date-time and date), integers (``minimum``, ``maximum``;
    unbounded above when the schema says nothing, as a client may send).
    """
    if not isinstance(schema, dict) or not schema:
        return ANY_JSON
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    for key in ("oneOf", "anyOf"):
        if key in schema:
            return st.one_of([from_schema(s) for s in schema[key]])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([from_schema({**schema, "type": k}) for k in kind])
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "string":
        if schema.get("format") == "date-time":
            return _INSTANTS.map(lambda d: d.isoformat() + "Z")
        if schema.get("format") == "date":
            return _INSTANTS.map(lambda d: d.date().isoformat())
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(max_size=schema.get("maxLength", 40))
    if kind == "array":
        return st.lists(from_schema(schema.get("items", {})), max_size=5)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        required = set(schema.get("required", ()))
        fixed = st.fixed_dictionaries(
            {k: from_schema(v) for k, v in props.items() if k in required},
            optional={k: from_schema(v) for k, v in props.items() if k not in required})
        extra = schema.get("additionalProperties", True)
        if extra is False or props:
            return fixed
        values = ANY_JSON if extra is True else from_schema(extra)
        return st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=4)
    return ANY_JSON


def _body_strategy(op: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Bodies: valid by the schema (most), any JSON, raw bytes, or none at all."""
    body = op.get("requestBody")
    if body is None:
        return st.just(("none", None))
    schema = _inline(body["content"]["application/json"]["schema"], COMPONENTS)
    valid = from_schema(schema).map(lambda v: ("json", v))
    return st.one_of(valid, valid, ANY_JSON.map(lambda v: ("json", v)),
                     st.binary(max_size=64).map(lambda v: ("raw", v)), st.just(("none", None)))


def _param_strategy(param: dict[str, Any], ids: st.SearchStrategy[int]) -> st.SearchStrategy[str]:
    """A path or query parameter as text: a real id, a value by its schema, or any text."""
    schema = _inline(param.get("schema", {}), COMPONENTS)
    by_schema = from_schema(schema).map(str)
    if schema.get("type") == "integer":
        by_schema = st.one_of(ids.map(str), ids.map(str), by_schema)
    return st.one_of(by_schema, by_schema, st.text(max_size=12))


def fuzz_summary(failures: dict[tuple[str, ...], list[str]], examples: int) -> str:
    lines = [f"{examples} examples; {len(failures)} kind(s) of failure:"]
    for key, reproducers in sorted(failures.items()):
        lines.append(f"  {' | '.join(key)}  x{len(reproducers)}, e.g. {reproducers[0]}")
    return "\n".join(lines)


def test_fuzz_the_api_from_its_openapi_description(
        app: Flask, world: SimpleNamespace, record_property: Any) -> None:
    """Requests drawn from the OpenAPI description, as several members: never a 5xx.

    Checks per example: no 5xx; every error answer is JSON with ``error`` and
    ``message``; a refused or invalid request (4xx), and any GET, writes nothing.
    """
    m = rbac.models
    # A few extra rows so ids of every kind exist in both workspaces.
    extra = m.Role(workspace=world.ws, name="Fuzz target")
    workspaces.add_grant(rbac, extra, "leads", "view", "own")
    db.session.add(extra)
    db.session.commit()
    actors: dict[str, str | None] = {"anonymous": None, "bad token": "crmrbac_nope"}
    for key in ("owner", "admin", "manager", "viewer"):
        actors[key] = tokens.create_token(rbac, world.members[key], f"fuzz {key}")[1]
    db.session.commit()
    real_ids = sorted({r.id for r in db.session.scalars(db.select(m.Role))}
                      | {ms.id for ms in db.session.scalars(db.select(m.Membership))}
                      | {mr.id for mr in db.session.scalars(db.select(m.MemberRole))}
                      | {world.leads["member"].id, world.other["lead"].id,
                         membership_id(world.ws2, world.users["outsider"])})
    ids = st.sampled_from(real_ids)
    senders = {name: Sender(app, token, None) for name, token in actors.items()}
    failures: dict[tuple[str, ...], list[str]] = {}
    state = {"examples": 0, "baseline": snapshot()}

    operation = st.sampled_from(OPERATIONS).flatmap(lambda o: st.tuples(
        st.just(o),
        st.fixed_dictionaries({p["name"]: _param_strategy(p, ids)
                               for p in o[2].get("parameters", []) if p["in"] == "path"}),
        st.fixed_dictionaries({}, optional={p["name"]: _param_strategy(p, ids)
                                            for p in o[2].get("parameters", [])
                                            if p["in"] == "query"}),
        _body_strategy(o[2])))

    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(call=operation, actor=st.sampled_from(["owner"] * 4 + list(actors)))
    def probe(call: Any, actor: str) -> None:
        (template, method, _), path_params, query, (kind, body) = call
        path = re.sub(r"\{(\w+)\}", lambda mt: quote(path_params[mt.group(1)], safe=""),
                      template)
        if query:
            path += "?" + urlencode(query)
        kwargs: dict[str, Any] = {}
        if kind == "json":
            kwargs = {"data": json.dumps(body), "content_type": "application/json"}
        elif kind == "raw":
            kwargs = {"data": body, "content_type": "application/json"}
        state["examples"] += 1
        response = senders[actor].api(method, path, **kwargs)
        reproducer = f"{actor}: {method.upper()} /api/v1{path} {kwargs.get('data', b'')!r:.160}"
        status = response.status_code
        problems = []
        if isinstance(response, Raised) or status >= 500:
            problems.append(("5xx", response.text[:80] if isinstance(response, Raised)
                             else str(status)))
        elif status >= 400 and not (response.is_json and isinstance(response.json, dict)
                                    and response.json.get("error")
                                    and response.json.get("message")):
            problems.append(("error without a JSON message", str(status)))
        after = snapshot()
        if after != state["baseline"] and (status >= 400 or method == "get"):
            problems.append(("wrote on a refusal" if status >= 400 else "GET wrote",
                             ",".join(changed_tables(state["baseline"], after))))
        state["baseline"] = after
        for what, detail in problems:
            key = (method.upper(), template, what, re.sub(r"\d+", "N", detail))
            failures.setdefault(key, []).append(reproducer)

    probe()
    summary = fuzz_summary(failures, state["examples"])
    record_property("fuzz_examples", state["examples"])
    print(f"\nAPI fuzz: {summary}")
    assert not failures, summary
