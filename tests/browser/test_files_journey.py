"""Attachments in a real Chromium: a Member attaches a PDF to their lead and downloads it;
a Viewer of another department (visibility capped to Support, the lead is Sales') is
refused the download, at laptop and phone widths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from crm_app.extensions import db
from crm_app.rbac_setup import rbac

from .conftest import Browse, Live, page_width, serve_live

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
PDF = b"%PDF-1.4\n% quarterly contract\n"


def department_viewer(w: SimpleNamespace) -> dict[str, Any]:
    """The Viewer (Support) sees only their department's records."""
    with rbac.system():
        w.members["viewer"].visibility = "department"
        db.session.commit()
    return {"lead": w.leads["member"].id}


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The demo app with the Viewer capped to their department; files under ``tmp_path``."""
    with serve_live(tmp_path / "browser.db", department_viewer) as served:
        served.app.config["RBAC_FILES_DIR"] = str(tmp_path / "files")
        yield served


def attachment_ids(live: Live) -> list[int]:
    with live.app.app_context(), rbac.system():
        return list(db.session.scalars(sa.select(rbac.models.Attachment.id)))


@pytest.mark.parametrize("width", [1280, 390])
def test_download_refused_to_a_viewer_of_another_department(
        live: Live, browse: Browse, screenshot: Shot, tmp_path: Path, width: int) -> None:
    lead = live.extra["lead"]
    member = browse.login("member@example.test", width=width)
    member.goto(f"/leads/{lead}")
    panel = member.locator("[data-panel=attachments]")
    expect(panel).to_contain_text("No files on this lead")
    member.set_input_files("#attachment-file", files=[{
        "name": "Q3 contract.pdf", "mimeType": "application/pdf", "buffer": PDF}])
    member.click("button[data-action=upload]")
    expect(panel.locator("a[data-action=download]")).to_contain_text("Q3 contract.pdf")
    assert page_width(member) <= width
    screenshot(member, f"attachments-panel-{width}")
    [file_id] = attachment_ids(live)

    with member.expect_download() as info:
        member.click("a[data-action=download]")
    download = info.value
    assert download.suggested_filename == "Q3 contract.pdf"
    saved = tmp_path / "downloaded.pdf"
    download.save_as(saved)
    assert saved.read_bytes() == PDF

    viewer = browse.login("viewer@example.test", width=width)
    browse.goto_refused(viewer, f"/attachments/{file_id}", 404)
    expect(viewer.locator("body")).not_to_contain_text("Q3 contract")
    browse.goto_refused(viewer, f"/leads/{lead}", 404)
    screenshot(viewer, f"attachment-refused-{width}")
