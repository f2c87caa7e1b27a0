"""The screenshot contact sheet: one row per page, one column per role and width."""

from __future__ import annotations

import re
from pathlib import Path

from .gallery import render, write_gallery


def test_the_sheet_groups_sweep_shots_by_page_and_lists_the_others(tmp_path: Path) -> None:
    names = ["viewer-leads.index-390.png", "owner-leads.index-1280.png",
             "owner-leads.index-390.png", "owner-rbac_settings.compare~roles-1280.png",
             "leads-list.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    target = write_gallery(tmp_path)
    assert target == tmp_path / "index.html"
    sheet = target.read_text()
    assert sheet == render(names)
    columns = re.findall(r'<th scope="col">([^<]+)</th>', sheet)
    assert columns == ["Page", "owner 1280px", "owner 390px", "viewer 390px"]
    rows = re.findall(r'<th scope="row">([^<]+)</th>', sheet)
    assert rows == ["leads.index", "rbac_settings.compare~roles"]
    compare_row = sheet.split('<th scope="row">rbac_settings.compare~roles</th>')[1]
    assert compare_row.count("<td></td>") == 2  # no 390 shots of that page
    assert '<a href="leads-list.png">' in sheet.split("<h2>Journeys</h2>")[1]
    assert not list(tmp_path.glob(".index.*"))  # the temporary file was moved into place


def test_no_screenshots_no_sheet(tmp_path: Path) -> None:
    assert write_gallery(tmp_path) is None
    assert not (tmp_path / "index.html").exists()
