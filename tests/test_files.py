"""Attachments: every rule of ``crm_rbac_plugin.files`` through the demo's routes.

Upload needs edit on the record, download view (a shared record: view
shared), delete edit and delete; the files follow a reassignment, a sharing
agreement, the record's deletion and the workspace's purge; size, type and
names are checked. Every test runs on SQLite and PostgreSQL; stored bytes go
to the test's temporary directory.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, sharing, signals
from crm_rbac_plugin.files import LocalStorage, safe_filename, sniff
from tests.rbac_helpers import (
    fast_passwords,  # noqa: F401  (autouse fixture)
    multipart,
)
from tests.security.test_hidden_field_sweep import RANDOM_TOKENS

PDF = b"%PDF-1.4\n% a tiny test document\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def client_of(app: Flask, world: SimpleNamespace, store: Path) -> Any:
    def make(key: str, workspace: Any = None) -> FlaskClient:
        client = app.test_client(user=world.users[key])
        ws = workspace or world.ws
        with client.session_transaction() as sess:
            sess[app.config["RBAC_SESSION_KEY"]] = ws.id
        return client
    return make


def upload(client: FlaskClient, resource: str, record_id: int, data: bytes = PDF,
           name: str = "contract.pdf") -> Any:
    return client.post(f"/{resource}/{record_id}/attachments",
                       data={"file": (io.BytesIO(data), name)},
                       content_type="multipart/form-data", headers={"Accept": "application/json"})


def attached(client_of: Any, key: str = "member", tag: str = "member") -> tuple[Any, int]:
    """Upload a PDF to ``tag``'s lead as ``key``; return the lead and the attachment id."""
    lead = db.session.get(Lead, db.session.scalar(sa.select(Lead.id).execution_options(
        rbac_bypass=True).where(Lead.name == f"Lead of {tag}")))
    response = upload(client_of(key), "leads", lead.id)
    assert response.status_code == 201, response.get_data(as_text=True)
    return lead, response.get_json()["id"]


def stored_files(store: Path) -> list[str]:
    return sorted(name for _, _, names in os.walk(store) for name in names)


def rows() -> list[Any]:
    with rbac.system():
        return list(db.session.scalars(sa.select(rbac.models.Attachment)))


# -- the access rule ---------------------------------------------------------------------

@pytest.mark.parametrize(("key", "status"), [
    ("member", 201),      # edit on their own lead
    ("junior_rep", 404),  # own scope: another's lead is invisible
    ("viewer", 403),      # sees it, may not edit it
    ("finance", 403),     # no edit on any lead: the resource's own 403
    ("owner", 201),
])
def test_upload_needs_edit_on_the_record(client_of: Any, world: SimpleNamespace, key: str,
                                         status: int) -> None:
    response = upload(client_of(key), "leads", world.leads["member"].id)
    assert response.status_code == status
    assert len(rows()) == (1 if status == 201 else 0)


def test_outsider_workspace_gets_404(client_of: Any, world: SimpleNamespace, store: Path) -> None:
    lead, file_id = attached(client_of)
    outsider = client_of("outsider", world.ws2)
    assert upload(outsider, "leads", lead.id).status_code == 404
    assert outsider.get(f"/attachments/{file_id}").status_code == 404
    assert outsider.post(f"/attachments/{file_id}/delete").status_code == 404
    assert len(stored_files(store)) == 1


@pytest.mark.parametrize(("key", "status"), [
    ("member", 200), ("viewer", 200), ("owner", 200), ("manager", 200),
    ("member2", 404), ("junior_rep", 404),  # own scope: another's lead is invisible
    ("finance", 404),                        # no view on any lead: the record is invisible too
])
def test_download_needs_view(client_of: Any, world: SimpleNamespace, key: str,
                             status: int) -> None:
    _, file_id = attached(client_of)
    response = client_of(key).get(f"/attachments/{file_id}")
    assert response.status_code == status
    A = rbac.models.AuditEvent
    with rbac.system():
        taken = db.session.scalars(sa.select(A).where(A.action == "attachment.downloaded")).all()
    if status == 200:
        assert response.data == PDF
        assert response.headers["Content-Disposition"].startswith("attachment;")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.mimetype == "application/pdf"
        # 001: "track sensitive data access": who took the file out is on the trail.
        assert [e.actor_user_id for e in taken] == [world.users[key].id]
    else:
        assert taken == []


