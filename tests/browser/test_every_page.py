"""Every page of the app as its Owner, at 1280 and 390 px (and the public pages signed out).

The pages come from the app's URL map (:func:`.sweep.visits`), so a new
page is checked without being listed here. For each page this asserts:

(a) nothing scrolls sideways (``scrollWidth <= innerWidth``): wide tables
    scroll inside their wrapper, never the page;
(b) every rendered control is styled (:func:`.sweep.check_page` states the
    predicate against Chromium's own defaults);
(c) every form control has an accessible label;
(d) axe-core reports no serious or critical violation (the Owner's at 1280 px,
    the other roles' at 390 px: :class:`.sweep.Visit`);
(e) the browser saw no console error, CSP violation, off-site request or 5xx.

A failing page names every fault it has (page, width, check, element), so
the failures of one run read as a to-do list. A page the role is refused
(403 or 404) or that answers something other than HTML is skipped with the
reason. Each page checked leaves a full-page screenshot,
``<role>-<endpoint>-<width>.png``, in the screenshot directory; the session
writes ``index.html`` there (:mod:`.gallery`). The other roles' sweep is
``test_every_page_roles.py`` (a second module, so a second xdist worker).

The visits only read, so one seeded server serves the whole module and each
role keeps one signed-in browser context per width.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from .sweep import OWNER_PLAN, Sweep, Visit, app_rules, open_sweep, visit_and_check, visits

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sweep(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    with open_sweep(browser, tmp_path_factory.mktemp("sweep") / "sweep.db") as opened:
        yield opened


@pytest.mark.parametrize("visit", visits(app_rules(), OWNER_PLAN), ids=str)
def test_page(visit: Visit, sweep: Sweep, screenshot_dir: Path) -> None:
    visit_and_check(visit, sweep, screenshot_dir)
