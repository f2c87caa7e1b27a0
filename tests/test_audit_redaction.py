"""The audit trail names records only to readers who may view them (``audit.as_read_by``).

An event names records: a file attached to a client by its name, a refused
attempt on a record, an export by its search text. A member holding
``settings.view`` through a narrower role than Admin reads the trail on the
page, in its CSV and through the API; they must learn no more of the records
than the records' own pages tell them. Owners and Admins read it as stored.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from tests.rbac_helpers import custom_role, fast_passwords, give_role  # noqa: F401
from tests.test_api import Api

SECRET_FILE = "ZQXSECRET-contract.pdf"
SEEN_FILE = "ZQXSEEN-quote.pdf"
SEARCH = "q=ZQXSEARCH"


def trail_events(world: SimpleNamespace) -> dict[str, Any]:
    """A file on a client the junior rep cannot see, one on a deal they see, an export with
    its search text and a refusal on the hidden client."""
    hidden, seen = world.clients["member"], world.deals["member-won"]
    A, ws = rbac.models.AuditEvent, world.ws.id
    rows = {
        "hidden_file": A(workspace_id=ws, action="attachment.uploaded", resource="clients",
                         target=f"{SECRET_FILE} on clients #{hidden.id}", detail={"size": 3}),
        "seen_file": A(workspace_id=ws, action="attachment.uploaded", resource="deals",
                       target=f"{SEEN_FILE} on deals #{seen.id}", detail={"size": 3}),
        "export": A(workspace_id=ws, action="export", resource="deals",
                    target="deals CSV (3 rows)", detail={"rows": 3, "query": SEARCH}),
        "refusal": A(workspace_id=ws, action="access.denied", resource="clients",
                     target=f"clients #{hidden.id}",
                     detail={"action": "edit", "record_id": hidden.id, "reason": "not yours",
                             "path": f"/clients/{hidden.id}/edit", "method": "GET"}),
    }
    with rbac.system():
        db.session.add_all(rows.values())
        db.session.commit()
    return rows


def readings(app: Flask, login: Any, world: SimpleNamespace, key: str) -> dict[str, str]:
    """The trail as ``key`` reads it: the page, its CSV and the API's JSON."""
    client = login(world.users[key], world.ws)
    _, plaintext = tokens.create_token(rbac, world.members[key], f"audit {key}")
    db.session.commit()
    out = {"page": client.get("/settings/audit"), "csv": client.get("/settings/audit.csv"),
           "api": Api(app, plaintext).get("/audit?per_page=200")}
    for name, response in out.items():
        assert response.status_code == 200, (key, name, response.status_code)
    return {name: response.get_data(as_text=True) for name, response in out.items()}


def test_a_narrow_reader_of_the_trail_is_not_told_what_names_records_they_cannot_see(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    auditor = custom_role(world, "Auditor", [("settings", "view", "all"),
                                             ("settings", "export", "all"),
                                             ("members", "view", "all"),
                                             ("deals", "view", "all")])
    give_role(world.members["junior_rep"], auditor)
    db.session.commit()
    trail_events(world)
    hidden = world.clients["member"].id
    for name, text in readings(app, login, world, "junior_rep").items():
        assert SECRET_FILE not in text and "ZQXSEARCH" not in text, name
        assert f"clients #{hidden}" not in text and f"/clients/{hidden}/" not in text, name
        assert "a record you cannot see" in text, name
        assert SEEN_FILE in text, name  # a file on a deal they see keeps its name
    for name, text in readings(app, login, world, "admin").items():
        assert SECRET_FILE in text and "ZQXSEARCH" in text, name
        assert "a record you cannot see" not in text, name


def test_the_admin_panel_of_the_trail_opens_only_to_who_reads_it_as_stored(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """Flask-Admin's audit panel shows events as stored, so it is for settings.manage:
    the narrow reader gets a 403 there (list and details) and reads the trail on the
    audit page, redacted. Its members and roles panels follow members.view and
    roles.view, not settings.view."""
    auditor = custom_role(world, "Auditor", [("settings", "view", "all")])
    give_role(world.members["junior_rep"], auditor)
    db.session.commit()
    rows = trail_events(world)
    reader = login(world.users["junior_rep"], world.ws)
    assert SECRET_FILE not in reader.get("/settings/audit").text
    details = f"/admin/rbac_admin_audit/details/?id={rows['hidden_file'].id}"
    for url in ("/admin/rbac_admin_audit/", details):
        response = reader.get(url)
        assert response.status_code == 403 and SECRET_FILE not in response.text, url
    for panel in ("rbac_admin_members", "rbac_admin_roles", "rbac_admin_departments"):
        assert reader.get(f"/admin/{panel}/").status_code == 403, panel
    admin = login(world.users["admin"], world.ws)
    assert SECRET_FILE in admin.get(details).text
    for panel in ("rbac_admin_audit", "rbac_admin_members", "rbac_admin_roles"):
        assert admin.get(f"/admin/{panel}/").status_code == 200, panel
