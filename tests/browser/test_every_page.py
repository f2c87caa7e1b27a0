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
(e) the browser saw no console error, CSP violation, off-site request or 5xx;
(f) no script or stylesheet is included twice (a script would run twice).

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

from .sweep import (
    OWNER_PLAN,
    Sweep,
    Visit,
    app_rules,
    check_page,
    open_sweep,
    ua_defaults,
    visit_and_check,
    visits,
)

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sweep(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sweep]:
    with open_sweep(browser, tmp_path_factory.mktemp("sweep") / "sweep.db") as opened:
        yield opened


@pytest.mark.parametrize("visit", visits(app_rules(), OWNER_PLAN), ids=str)
def test_page(visit: Visit, sweep: Sweep, screenshot_dir: Path) -> None:
    visit_and_check(visit, sweep, screenshot_dir)


#: A page with one of each fault the sweep looks for, beside controls that are fine.
CANARY = """<!doctype html><html lang="en"><title>canary</title>
<style>.ok { font: 16px sans-serif; border: 1px solid #ccc; border-radius: 4px; padding: 6px; }
.ok[type=checkbox] { accent-color: #2563eb; } .wide { width: 900px; }</style>
<main><h1>Canary</h1>
<label for="fine">Fine</label><input id="fine" class="ok">
<label><input type="checkbox" class="ok" name="tick"> Ticked</label>
<input id="bare" type="text">
<select class="ok" name="nameless"><option>a</option></select>
<input type="checkbox" name="plain" aria-label="Plain box">
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" width="1" height="1">
<div class="wide">wide</div></main>
<script src="data:text/javascript,0"></script><script src="data:text/javascript,0"></script>
</html>"""


def test_the_checks_catch_each_fault(browser: Browser) -> None:
    """Each check fires on its fault and stays quiet on the controls done right."""
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = context.new_page()
        page.set_content(CANARY)
        problems = check_page(page, ua_defaults(browser))
    finally:
        context.close()
    text = "\n".join(problems)
    assert problems[0] == ("scrolls sideways: 908px wide in a 390px viewport; "
                           'sticking out: div.wide "wide" (right edge 908px)')
    assert "unstyled control input#bare[type=text]: font-size 13.3333px; UA border" in text
    assert "unstyled control input[name=\"plain\"][type=checkbox]: accent-color auto" in text
    assert "unlabelled control input#bare[type=text]" in text
    assert "unlabelled control select[name=\"nameless\"].ok" in text
    assert "axe image-alt (critical)" in text
    assert "loaded twice: data:text/javascript,0" in text
    assert not [p for p in problems if "#fine" in p or 'name="tick"' in p], (
        "a styled, labelled control was reported")
