"""Profile pictures in a real Chromium: a Member uploads a photo on their profile; it shows
there, in the top bar and to the Owner on the members list and the member's page, at
laptop and phone widths; removing it brings the initials back. The watcher (see
conftest) fails the test on a console error, a CSP violation or a 5xx."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from .conftest import Browse, Live, page_width
from .test_members_pages import member_id, unstyled_controls

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]


def photo() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (600, 400), (20, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def loaded(page: Page, selector: str) -> bool:
    """Whether the image ``selector`` finds loads and decodes (no broken image) within 5 s:
    the pictures load lazily, after the page itself."""
    page.locator(selector).first.scroll_into_view_if_needed()
    page.wait_for_function(
        "sel => { const img = document.querySelector(sel);"
        " return img !== null && img.complete && img.naturalWidth > 0; }",
        arg=selector, timeout=5000)
    return True


@pytest.mark.parametrize("width", [1280, 390])
def test_a_member_sets_and_removes_their_picture(live: Live, browse: Browse, screenshot: Shot,
                                                 width: int) -> None:
    member = browse.login("member@example.test", width=width)
    member.goto("/settings/profile")
    card = member.locator("#profile-picture")
    expect(card.locator(".rbac-avatar--initials")).to_be_visible()
    assert unstyled_controls(member) == []
    member.set_input_files("#picture", files=[{
        "name": "me.jpg", "mimeType": "image/jpeg", "buffer": photo()}])
    card.locator("button", has_text="Upload picture").click()
    expect(member.locator("main")).to_contain_text("Your picture was saved.")
    picture = card.locator("img.rbac-avatar")
    expect(picture).to_have_attribute("alt", "Your profile picture")
    assert loaded(member, "#profile-picture img.rbac-avatar")
    assert loaded(member, ".topbar img.avatar-picture")
    assert page_width(member) <= width
    screenshot(member, f"profile-picture-{width}")

    owner = browse.login("owner@example.test", width=width)
    owner.goto("/settings/members")
    row = owner.locator('tr[data-member="member@example.test"]')
    assert loaded(owner, 'tr[data-member="member@example.test"] img.rbac-avatar')
    expect(owner.locator('tr[data-member="owner@example.test"] .rbac-avatar--initials')) \
        .to_be_visible()
    expect(row).to_contain_text("Member")
    owner.goto(f"/settings/members/{member_id(live, 'member@example.test')}")
    assert loaded(owner, "img.rbac-avatar--lg")

    member.goto("/settings/profile")
    card.locator("button", has_text="Remove picture").click()
    member.locator("dialog.rbac-dialog [data-rbac-dialog-confirm]").click()
    expect(member.locator("main")).to_contain_text("Your picture was removed.")
    expect(card.locator(".rbac-avatar--initials")).to_be_visible()
    expect(member.locator(".topbar img.avatar-picture")).to_have_count(0)
