"""IDOR sweep: every route that takes an id, asked for objects outside the member's view.

Routes come from ``app.url_map`` (and the Flask-Admin views registered on the
app), never from a hand-written list: a new route with an id argument is
probed automatically, and one whose argument cannot be classified fails
:func:`test_every_route_argument_is_classified` with its name.

"Outside the view" comes from the policy: for CRM records, every record of
either workspace for which ``rbac.can("view", resource, record)`` is False for
the member (``invisible_records``); for the plugin's own objects (roles,
memberships, assignments, departments, invitations, tokens, SoD pairs, audit
events), every object of the other workspace.

The answer must be a 404 that does not show the object's distinctive text.
A 403 is accepted only when the same member gets 403 for an id that exists
nowhere on the same route: the member lacks the route's permission
altogether (e.g. a Viewer on ``/settings/roles/<id>/edit``), so the answer
says nothing about the id. Likewise Flask-Admin's redirect of an edit view
the member may not use (:func:`refusals_like_unknown`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from tests.conftest import make_app
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.conftest import (
    Obj,
    Prober,
    admin_endpoint,
    admin_panels,
    body_text,
    foreign_objects,
    id_arguments,
    invisible_records,
    logged_in,
    own_objects,
    record_resources,
    route_values,
    rules_of,
    snapshot_database,
    snapshot_diff,
)
from tests.security.write_specs import (
    Attempt,
    foreign_attempts,
    forged_invitation_token,
    unsafe_routes,
)

#: An id no object of any kind has: the baseline answer of a route for a member.
NOWHERE = 2**31 - 1

#: Flask-Admin endpoints that take ``?id=`` on GET.
ADMIN_GET_ID_VIEWS = ("details_view", "edit_view")


@dataclass(frozen=True)
class GetRoute:
    """A GET route taking ids: the rule (or Flask-Admin view) and its id arguments."""

    rule: Rule
    args: dict[str, str]  # argument -> kind; "id" in the query string for Flask-Admin
    query_id: bool = False

    def url(self, app: Flask, values: dict[str, Any]) -> str:
        adapter = app.url_map.bind("crm.test")
        if self.query_id:
            return str(adapter.build(self.rule.endpoint, {}, method="GET")) + \
                f"?id={values['id']}"
        return str(adapter.build(self.rule.endpoint, {**route_values(self.rule), **values},
                                 method="GET"))


def get_id_routes(app: Flask) -> list[GetRoute]:
    """Every GET route that takes an object id, in the path or (Flask-Admin) the query."""
    routes = []
    for rule in rules_of(app):
        if "GET" not in (rule.methods or ()):
            continue
        admin = admin_endpoint(app, rule)
        if admin is not None and admin[1] in ADMIN_GET_ID_VIEWS:
            routes.append(GetRoute(rule, {"id": admin[0].kind}, query_id=True))
            continue
        args = id_arguments(rule)
        if any(not k.startswith("capability:") for k in args.values()):
            routes.append(GetRoute(rule, args))
    return routes


def test_every_route_argument_is_classified() -> None:
    """Every URL argument of every route names a known kind of object, or none (listed).

    A route added later with an argument the sweeps do not know fails here,
    naming the route, instead of being skipped by the sweeps.
    """
    app = make_app("sqlite://")
    rules = rules_of(app)
    for rule in rules:
        id_arguments(rule)
        admin_endpoint(app, rule)
    unsafe_routes(app)  # every state-changing route has a write rule too
    assert admin_panels(app), "no Flask-Admin views found: the ?id= sweep would be empty"
    families = {r.rule.endpoint.partition(".")[0] for r in get_id_routes(app)}
    # The sweep sees the CRM pages, the settings pages, the API and the admin panels.
    assert {"leads", "rbac_settings", "rbac_api", "admin_leads"} <= families, families


def refusals_like_unknown(route: GetRoute) -> frozenset[int]:
    """Statuses other than 404 accepted when an id that exists nowhere gets the same.

    403: the member lacks the route's permission whatever the id. 302 on
    Flask-Admin views: with ``can_edit`` False the edit view redirects to
    the list before looking at the id (Flask-Admin's own behaviour).
    """
    return frozenset({403, 302}) if route.query_id else frozenset({403})


class Prober404:
    """Send probes as one member and judge them (404, no leak; 403 only as baseline)."""

    def __init__(self, app: Flask, prober: Prober, stats: Counter[str]) -> None:
        self.app, self.prober, self.stats = app, prober, stats
        self.client: FlaskClient = logged_in(app, prober.user, prober.workspace)
        self.baselines: dict[str, int] = {}
        self.failures: list[str] = []

    def baseline(self, route: GetRoute, values: dict[str, Any], arg: str) -> int:
        """The route's status for an id that exists nowhere (cached per route and argument)."""
        key = f"{route.rule.endpoint}:{arg}:{sorted(values.items())}"
        if key not in self.baselines:
            url = route.url(self.app, {**values, arg: NOWHERE})
            self.baselines[key] = self.client.get(url).status_code
            self.stats["idor_probes"] += 1
        return self.baselines[key]

    def refused_outright(self, route: GetRoute, values: dict[str, Any], arg: str) -> bool:
        """Whether the route refuses the member before looking at the id.

        True when even an id that exists nowhere gets a refusal other than
        404 (a 403, Flask-Admin's redirect): then the answer cannot depend on
        the id, and one probe per route stands for all (it is still checked
        to be that same refusal, showing nothing).
        """
        return self.baseline(route, values, arg) in refusals_like_unknown(route)

    def probe(self, route: GetRoute, values: dict[str, Any], arg: str, obj: Obj) -> None:
        url = route.url(self.app, {**values, arg: obj.id})
        response = self.client.get(url)
        self.stats["idor_probes"] += 1
        status = response.status_code
        problem = None
        if status != 404:
            baseline = self.baseline(route, values, arg)
            if status not in refusals_like_unknown(route) or status != baseline:
                problem = (f"status {status}, expected 404 (an id that exists nowhere "
                           f"gets {baseline})")
        if obj.secret is not None and obj.secret in body_text(response):
            problem = (problem + "; " if problem else "") + f"body shows {obj.secret!r}"
        if problem:
            self.stats["idor_leaks"] += 1
            self.failures.append(f"{self.prober.key}@{self.prober.workspace.slug}: GET {url} "
                                 f"({obj.label}): {problem}")


def outside_view(w: SimpleNamespace, prober: Prober, kind: str) -> list[Obj]:
    """Objects of ``kind`` outside ``prober``'s view, per the policy (see the module doc)."""
    if kind.startswith("record:"):
        return invisible_records(w, prober, kind.partition(":")[2])
    return foreign_objects(w, prober.workspace_id, kind)


def own_value(w: SimpleNamespace, prober: Prober, kind: str) -> int:
    """An id of ``kind`` the prober may see (for the *other* arguments of a route)."""
    if kind.startswith("record:"):
        resource = kind.partition(":")[2]
        hidden = {o.id for o in invisible_records(w, prober, resource)}
        visible = [o for o in own_objects(w, prober.workspace_id, kind) if o.id not in hidden]
        return visible[0].id if visible else NOWHERE
    return int(w.targets[prober.workspace_id].get(kind) or
               own_objects(w, prober.workspace_id, kind)[0].id)


def test_idor_get_sweep(app: Flask, security_world: SimpleNamespace,
                        probe_stats: Counter[str]) -> None:
    """Every id-taking GET route × every attacking member × every object outside their view.

    Members: one per built-in role in ``w.ws``, plus a Member and the Owner
    of ``w.ws2`` acting there (``PROBERS``). Also checks that the whole sweep
    wrote nothing (GET never changes state, audit events aside).
    """
    w = security_world
    routes = get_id_routes(app)
    before = snapshot_database()
    failures: list[str] = []
    probed_routes: set[str] = set()
    kinds = {k for r in routes for k in r.args.values() if k != "record:*"}
    kinds |= {f"record:{r}" for r in record_resources()}
    outside = {(p.key, k): outside_view(w, p, k) for p in w.probers for k in kinds}
    own = {(p.key, k): own_value(w, p, k) for p in w.probers for k in kinds}
    for prober in w.probers:
        judge = Prober404(app, prober, probe_stats)
        for route in routes:
            for arg, kind in route.args.items():
                kinds = ([f"record:{r}" for r in record_resources()] if kind == "record:*"
                         else [kind])
                for one_kind in kinds:
                    values = {a: own[prober.key, k] for a, k in route.args.items()
                              if a != arg and k != "record:*"}
                    if kind == "record:*":
                        values["resource"] = one_kind.partition(":")[2]
                    objs = outside[prober.key, one_kind]
                    if judge.refused_outright(route, values, arg):
                        objs = objs[:1]
                    for obj in objs:
                        judge.probe(route, values, arg, obj)
                        probed_routes.add(route.rule.endpoint)
        failures += judge.failures
    unprobed = {r.rule.endpoint for r in routes} - probed_routes
    assert not unprobed, f"id routes no probe reached (no object outside view?): {unprobed}"
    assert not failures, f"{len(failures)} IDOR leaks:\n" + "\n".join(failures[:40])
    changes = snapshot_diff(before, snapshot_database())
    assert not changes, "GET probes changed the database:\n" + "\n".join(changes)


#: Ids read from the query string of non-admin pages (url_map cannot show these):
#: (endpoint, kind of the id, query builder (foreign id, own ids) -> args, accepted statuses).
#: 400 is how the settings' query-string forms refuse an unknown id ("No such member in
#: this workspace" on the form); the CRM create pages pre-select a client from
#: ``?client_id=`` and must simply not show a client the member cannot see (200).
QUERY_ID_PROBES: tuple[tuple[str, str, Any, frozenset[int]], ...] = (
    ("rbac_settings.new_role", "role", lambda f, own: {"clone": f}, frozenset({404})),
    ("rbac_settings.compare", "role", lambda f, own: {"ids": [f, own["role"]]},
     frozenset({400, 404})),
    ("rbac_api.compare_roles", "role", lambda f, own: {"ids": f"{f},{own['role']}"},
     frozenset({404})),
    ("rbac_oversight.explain_page", "membership",
     lambda f, own: {"member": f, "resource": "leads", "action": "view"},
     frozenset({400, 404})),
    *((endpoint, f"record:{res}", builder, frozenset({400, 404}))
      for res in ("leads", "deals", "clients", "tasks", "notes")
      for endpoint, builder in (
          ("rbac_oversight.explain_page",
           lambda f, own, res=res: {"member": own["membership"], "resource": res,
                                    "action": "view", "record": f}),
          ("rbac_oversight.who_could",
           lambda f, own, res=res: {"resource": res, "record": f, "action": "view"}))),
    *((f"{res}.create", "record:clients", lambda f, own: {"client_id": f}, frozenset({200}))
      for res in ("deals", "tasks", "notes")),
)


def test_idor_query_string_ids(app: Flask, security_world: SimpleNamespace,
                               probe_stats: Counter[str]) -> None:
    """Ids passed in the query string of settings, API and CRM pages, outside the view.

    Same judgement as the path sweep (a 403 only as the member's baseline for
    an id that exists nowhere), with the statuses of :data:`QUERY_ID_PROBES`.
    """
    w = security_world
    adapter = app.url_map.bind("crm.test")
    failures: list[str] = []
    for prober in w.probers:
        client = logged_in(app, prober.user, prober.workspace)
        own = w.targets[prober.workspace_id]
        for endpoint, kind, builder, accepted in QUERY_ID_PROBES:
            if endpoint not in app.view_functions:
                continue  # a host without that page
            base_url = str(adapter.build(endpoint, builder(NOWHERE, own), method="GET"))
            baseline = client.get(base_url).status_code
            probe_stats["idor_probes"] += 1
            objs = outside_view(w, prober, kind)
            for obj in objs[:1] if baseline == 403 else objs:  # see refused_outright
                url = str(adapter.build(endpoint, builder(obj.id, own), method="GET"))
                response = client.get(url)
                probe_stats["idor_probes"] += 1
                status = response.status_code
                ok = status in accepted or (status == 403 and baseline == 403)
                if not ok or (obj.secret and obj.secret in body_text(response)):
                    probe_stats["idor_leaks"] += 1
                    failures.append(f"{prober.key}: GET {url} ({obj.label}): {status}, "
                                    f"accepted {sorted(accepted)}, baseline {baseline}"
                                    + (f", shows {obj.secret!r}" if obj.secret and obj.secret
                                       in body_text(response) else ""))
    assert not failures, "\n".join(failures[:40])


def test_idor_forged_invitation_links(app: Flask, security_world: SimpleNamespace,
                                      probe_stats: Counter[str]) -> None:
    """Invitation links are capabilities: a forged one shows nothing of the invitation."""
    w = security_world
    anonymous = app.test_client()
    member = logged_in(app, w.users["outsider"], w.ws2)
    for ws_id, (_inv, token) in ((i, w.invitations[i]) for i in w.targets):
        email = next(o.secret for o in own_objects(w, ws_id, "invitation"))
        for client in (anonymous, member):
            for forged in (forged_invitation_token(token), "not-a-token", token[:20]):
                response = client.get(f"/settings/invitations/{forged}")
                probe_stats["idor_probes"] += 1
                assert response.status_code in (400, 404), (forged, response.status_code)
                assert email not in body_text(response)


def run_attempt(app: Flask, w: SimpleNamespace, attempt: Attempt,
                clients: dict[str, FlaskClient]) -> Any:
    """Send ``attempt`` as its member (session or Bearer token) or anonymously."""
    if attempt.who == "anonymous":
        client = app.test_client()
        headers = {}
    elif attempt.bearer:
        client = app.test_client()
        headers = {"Authorization": f"Bearer {w.prober[attempt.who].token}"}
    else:
        if attempt.who not in clients:
            p = w.prober[attempt.who]
            clients[attempt.who] = logged_in(app, p.user, p.workspace)
        client, headers = clients[attempt.who], {}
    req = attempt.req
    return client.open(req.url, method=req.method, data=req.data, json=req.json,
                       headers=headers)


def judge_attempts(app: Flask, w: SimpleNamespace, attempts: list[Attempt],
                   stats: Counter[str], counter: str, leak_counter: str) -> list[str]:
    """Send each attempt; return what went wrong (status, shown secret, database change).

    The database is compared with a snapshot after every attempt, so a
    change is pinned on the attempt that made it.
    """
    failures: list[str] = []
    clients: dict[str, FlaskClient] = {}
    before = snapshot_database()
    for attempt in attempts:
        response = run_attempt(app, w, attempt, clients)
        stats[counter] += 1
        after = snapshot_database()
        problems = []
        status = response.status_code
        if status not in attempt.expected:
            problems.append(f"status {status}, expected {sorted(attempt.expected)}")
        elif status == 302 and attempt.who == "anonymous" and not \
                response.headers.get("Location", "").startswith(("/login", "http://crm.test/login")):
            problems.append(f"redirect to {response.headers.get('Location')}, not the login")
        if attempt.secret and attempt.secret in body_text(response):
            problems.append(f"body shows {attempt.secret!r}")
        changes = snapshot_diff(before, after)
        if changes:
            problems.append("database changed:\n    " + "\n    ".join(changes[:8]))
            before = after
        if problems:
            stats[leak_counter] += 1
            failures.append(f"{attempt.describe()}: " + "; ".join(problems))
    return failures


def test_idor_foreign_ids_in_write_routes(app: Flask, security_world: SimpleNamespace,
                                          probe_stats: Counter[str]) -> None:
    """Other workspaces' role, member, assignment, department, invitation, token,
    SoD-pair and record ids in every state-changing route, by an Owner.

    An Owner may do anything in their own workspace, so only the id can be
    what refuses: 404 (Flask-Admin: its refusals, see write_specs), nothing
    changed, nothing shown.
    """
    w = security_world
    attempts = [a for rule, method in unsafe_routes(app)
                for a in foreign_attempts(app, w, rule, method)]
    assert attempts, "no state-changing route takes an id?"
    failures = judge_attempts(app, w, attempts, probe_stats, "idor_probes", "idor_leaks")
    assert not failures, f"{len(failures)} of {len(attempts)} foreign-id writes got " \
        "through:\n" + "\n".join(failures[:40])


def test_world_has_foreign_objects_of_every_kind(security_world: SimpleNamespace) -> None:
    """The sweeps are only as good as the objects they aim at: both workspaces have each kind."""
    for kind in ("role", "membership", "department", "invitation", "token", "conflict",
                 "member_role", "audit_event", "agreement", "notification"):
        for ws_id in security_world.targets:
            assert foreign_objects(security_world, ws_id, kind), (kind, ws_id)