@pytest.mark.parametrize("key", ["finance", "junior_rep", "member2"])
@pytest.mark.parametrize("route", ["/attachments/{}", "/attachments/{}/delete"])
def test_a_hidden_attachment_answers_as_a_missing_one(client_of: Any, key: str,
                                                      route: str) -> None:
    # Finance holds no right on leads at all, the others see only their own:
    # an existing file on an invisible record and an unknown id look alike.
    _, file_id = attached(client_of)
    client = client_of(key)
    method = client.post if route.endswith("delete") else client.get
    hidden, missing = method(route.format(file_id)), method(route.format(file_id + 1000))
    assert hidden.status_code == missing.status_code == 404
    # Alike but for what each response draws anew (a CSRF token is signed with the time).
    assert (RANDOM_TOKENS.sub("", hidden.get_data(as_text=True))
            == RANDOM_TOKENS.sub("", missing.get_data(as_text=True)))
    assert len(rows()) == 1


def test_missing_bytes_are_404_not_500(client_of: Any, store: Path) -> None:
    _, file_id = attached(client_of)
    (row,) = rows()
    LocalStorage(str(store)).delete(row.storage_key)
    assert client_of("member").get(f"/attachments/{file_id}").status_code == 404


def test_viewer_of_another_department_is_refused(client_of: Any, world: SimpleNamespace) -> None:
    _, file_id = attached(client_of)
    assert client_of("viewer").get(f"/attachments/{file_id}").status_code == 200
    workspaces_member = world.members["viewer"]
    with rbac.system():
        workspaces_member.visibility = "department"  # Support; the lead is Sales'
        db.session.commit()
    assert client_of("viewer").get(f"/attachments/{file_id}").status_code == 404


def test_delete_needs_edit_and_delete(client_of: Any, world: SimpleNamespace, store: Path) -> None:
    # Junior Rep edits their own leads but may not delete them: no deleting their files.
    _, file_id = attached(client_of, "junior_rep", "junior_rep")
    assert client_of("junior_rep").post(f"/attachments/{file_id}/delete").status_code == 403
    assert client_of("viewer").post(f"/attachments/{file_id}/delete").status_code == 403
    assert len(rows()) == 1 and len(stored_files(store)) == 1
    _, mine = attached(client_of)
    response = client_of("member").post(f"/attachments/{mine}/delete")
    assert response.status_code == 302
    assert [r.id for r in rows()] == [file_id]
    assert len(stored_files(store)) == 1


def test_files_follow_reassignment(client_of: Any, world: SimpleNamespace) -> None:
    lead, file_id = attached(client_of)
    assert client_of("member2").get(f"/attachments/{file_id}").status_code == 404
    with rbac.system():
        db.session.get(Lead, lead.id).owner_id = world.users["member2"].id
        db.session.commit()
    assert client_of("member2").get(f"/attachments/{file_id}").status_code == 200
    assert client_of("member").get(f"/attachments/{file_id}").status_code == 404


