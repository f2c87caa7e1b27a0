"""Two-factor authentication in a real Chromium, as a member sets it up and uses it.

The member reads the secret from the set-up page (as they would type it into
an app that cannot scan), computes the code with pyotp, turns MFA on and
keeps the recovery codes; then every sign-in asks for a code: one from the
app, then a recovery code, which is refused the second time. The set-up and
verification pages are also checked at phone width (nothing scrolls sideways).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pyotp
import pytest
from playwright.sync_api import Page, expect

from .conftest import PASSWORD, Browse, Live, page_width

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]
MFA_PAGE = "/settings/account/mfa"
VERIFY_PAGE = "/settings/account/verify"


def no_sideways_scroll(page: Page) -> None:
    width = page_width(page)
    assert width <= 390, f"{page.url} is {width}px wide at 390px"


def sign_out(page: Page) -> None:
    page.click(".user-menu summary")
    page.click("button:has-text('Sign out')")
    page.wait_for_url("**/login**")


def sign_in_to_verify(page: Page, live: Live, email: str) -> None:
    """Sign in with the password; the app must then ask for the code, not open the session."""
    page.goto("/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button:has-text('Sign in')")
    page.wait_for_url(f"**{VERIFY_PAGE}**")
    expect(page.locator("h1")).to_have_text("Two-factor authentication")
    page.goto("/leads/")  # the password alone opens nothing
    page.wait_for_url(f"**{VERIFY_PAGE}**")


def enter_code(page: Page, code: str) -> None:
    page.fill("input[name=code]", code)
    page.click("button:has-text('Verify')")


def test_member_enrols_signs_in_with_a_code_and_a_recovery_code_once(
        live: Live, browse: Browse, screenshot: Shot) -> None:
    email = "member@example.test"
    page = browse.login(email)
    page.goto(MFA_PAGE)
    expect(page.locator("svg.rbac-mfa-qr")).to_be_visible()
    secret = page.input_value("[data-mfa-secret]").replace(" ", "")
    screenshot(page, "mfa-setup")
    totp = pyotp.TOTP(secret)
    page.fill("input[name=code]", totp.now())
    page.click("button:has-text('Turn on two-factor authentication')")
    expect(page.locator("[data-mfa-recovery-codes] code")).to_have_count(10)
    codes = page.locator("[data-mfa-recovery-codes] code").all_inner_texts()
    screenshot(page, "mfa-recovery-codes")
    page.click("a:has-text('I have saved them')")
    expect(page.locator("[data-mfa-codes-left]")).to_have_text("10")

    sign_out(page)
    sign_in_to_verify(page, live, email)
    # The code of the next step: the current one was spent turning MFA on.
    enter_code(page, totp.at(time.time() + 30))
    page.wait_for_url(live.url("/leads/"))
    sign_out(page)

    sign_in_to_verify(page, live, email)
    screenshot(page, "mfa-verify")
    enter_code(page, codes[0])
    page.wait_for_url(live.url("/leads/"))
    expect(page.locator(".rbac-flash", has_text="9 left")).to_be_visible()
    sign_out(page)

    sign_in_to_verify(page, live, email)
    browse.watch.expected_failures.add(live.url(VERIFY_PAGE))
    enter_code(page, codes[0])
    expect(page.locator(".rbac-field-errors")).to_contain_text("That code is not valid")
    assert VERIFY_PAGE in page.url


def test_mfa_pages_fit_a_phone(live: Live, browse: Browse, screenshot: Shot) -> None:
    page = browse.login("viewer@example.test")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(MFA_PAGE)
    expect(page.locator("svg.rbac-mfa-qr")).to_be_visible()
    no_sideways_scroll(page)
    for control in page.locator(".rbac-settings input:not([type=hidden]), .rbac-settings button").all():
        box = control.bounding_box()
        assert box is None or box["x"] + box["width"] <= 390
    screenshot(page, "mfa-setup-390")
    page.goto(VERIFY_PAGE)
    no_sideways_scroll(page)
    expect(page.get_by_label("Code")).to_be_visible()
