"""Viewing as a member is read-only on every state-changing route, not only through the
session: a view that writes with a Core statement, an audit event alone or a side effect
(a mail, a single-use download) is refused before it runs.

The Owner views as the Admin and sends, to every POST/PUT/PATCH/DELETE route of the app,
the request an Owner would send (:func:`~tests.security.write_specs.legit_request`):
each answers 403 with the read-only message, no mail leaves, and every table is as it
was, the audit trail included. Stopping the view, and signing out (which stops it first,
``test_view_as.py``), are the writes allowed.
"""

from __future__ import annotations

from types import SimpleNamespace

from flask import Flask

from crm_app.extensions import mail
from crm_rbac_plugin.oversight import viewas
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.conftest import logged_in, snapshot_database, snapshot_diff
from tests.security.write_specs import legit_request, unsafe_routes


def test_every_write_is_refused_while_viewing_as(app: Flask,
                                                security_world: SimpleNamespace) -> None:
    w = security_world
    owner = logged_in(app, w.users["owner"], w.ws)
    started = owner.post("/settings/view-as", data={"membership_id": str(w.members["admin"].id),
                                                    "next": "/"})
    assert started.status_code == 302
    before = snapshot_database()
    failures = []
    with mail.record_messages() as outbox:
        for rule, method in unsafe_routes(app):
            if (rule.endpoint == viewas.STOP_ENDPOINT
                    or rule.endpoint in app.config["RBAC_MFA_EXEMPT_ENDPOINTS"]):
                continue
            req = legit_request(app, w, rule, method, w.ws.id)
            response = owner.open(req.url, method=req.method, data=req.data, json=req.json)
            text = response.get_data(as_text=True)
            if response.status_code != 403 or "viewing the workspace as another member" not in text:
                failures.append(f"{req.method} {req.url}: {response.status_code}")
    assert not failures, f"{len(failures)} writes not refused while viewing as:\n" + \
        "\n".join(failures[:40])
    assert outbox == []
    assert snapshot_diff(before, snapshot_database()) == []
    with owner.session_transaction() as sess:
        assert sess.get(viewas.SESSION_KEY) == w.members["admin"].id  # still viewing as
    assert owner.post("/settings/view-as/stop").status_code == 302
    with owner.session_transaction() as sess:
        assert viewas.SESSION_KEY not in sess
