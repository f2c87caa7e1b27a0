"""Issue 18's design points that only a browser can prove, at 1280 and 390 px.

- Every state of an invitation page (accept, sign in to accept, already
  used, expired) sits in the sign-in page's card, fits the width, has every
  control styled and labelled and passes axe-core (:func:`.sweep.check_page`);
  the used page's "Sign in" link leads to the sign-in page.
- Viewing as a member shows a bar at the top of the page, in a colour of its
  own, naming the member; the header says "Viewing as", and no write control
  is on the page; "Stop viewing as" ends it.
- At 390 px the role matrix is one card per resource listing its actions
  (the table's header row is hidden, each action cell names its action).
- At 390 px a wide table scrolls inside its card: the wrapper scrolls
  sideways, the page does not.

Each test's watcher (conftest) also fails it on a console error, a CSP
violation, an off-site request or a 5xx. Screenshots go to ``screenshots/``
as ``design-<what>-<width>.png``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from .conftest import Browse, Live, serve_live
from .sweep import check_page, seed_extra, ua_defaults
from .test_demo_layout import invitation_token

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("width", [1280, 390])]

Shot = Callable[[Page, str], None]
#: What the CRM's write controls carry on its lists and detail pages.
WRITE_CONTROLS = ("[data-action=create], [data-action=edit], [data-action=delete], "
                  "[data-action=bulk-delete]")
#: The look of a card, compared between the sign-in page and an invitation page.
CARD_LOOK = ("el => { const s = getComputedStyle(el); return [s.backgroundColor, "
             "s.borderTopLeftRadius, s.boxShadow, s.maxWidth]; }")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The seeded app plus :func:`.sweep.seed_extra`'s rows (an open invitation among them)."""
    with serve_live(tmp_path / "design.db", seed_extra) as served:
        yield served


def assert_clean(page: Page, browser: Browser, what: str) -> None:
    """The open page passes the sweep's checks: fits, styled, labelled, axe-clean."""
    page.wait_for_load_state("load")
    problems = check_page(page, ua_defaults(browser))
    assert problems == [], f"{what}:\n  " + "\n  ".join(problems)


def invitation_for_existing_account(live: Live) -> str:
    """Invite outsider@example.test (an account of another workspace); return the token."""
    return invitation_token(live, "outsider@example.test", "viewer")


def refused_page(browse: Browse, page: Page, path: str) -> None:
    """Open an invitation link that answers 400 (its console line is expected)."""
    url = browse.live.url(path)
    browse.watch.expected_failures.add(url)
    response = page.goto(url)
    assert response is not None and response.status == 400, path


def test_every_invitation_state_matches_the_sign_in_page(
        live: Live, browse: Browse, browser: Browser, screenshot: Shot, width: int) -> None:
    fresh = invitation_token(live)  # new.rep@example.test, no account yet
    outsider = invitation_for_existing_account(live)
    page = browse.page(width)
    page.goto("/login")
    login_card = page.locator(".auth-card").evaluate(CARD_LOOK)

    def card_like_login(what: str) -> None:
        card = page.locator(".auth-card")
        expect(card).to_be_visible()
        assert card.evaluate(CARD_LOOK) == login_card, what
        expect(card.locator("[data-invitation=workspace]")).to_have_text(live.world.workspace)
        expect(card.locator("[data-invitation=inviter]")).to_have_text("Owner")

    page.goto(f"/settings/invitations/{fresh}")
    card_like_login("accept")
    expect(page.locator("[data-invitation=roles]")).to_have_text("Member")
    expect(page.locator("#password-help")).to_be_visible()  # the rule, before it is broken
    assert_clean(page, browser, f"accept at {width}")
    screenshot(page, f"design-invitation-accept-{width}")

    page.goto(f"/settings/invitations/{outsider}")
    card_like_login("sign in to accept")
    expect(page.get_by_role("link", name="Sign in to accept")).to_be_visible()
    expect(page.locator("input[name=password]")).to_have_count(0)
    assert_clean(page, browser, f"sign in to accept at {width}")
    screenshot(page, f"design-invitation-sign-in-{width}")

    # Already used: accept it, then open the link again in a browser that is signed out.
    page.goto(f"/settings/invitations/{fresh}")
    page.fill("input[name=name]", "New Rep")
    page.fill("input[name=password]", "Tq8#vLp2!mZr")
    page.fill("input[name=confirm]", "Tq8#vLp2!mZr")
    page.click("button:has-text('Create my account and join')")
    page.wait_for_url(live.url("/"))
    page = browse.page(width)
    refused_page(browse, page, f"/settings/invitations/{fresh}")
    card_like_login("already used")
    expect(page.locator(".auth-card")).to_contain_text("already used")
    assert_clean(page, browser, f"already used at {width}")
    screenshot(page, f"design-invitation-used-{width}")
    page.locator("[data-invitation=sign-in]").click()
    page.wait_for_url(live.url("/login"))

    # Expired: every invitation is past its age.
    live.app.config["RBAC_INVITE_MAX_AGE"] = -1
    refused_page(browse, page, f"/settings/invitations/{outsider}")
    card_like_login("expired")
    expect(page.locator(".auth-card")).to_contain_text("expired")
    assert_clean(page, browser, f"expired at {width}")
    screenshot(page, f"design-invitation-expired-{width}")


