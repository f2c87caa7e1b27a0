"""A body over its route's limit is a 413 in words naming the limit, JSON for JSON clients.

The limit is found before the view reads the body: from the declared length
by the CSRF check (which parses the form first, so it runs enabled here), or
by the body cap while it reads a chunked body (:mod:`crm_app.bodies`). Every
test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.imports.models import ImportJob
from crm_app.rbac_setup import rbac
from tests.rbac_helpers import CHUNKED

PDF = b"%PDF-1.4\n"
#: Past the upload routes' room for the form around the file (bodies.FORM_FRAMING).
FAR = 200 * 1024


@pytest.fixture
def capped(database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, SimpleNamespace]]:
    from tests.conftest import app_with_tables, build_world

    with app_with_tables(database_url, WTF_CSRF_ENABLED=True, RBAC_IMPORT_MAX_BYTES=2048,
                         RBAC_FILES_MAX_BYTES=1000, RBAC_FILES_DIR=str(tmp_path),
                         CRM_IMPORT_PROGRESS_DIR=str(tmp_path)) as app:
        yield app, build_world()


def client(app: Flask, w: SimpleNamespace, key: str) -> Any:
    c = app.test_client(user=w.users[key])
    with c.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = w.ws.id
    return c


def post_file(c: Any, url: str, data: bytes, name: str, json: bool = False, **kw: Any) -> Any:
    headers = {"Accept": "application/json"} if json else {}
    return c.post(url, data={"file": (io.BytesIO(data), name), "csrf_token": "x"},
                  content_type="multipart/form-data", headers=headers, **kw)


def test_an_import_far_over_the_limit_gets_the_import_page_with_the_limit(
        capped: tuple[Flask, SimpleNamespace]) -> None:
    app, w = capped
    admin = client(app, w, "admin")
    response = post_file(admin, "/imports/leads", b"Name\n" + b"x\n" * FAR, "big.csv")
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "The file is larger than the import limit of 2 KiB: split it into smaller files." in page
    assert 'data-import-error="file"' in page
    as_json = post_file(admin, "/imports/leads", b"Name\n" + b"x\n" * FAR, "big.csv", json=True)
    assert as_json.status_code == 413 and as_json.json == {
        "error": "invalid", "field": "file",
        "message": "The file is larger than the import limit of 2 KiB: split it into smaller files."}
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0


def test_a_chunked_import_over_the_limit_names_the_limit(
        capped: tuple[Flask, SimpleNamespace]) -> None:
    app, w = capped
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"r.csv\""
            f"\r\nContent-Type: text/csv\r\n\r\nName\n{'x' * FAR}\r\n--{boundary}--\r\n").encode()
    response = client(app, w, "admin").post(
        "/imports/leads", input_stream=io.BytesIO(body),
        content_type=f"multipart/form-data; boundary={boundary}", **CHUNKED)
    assert response.status_code == 413
    assert "larger than the import limit of 2 KiB" in response.get_data(as_text=True)


def test_an_attachment_far_over_the_limit_is_json_naming_the_field(
        capped: tuple[Flask, SimpleNamespace]) -> None:
    app, w = capped
    member = client(app, w, "member")
    url = f"/leads/{w.leads['member'].id}/attachments"
    response = post_file(member, url, PDF + b"x" * FAR, "big.pdf", json=True)
    assert response.status_code == 413
    assert response.json == {"error": "invalid", "field": "file",
                             "message": "The file is larger than 1000 bytes."}
    page = post_file(member, url, PDF + b"x" * FAR, "big.pdf")
    assert page.status_code == 413
    text = page.get_data(as_text=True)
    assert "file: The file is larger than 1000 bytes." in text
    assert 'data-panel="attachments"' in text
    with rbac.system():
        assert db.session.scalars(sa.select(rbac.models.Attachment)).all() == []


def test_a_form_over_the_page_limit_is_a_413_in_words(
        capped: tuple[Flask, SimpleNamespace]) -> None:
    app, w = capped
    member = client(app, w, "member")
    big = {"name": "x" * (1024 * 1024 + 10), "csrf_token": "x"}
    as_json = member.post("/leads/new", data=big, headers={"Accept": "application/json"})
    assert as_json.status_code == 413
    assert as_json.json == {"error": "payload_too_large",
                            "message": "The request body is larger than the limit of "
                                       "1,048,576 bytes."}
    page = member.post("/leads/new", data=big)
    assert page.status_code == 413
    assert "larger than the limit of 1,048,576 bytes" in page.get_data(as_text=True)
