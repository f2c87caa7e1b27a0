"""Every page an Admin, a Member and a Viewer may open, at 390 px.

The same checks as ``test_every_page.py`` (which states them), for the
roles below the Owner: their pages carry fewer buttons and other columns,
which is where a phone-width layout breaks differently. Pages a role is
refused are skipped with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from .sweep import MEMBERS_PLAN, Sweep, Visit, app_rules, open_sweep, visit_and_check, visits

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sweep(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    with open_sweep(browser, tmp_path_factory.mktemp("sweep") / "sweep.db") as opened:
        yield opened


@pytest.mark.parametrize("visit", visits(app_rules(), MEMBERS_PLAN), ids=str)
def test_page(visit: Visit, sweep: Sweep, screenshot_dir: Path) -> None:
    visit_and_check(visit, sweep, screenshot_dir)
