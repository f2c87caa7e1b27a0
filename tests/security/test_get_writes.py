"""Reading changes nothing: every GET route, as every member, with ids they may see.

The IDOR sweep (``test_idor.py``) checks that probes for objects *outside* a
member's view write nothing. This sweep asks every GET route of the URL map
(pages, the JSON API with the member's token, Flask-Admin) for objects
*inside* their view, where a page could be tempted to "refresh" what it
shows, and checks the database is unchanged afterwards (the documented
bookkeeping aside: :data:`~tests.security.conftest.EXCLUDED_TABLES`, such as
the audit trail an export writes). A GET is not CSRF-protected: a link on
another site can make a member's browser send it, so a GET that writes is a
write anyone can trigger.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy import event
from werkzeug.routing import BuildError

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles
from crm_rbac_plugin.certification import lines
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.conftest import (
    CAPABILITY_ARGUMENTS,
    admin_endpoint,
    id_arguments,
    logged_in,
    route_values,
    rules_of,
    snapshot_database,
    snapshot_diff,
)
from tests.security.test_idor import own_value

#: GET routes that write by design, and what they write (each checked by its own test).
WRITES_BY_DESIGN = {
    "rbac_settings.mfa": "the set-up page draws the member's pending TOTP secret, an "
                         "unconfirmed credential of their own bound to the session that drew "
                         "it (test_the_mfa_set_up_page_writes_only_a_pending_secret_of_ones_own)",
}

#: Route arguments that are neither ids nor listed in ROUTE_VALUES: a value to send.
FREE_VALUES = {"export_type": "csv", "resource": "leads"}


def get_urls(app: Flask, w: SimpleNamespace, prober: Any) -> list[str]:
    """A URL of every GET route for ``prober``: ids of their own workspace they may see.

    A route with an argument this sweep cannot fill fails the sweep, naming it:
    a new route is never skipped silently.
    """
    urls, unfilled = [], []
    adapter = app.url_map.bind("crm.test")
    for rule in rules_of(app):
        if "GET" not in (rule.methods or ()) or rule.endpoint.endswith("static"):
            continue
        if rule.endpoint in WRITES_BY_DESIGN:
            continue
        if any((rule.endpoint, a) in CAPABILITY_ARGUMENTS for a in rule.arguments):
            continue  # the secret is the authorisation: tested with its own flows
        values: dict[str, Any] = {**route_values(rule)}
        for arg, kind in id_arguments(rule).items():
            if kind == "record:*":
                values.setdefault("resource", "leads")
                kind = "record:leads"
            values[arg] = own_value(w, prober, kind)
        values.update({a: FREE_VALUES[a] for a in rule.arguments - values.keys()
                       if a in FREE_VALUES})
        try:
            url = str(adapter.build(rule.endpoint, values, method="GET"))
        except BuildError:
            unfilled.append(f"{rule.endpoint} {rule.rule}")
            continue
        admin = admin_endpoint(app, rule)
        if admin is not None and admin[1] in ("details_view", "edit_view"):
            url += f"?id={own_value(w, prober, admin[0].kind)}"
        urls.append(url)
    assert not unfilled, f"GET routes the sweep cannot fill: {unfilled}"
    return urls


def make_pending_review_changes(w: SimpleNamespace) -> None:
    """Give Member2 (no prober) the Admin role after the runs started, so that an open
    run has lines to refresh: the state in which its pages used to write."""
    m = rbac.models
    admin_role = db.session.scalar(sa.select(m.Role).where(m.Role.workspace_id == w.ws.id,
                                                           m.Role.key == "admin"))
    roles.assign_role(rbac, w.prober["owner"].access, w.members["member2"], admin_role)
    db.session.commit()
    run = w.certification_runs[w.ws.id]
    assert lines.pending_changes(rbac, run), "no run has a change to show"


def test_no_get_route_writes(app: Flask, security_world: SimpleNamespace,
                             probe_stats: Counter[str]) -> None:
    """Every GET route × every member: the database is the same afterwards.

    Each request's INSERT, UPDATE and DELETE statements are noted with its
    URL, so that a change the final snapshot finds is named by the request
    that made it.
    """
    w = security_world
    make_pending_review_changes(w)
    before = snapshot_database()
    writes: list[tuple[str, str]] = []
    current = [""]

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
            writes.append((current[0], statement))

    asked = 0
    event.listen(db.engine, "before_cursor_execute", note)
    try:
        for prober in w.probers:
            client = logged_in(app, prober.user, prober.workspace)
            token = {"Authorization": f"Bearer {prober.token}"}
            for url in get_urls(app, w, prober):
                current[0] = f"GET {url} as {prober.key}"
                client.get(url, headers=token if url.startswith("/api/") else {})
                asked += 1
    finally:
        event.remove(db.engine, "before_cursor_execute", note)
    changes = snapshot_diff(before, snapshot_database())
    probe_stats["get_reads"] += asked
    probe_stats["get_writes"] += len(changes)
    tables = {line.partition(":")[0] for line in changes}
    culprits = sorted({who for who, sql in writes if any(t in sql for t in tables)})
    assert not changes, ("GET requests wrote:\n" + "\n".join(changes[:20])
                         + "\nby:\n" + "\n".join(culprits[:20]))
    assert asked >= 150 * len(w.probers), asked


def test_the_mfa_set_up_page_writes_only_a_pending_secret_of_ones_own(
        app: Flask, security_world: SimpleNamespace) -> None:
    """The one GET that writes by design (:data:`WRITES_BY_DESIGN`): an unconfirmed
    credential of the member asking, and nothing else."""
    w = security_world
    C = rbac.models.MfaCredential
    for key in ("viewer", "outsider"):
        prober = w.prober[key]
        before = snapshot_database()
        page = logged_in(app, prober.user, prober.workspace).get("/settings/account/mfa")
        assert page.status_code == 200
        changes = snapshot_diff(before, snapshot_database())
        assert changes and all(c.startswith("rbac_mfa_credential: +") for c in changes), changes
        pending = db.session.scalars(sa.select(C).where(C.user_id == prober.user.id)).one()
        assert pending.confirmed_at is None