def test_files_follow_sharing_agreements(client_of: Any, world: SimpleNamespace) -> None:
    _, file_id = attached(client_of)
    dual = client_of("dual", world.ws2)  # Beta's Owner
    assert dual.get(f"/attachments/{file_id}").status_code == 404
    agreement = sharing.create_agreement(rbac, rbac.access_for(world.members["owner"]),
                                         workspace="beta", permissions=["leads.view"])
    db.session.commit()
    m = rbac.models
    beta_owner = db.session.scalar(sa.select(m.Membership).where(
        m.Membership.workspace_id == world.ws2.id, m.Membership.user_id == world.users["dual"].id))
    with rbac.as_member(rbac.access_for(beta_owner)) as access:
        sharing.accept(rbac, access, agreement)
        db.session.commit()
    assert dual.get(f"/attachments/{file_id}").status_code == 200
    # view shared, not edit: no upload, no delete
    assert upload(dual, "leads", world.leads["member"].id).status_code == 403
    assert dual.post(f"/attachments/{file_id}/delete").status_code == 403
    with rbac.as_member(rbac.access_for(world.members["owner"])) as acme:
        sharing.revoke(rbac, acme, agreement)
        db.session.commit()
    assert dual.get(f"/attachments/{file_id}").status_code == 404


# -- deletion of the record and of the workspace -------------------------------------------

def test_deleting_a_record_deletes_its_files(client_of: Any, world: SimpleNamespace,
                                             store: Path) -> None:
    lead, _ = attached(client_of)
    _, other = attached(client_of, "member2", "member2")
    assert len(stored_files(store)) == 2
    assert client_of("member").post(f"/leads/{lead.id}/delete").status_code == 302
    assert [r.id for r in rows()] == [other]
    assert len(stored_files(store)) == 1


def test_rolled_back_deletion_keeps_the_bytes(client_of: Any, world: SimpleNamespace,
                                              store: Path) -> None:
    lead, _ = attached(client_of)
    with rbac.system():
        db.session.delete(db.session.get(Lead, lead.id))
        db.session.flush()
        assert rows() == []
        db.session.rollback()
    assert len(rows()) == 1 and len(stored_files(store)) == 1


def test_workspace_purge_deletes_files(app: Flask, client_of: Any, world: SimpleNamespace,
                                       store: Path) -> None:
    attached(client_of)
    with rbac.system():
        other = rbac.models.Attachment(workspace_id=world.ws2.id, resource="leads",
                                       record_id=str(world.other["lead"].id),
                                       storage_key="f" * 32, filename="kept.pdf",
                                       content_type="application/pdf", size=3)
        db.session.add(other)
        db.session.commit()
    LocalStorage(str(store)).put("f" * 32, b"abc")
    with rbac.system():
        signals.workspace_purging.send(app, workspace_id=world.ws.id, session=db.session)
        assert len(stored_files(store)) == 2  # nothing removed before the commit
        db.session.commit()
    assert [r.filename for r in rows()] == ["kept.pdf"]
    assert stored_files(store) == ["f" * 32]


def test_aborted_purge_keeps_files(app: Flask, client_of: Any, world: SimpleNamespace,
                                   store: Path) -> None:
    attached(client_of)
    with rbac.system():
        signals.workspace_purging.send(app, workspace_id=world.ws.id, session=db.session)
        db.session.rollback()
    assert len(rows()) == 1 and len(stored_files(store)) == 1


# -- the flush guard: every path, not only the routes ---------------------------------------

def test_flush_guard_refuses_rows_the_member_may_not_write(client_of: Any,
                                                           world: SimpleNamespace) -> None:
    _, file_id = attached(client_of)
    m = rbac.models
    with rbac.as_member(rbac.access_for(world.members["viewer"])):
        db.session.add(m.Attachment(workspace_id=world.ws.id, resource="leads",
                                    record_id=str(world.leads["member"].id),
                                    storage_key="a" * 32, filename="x.pdf",
                                    content_type="application/pdf", size=1))
        with pytest.raises(PermissionDenied):
            db.session.flush()
        db.session.rollback()
    with rbac.as_member(rbac.access_for(world.members["member"])):
        row = db.session.get(m.Attachment, file_id)
        row.record_id = str(world.leads["member2"].id)  # move it onto another record
        with pytest.raises(PermissionDenied, match="never changes"):
            db.session.flush()
        db.session.rollback()
    with rbac.as_member(rbac.access_for(world.members["member2"])):
        db.session.delete(db.session.get(m.Attachment, file_id))
        with pytest.raises(PermissionDenied):
            db.session.flush()
        db.session.rollback()
    assert [r.id for r in rows()] == [file_id]


