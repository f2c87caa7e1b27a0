"""The pages work under the Content-Security-Policy, in a real Chromium.

The policy allows no inline script (``crm_app/security.py``): the pages'
behaviour lives in ``static/js/app.js``, wired by ``data-`` attributes. The
``browse`` fixture fails a test on any CSP violation; these tests walk the
pages an Owner uses, exercise each behaviour app.js carries (the facet
select that submits itself, the confirmation before a delete, the
dashboard's bars) and Flask-Admin's list, and prove the watcher does catch
a violation.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Dialog, expect

from .conftest import Browse, Live

pytestmark = pytest.mark.browser

#: Pages an Owner opens, each expected to answer 200 with no CSP violation.
PAGES = ("/", "/leads/", "/deals/", "/clients/", "/tasks/", "/settings/roles",
         "/settings/members", "/settings/tokens", "/settings/audit", "/admin/",
         "/admin/leads/", "/admin/rbac_admin_roles/")


def test_owner_pages_raise_no_csp_violation(live: Live, browse: Browse) -> None:
    owner = browse.login("owner@example.test")
    for path in PAGES:
        response = owner.goto(path)
        assert response is not None and response.status == 200, path
    owner.goto("/settings/roles")
    owner.click("a:text-is('New role')")  # the matrix editor and its script
    expect(owner.locator("table.rbac-matrix").first).to_be_visible()
    owner.goto("/admin/leads/")
    owner.click("a.dropdown-toggle:has-text('With selected')")  # Flask-Admin's own scripts


def test_the_facet_select_submits_its_form(live: Live, browse: Browse) -> None:
    owner = browse.login("owner@example.test")
    owner.goto("/deals/")
    owner.select_option("select[name=stage]", "won")
    owner.wait_for_url(re.compile(r"/deals/\?.*stage=won"))
    expect(owner.locator("select[name=stage]")).to_have_value("won")


def test_a_delete_asks_first_and_a_refusal_keeps_the_record(live: Live, browse: Browse) -> None:
    owner = browse.login("owner@example.test")
    lead = live.world.lead_ids["member"]
    owner.goto(f"/leads/{lead}")
    questions: list[str] = []

    def answer(accept: bool) -> None:
        def handle(dialog: Dialog) -> None:
            questions.append(dialog.message)
            dialog.accept() if accept else dialog.dismiss()
        owner.once("dialog", handle)

    answer(False)
    owner.click("button[data-action=delete]")
    assert questions == ["Delete this lead? This cannot be undone."]
    expect(owner).to_have_url(live.url(f"/leads/{lead}"))
    answer(True)
    owner.click("button[data-action=delete]")
    owner.wait_for_url(live.url("/leads/"))
    assert len(questions) == 2
    browse.watch.expected_failures.add(live.url(f"/leads/{lead}"))
    assert owner.goto(f"/leads/{lead}").status == 404  # type: ignore[union-attr]


def test_dashboard_bars_get_their_width(live: Live, browse: Browse) -> None:
    owner = browse.login("owner@example.test")
    bars = owner.locator(".bar-fill[data-bar-share]")
    assert bars.count() > 0
    widths = bars.evaluate_all("els => els.map(e => e.style.width)")
    shares = bars.evaluate_all("els => els.map(e => e.getAttribute('data-bar-share'))")
    assert widths == [f"{float(s):g}%" for s in shares]


def test_the_watcher_catches_a_violation(live: Live, browse: Browse) -> None:
    """A page with an inline script and handler: both are blocked and recorded."""
    live.app.add_url_rule("/csp-canary", "csp_canary", lambda: (
        "<!doctype html><title>canary</title><script>document.title = 'ran'</script>"
        "<button onclick=\"document.title = 'clicked'\">x</button>"))
    page = browse.page()
    page.goto("/csp-canary")
    page.click("button")
    assert page.title() == "canary", "the inline script or handler ran"

    def events() -> list[str]:
        return [v for v in browse.watch.csp_violations
                if v.startswith("CSP violation: script-src")]

    # The page reports each violation by a console message of its own, which
    # reaches the watcher a moment after the click on a busy machine.
    for _ in range(50):
        if len(events()) >= 2:
            break
        page.wait_for_timeout(100)
    found = events()
    violations = list(browse.watch.csp_violations)
    browse.watch.csp_violations.clear()
    assert len(found) >= 2, violations