def test_viewing_as_a_member_shows_a_bar_and_hides_what_they_cannot_do(
        live: Live, browse: Browse, browser: Browser, screenshot: Shot, width: int) -> None:
    admin = browse.login("admin@example.test", width=width)
    admin.goto("/leads/")
    expect(admin.locator(WRITE_CONTROLS).first).to_be_attached()  # the Admin's own view writes
    admin.goto("/settings/access-review")
    admin.select_option("#view-as-member", label="Viewer")
    admin.get_by_role("button", name="View as (read-only)").click()
    admin.goto("/leads/")
    bar = admin.locator(".rbac-view-as-banner")
    expect(bar).to_be_visible()
    expect(bar).to_contain_text("You are viewing Acme Sales as Viewer")
    box = bar.bounding_box()
    assert box is not None and box["y"] < 200 and box["width"] >= width * 0.6, box
    look = bar.evaluate("el => [getComputedStyle(el).backgroundColor, "
                        "getComputedStyle(document.body).backgroundColor, "
                        "getComputedStyle(el).position]")
    assert look[0] != look[1] and look[0] != "rgba(0, 0, 0, 0)", look  # a bar of its own colour
    assert look[2] == "sticky", look  # it stays on screen as the page scrolls
    expect(admin.locator(".user-menu .user-name")).to_have_text("Viewing as Viewer")
    expect(admin.locator(WRITE_CONTROLS)).to_have_count(0)
    assert_clean(admin, browser, f"leads viewed as the Viewer at {width}")
    screenshot(admin, f"design-view-as-{width}")
    bar.get_by_role("button", name="Stop viewing as").click()
    admin.goto("/leads/")
    expect(admin.locator(".rbac-view-as-banner")).to_have_count(0)
    expect(admin.locator(".user-menu .user-name")).to_have_text("Admin")


def test_the_matrix_is_one_card_per_resource_at_phone_width(
        live: Live, browse: Browse, screenshot: Shot, width: int) -> None:
    owner = browse.login("owner@example.test", width=width)
    owner.goto("/settings/roles/new")
    owner.wait_for_load_state("load")
    rows = owner.locator("tr.rbac-matrix-row")
    assert rows.count() > 5
    layout = rows.evaluate_all("""rows => rows.map(r => {
      const cells = Array.from(r.querySelectorAll('td.rbac-cell'))
        .filter(c => c.getClientRects().length);
      const head = r.closest('table').querySelector('thead');
      return {display: getComputedStyle(r).display,
              headHidden: head.getBoundingClientRect().height <= 1,
              labels: cells.map(c => {
                const a = c.querySelector('.rbac-cell-action');
                return a && a.offsetParent !== null ? a.textContent.trim() : '';
              }),
              width: r.getBoundingClientRect().width};
    })""")
    if width == 390:
        for row in layout:
            assert row["display"] == "grid", row  # a card, not a table row
            assert row["headHidden"], row  # the column header row gives way to the labels
            assert row["labels"] and all(row["labels"]), row  # each action shown names itself
            assert row["width"] <= 390, row
        screenshot(owner, "design-matrix-cards-390")
    else:
        assert {row["display"] for row in layout} == {"table-row"}  # a table on a laptop
        assert not any(label for row in layout for label in row["labels"])


def test_wide_tables_scroll_inside_their_card(live: Live, browse: Browse, width: int) -> None:
    owner = browse.login("owner@example.test", width=width)
    scrolled_inside = []
    for path in ("/settings/members", "/settings/audit", "/settings/roles/overview",
                 "/settings/access-review", "/leads/"):
        owner.goto(path)
        owner.wait_for_load_state("load")
        found = owner.evaluate("""() => ({
          page: document.documentElement.scrollWidth - window.innerWidth,
          wraps: Array.from(document.querySelectorAll('.rbac-table-wrap, .table-wrap'))
            .filter(w => w.querySelector('table') && w.getClientRects().length)
            .map(w => ({overflow: getComputedStyle(w).overflowX,
                        wider: w.scrollWidth - w.clientWidth}))})""")
        assert found["page"] <= 0, (path, found)
        assert found["wraps"], (path, "no table in a wrapper")
        for wrap in found["wraps"]:
            assert wrap["overflow"] in ("auto", "scroll"), (path, wrap)
            if wrap["wider"] > 0:
                scrolled_inside.append(path)
    if width == 390:
        # Some table is wider than a phone: it scrolls in its card while the page stays put.
        assert scrolled_inside, "no table was wider than 390 px: the check proved nothing"