# -- content: size, type, names ------------------------------------------------------------

def test_over_the_size_limit_is_413(app: Flask, client_of: Any, world: SimpleNamespace,
                                    store: Path) -> None:
    app.config["RBAC_FILES_MAX_BYTES"] = 1000
    lead = world.leads["member"]
    member = client_of("member")
    # Just over the limit: read, counted, refused.
    assert upload(member, "leads", lead.id, PDF + b"x" * 1000).status_code == 413
    # Far over it: refused from the Content-Length before the form is parsed.
    assert upload(member, "leads", lead.id, PDF + b"x" * 200_000).status_code == 413
    assert rows() == [] and stored_files(store) == []


def test_an_attachment_past_the_page_body_limit_still_uploads(
        app: Flask, client_of: Any, world: SimpleNamespace, store: Path) -> None:
    """The upload route sets its own limit: a 2 MB file passes the pages' 1 MiB cap."""
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    response = client_of("member").post(
        f"/leads/{world.leads['member'].id}/attachments",
        **multipart({"file": (PDF + b"x" * 2_000_000, "contract.pdf")}),
        headers={"Accept": "application/json"})
    assert response.status_code == 201, response.get_data(as_text=True)[:300]
    assert len(stored_files(store)) == 1


@pytest.mark.parametrize(("data", "name"), [
    (b"<html><script>alert(1)</script></html>\x00", "invoice.pdf"),  # binary, no signature
    (b"MZ\x90\x00\x03\x00\x00\x00", "setup.exe"),
    (b"PK\x03\x04\x14\x00\x00\x00", "archive.zip"),
    (b"\xff\xfe\x00\x00garbage", "notes.txt"),                        # not UTF-8 text
    (b"", "empty.pdf"),
])
def test_disallowed_type_is_400_naming_the_field(client_of: Any, world: SimpleNamespace,
                                                 store: Path, data: bytes, name: str) -> None:
    response = upload(client_of("member"), "leads", world.leads["member"].id, data, name)
    assert response.status_code == 400
    assert response.get_json()["field"] == "file"
    assert rows() == [] and stored_files(store) == []


def test_a_refused_upload_shows_the_record_page_with_the_message(
        client_of: Any, world: SimpleNamespace) -> None:
    lead = world.leads["member"]
    response = client_of("member").post(f"/leads/{lead.id}/attachments",
                                        data={"file": (io.BytesIO(b"\x00\x01bin"), "x.bin")},
                                        content_type="multipart/form-data")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "file: This type of file is not allowed" in page
    assert 'data-panel="attachments"' in page


def test_a_type_not_configured_is_refused(app: Flask, client_of: Any,
                                          world: SimpleNamespace) -> None:
    app.config["RBAC_FILES_ALLOWED_TYPES"] = ("application/pdf",)
    member = client_of("member")
    assert upload(member, "leads", world.leads["member"].id, PNG, "pic.png").status_code == 400
    assert upload(member, "leads", world.leads["member"].id, b"plain", "a.txt").status_code == 400
    assert upload(member, "leads", world.leads["member"].id).status_code == 201


