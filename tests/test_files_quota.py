"""A workspace's attachments take at most its plan's storage (``RBAC_FILES_QUOTA_BYTES``).

An upload past it is a 409 naming ``file`` and stores nothing; deleting a file
frees its bytes; a mapping gives each plan its own limit; the plan page shows
the figures; two uploads at once cannot both take the last bytes. SQLite and
PostgreSQL (a file database for SQLite: the race runs two threads).
"""

from __future__ import annotations

import io
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.errors import ConfigurationError
from crm_rbac_plugin.files import quota, quota_for
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_files import PDF, rows, stored_files, upload

pytestmark = pytest.mark.sqlite_file


@pytest.fixture
def member(app: Flask, world: SimpleNamespace, store: Path) -> FlaskClient:
    client = app.test_client(user=world.users["member"])
    with client.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = world.ws.id
    return client


def events(action: str) -> int:
    A = rbac.models.AuditEvent
    with rbac.system():
        return int(db.session.scalar(sa.select(sa.func.count()).where(A.action == action)))


def test_an_upload_past_the_quota_is_a_409_and_stores_nothing(
        app: Flask, world: SimpleNamespace, member: FlaskClient, store: Path) -> None:
    app.config["RBAC_FILES_QUOTA_BYTES"] = 2 * len(PDF)
    lead = world.leads["member"].id
    first = upload(member, "leads", lead)
    assert first.status_code == 201 and upload(member, "leads", lead).status_code == 201
    files_before = stored_files(store)
    refused = upload(member, "leads", lead)
    assert refused.status_code == 409
    body = refused.get_json()
    assert body["field"] == "file" and str(2 * len(PDF)) in body["message"]
    assert len(rows()) == 2 and stored_files(store) == files_before
    assert events("attachment.uploaded") == 2
    # The page answers the same, on the record's page with the message.
    page = member.post(f"/leads/{lead}/attachments",
                       data={"file": (io.BytesIO(PDF), "more.pdf")},
                       content_type="multipart/form-data")
    assert page.status_code == 409 and "does not fit" in page.get_data(as_text=True)
    # Deleting a file frees its bytes.
    gone = member.post(f"/attachments/{first.get_json()['id']}/delete",
                       headers={"Accept": "application/json"})
    assert gone.status_code in (200, 204, 302), gone.get_data(as_text=True)
    assert upload(member, "leads", lead).status_code == 201


def test_each_plan_has_its_own_storage(app: Flask, world: SimpleNamespace,
                                       member: FlaskClient) -> None:
    plan = world.ws.plan
    app.config["RBAC_FILES_QUOTA_BYTES"] = {plan: 0, "*": 10 ** 9}
    assert quota_for(plan) == 0 and quota_for("any other") == 10 ** 9
    assert upload(member, "leads", world.leads["member"].id).status_code == 409
    app.config["RBAC_FILES_QUOTA_BYTES"] = {plan: None, "*": 0}
    assert quota_for(plan) is None
    assert upload(member, "leads", world.leads["member"].id).status_code == 201
    app.config["RBAC_FILES_QUOTA_BYTES"] = None
    assert upload(member, "leads", world.leads["member"].id).status_code == 201
    for wrong in ("1GB", -1, True):
        app.config["RBAC_FILES_QUOTA_BYTES"] = wrong
        with app.test_request_context(), pytest.raises(ConfigurationError):
            quota_for(plan)


def test_the_plan_page_shows_what_the_files_take(app: Flask, world: SimpleNamespace,
                                                 member: FlaskClient) -> None:
    app.config["RBAC_FILES_QUOTA_BYTES"] = 1024 ** 2
    assert upload(member, "leads", world.leads["member"].id).status_code == 201
    owner = app.test_client(user=world.users["owner"])
    with owner.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = world.ws.id
    page = owner.get("/settings/plan").get_data(as_text=True)
    assert f"{len(PDF)} Bytes of 1.0 MiB taken" in page


def test_two_uploads_at_once_cannot_both_take_the_last_bytes(
        app: Flask, world: SimpleNamespace, member: FlaskClient, store: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both uploads reach the check together; the workspace row's lock makes the
    second count the first's file, so one of them is refused."""
    app.config["RBAC_FILES_QUOTA_BYTES"] = len(PDF)
    lead = world.leads["member"].id
    db.session.remove()
    barrier = threading.Barrier(2, timeout=10)
    locking = quota.write_lock

    def together(*args: Any) -> None:
        barrier.wait()
        locking(*args)

    monkeypatch.setattr(quota, "write_lock", together)
    statuses: list[int] = []

    def post() -> None:
        client = app.test_client(user=world.users["member"])
        with client.session_transaction() as sess:
            sess[app.config["RBAC_SESSION_KEY"]] = world.ws.id
        statuses.append(upload(client, "leads", lead).status_code)

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [201, 409]
    assert len(rows()) == 1 and len(stored_files(store)) == 1