def test_no_file_is_400(client_of: Any, world: SimpleNamespace) -> None:
    response = client_of("member").post(f"/leads/{world.leads['member'].id}/attachments",
                                        data={}, headers={"Accept": "application/json"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "file"


def test_names_are_sanitised_and_keys_generated(client_of: Any, world: SimpleNamespace,
                                                store: Path) -> None:
    response = upload(client_of("member"), "leads", world.leads["member"].id, PDF,
                      "../../etc/pass\"wd;<b>.pdf")
    body = response.get_json()
    assert response.status_code == 201
    assert not set(body["filename"]) & set("/\\\"<>;")
    assert body["filename"].endswith(".pdf")
    (row,) = rows()
    assert stored_files(store) == [row.storage_key]
    assert len(row.storage_key) == 32


def test_the_page_shows_the_panel_by_right(client_of: Any, world: SimpleNamespace) -> None:
    _, file_id = attached(client_of)
    lead = world.leads["member"]
    page = client_of("member").get(f"/leads/{lead.id}").get_data(as_text=True)
    assert 'data-panel="attachments"' in page and f"/attachments/{file_id}/delete" in page
    assert 'data-action="upload"' in page
    viewer_page = client_of("viewer").get(f"/leads/{lead.id}").get_data(as_text=True)
    assert f"/attachments/{file_id}" in viewer_page
    assert 'data-action="upload"' not in viewer_page
    assert f"/attachments/{file_id}/delete" not in viewer_page


def test_uploads_and_deletes_are_audited(client_of: Any, world: SimpleNamespace) -> None:
    _, file_id = attached(client_of)
    client_of("member").post(f"/attachments/{file_id}/delete")
    m = rbac.models
    with rbac.system():
        actions = list(db.session.scalars(sa.select(m.AuditEvent.action).where(
            m.AuditEvent.action.like("attachment.%")).order_by(m.AuditEvent.id)))
    assert actions == ["attachment.uploaded", "attachment.deleted"]


# -- pure helpers -----------------------------------------------------------------------------

@pytest.mark.parametrize(("data", "expected"), [
    (PDF, "application/pdf"), (PNG, "image/png"), (b"\xff\xd8\xff\xe0rest", "image/jpeg"),
    (b"GIF89a....", "image/gif"), (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"hello, world\n", "text/plain"), ("héllo".encode(), "text/plain"),
    (b"a\x00b", None), (b"MZ\x90", None),
])
def test_sniff_judges_the_bytes(data: bytes, expected: str | None) -> None:
    allowed = ("application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp",
               "text/plain")
    assert sniff(data, allowed) == expected


def test_safe_filename() -> None:
    assert safe_filename("../../a b.PDF", "application/pdf") == "a b.pdf"
    assert safe_filename("evil.html", "text/plain") == "evil.html.txt"
    assert safe_filename("", "image/png") == "file.png"
    assert safe_filename("..\\..\\win.txt", "text/plain") == "win.txt"
    assert len(safe_filename("x" * 500 + ".pdf", "application/pdf")) <= 120


@pytest.mark.parametrize(("name", "kept"), [
    ("契約書.pdf", "契約書.pdf"), ("Angebot Müller.pdf", "Angebot Müller.pdf"),
    ("Präsentation März.pdf", "Präsentation März.pdf"),
    ("a\u202egpj.pdf", "a_gpj.pdf"), ("x\u0000y\r\n.pdf", "x_y_.pdf")])
def test_a_name_keeps_its_letters_in_any_script(name: str, kept: str) -> None:
    """Letters are letters in every script; controls and bidi overrides still go."""
    assert safe_filename(name, "application/pdf") == kept


def test_a_non_ascii_name_is_downloaded_under_its_own_name(client_of: Any,
                                                           world: SimpleNamespace) -> None:
    member = client_of("member")
    response = upload(member, "leads", world.leads["member"].id, PDF, "契約書.pdf")
    assert response.status_code == 201 and response.get_json()["filename"] == "契約書.pdf"
    download = member.get(f"/attachments/{response.get_json()['id']}")
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert "filename*=UTF-8''%E5%A5%91%E7%B4%84%E6%9B%B8.pdf" in disposition


def test_local_storage_refuses_anything_but_a_key(tmp_path: Path) -> None:
    store = LocalStorage(str(tmp_path))
    for bad in ("../etc/passwd", "A" * 32, "", "a" * 31):
        with pytest.raises(ValueError):
            store.put(bad, b"x")
    store.put("b" * 32, b"data")
    with store.open("b" * 32) as f:
        assert f.read() == b"data"
    store.delete("b" * 32)
    store.delete("b" * 32)  # missing: no error
    assert stored_files(tmp_path) == []


