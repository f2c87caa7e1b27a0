"""An administrator's destructive actions ask first, and the role matrix works by keyboard.

Each destructive form of the plugin carries ``data-rbac-confirm`` (the
``ui.confirm`` macro or ``ui.button(confirm=...)``); ``rbac/rbac.js`` then
opens ``dialog.rbac-dialog`` before submitting, with "{count}" replaced by
the number of rows selected. These journeys check, at 1280 and 390 px, that
the dialog opens for deactivating a member, reassigning records, deleting a
role, revoking a sharing agreement and bulk-deleting selected records, and
says what will happen with the count (records kept, records moved, members
losing the role, records selected); that
its Cancel changes nothing (read back from the database); and that its
Confirm does the action. The bulk delete also checks the select-all box and
that the bulk button is disabled while nothing is selected.

The keyboard journey builds a role in the matrix editor with the keyboard
alone: Tab to a scope select, change it with the arrow keys, reach Preview
and Save and press them.

Each test gets its own seeded server (they change the world): the
:func:`tests.browser.sweep.seed_extra` rows include a custom role and a
pending sharing agreement.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Locator, Page, expect

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.team.reassignment import reassignable

from .conftest import Browse, Live, serve_live
from .sweep import seed_extra

pytestmark = [pytest.mark.browser, pytest.mark.parametrize("width", [1280, 390])]

DIALOG = "dialog.rbac-dialog[open]"
#: How many Tab presses may pass before a control must have had the focus.
MAX_TABS = 400


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The seeded app plus :func:`.sweep.seed_extra`'s rows (overrides conftest's ``live``)."""
    with serve_live(tmp_path / "journeys.db", seed_extra) as served:
        yield served


def read(live: Live, query: Any) -> Any:
    """Run ``query`` (a callable of no arguments) on the served app's database, unscoped."""
    with live.app.app_context(), rbac.system():
        try:
            return query()
        finally:
            db.session.remove()


def member_status(live: Live, membership_id: int) -> str:
    return read(live, lambda: db.session.get(rbac.models.Membership, membership_id).status)


def asks_first(control: Locator) -> None:
    """The control's form (or the control) carries ``data-rbac-confirm``: rbac.js will ask."""
    assert control.evaluate(
        "el => el.hasAttribute('data-rbac-confirm') || "
        "!!(el.form && el.form.hasAttribute('data-rbac-confirm'))"), (
        "no data-rbac-confirm on the control or its form")


def open_dialog(page: Page, control: Locator) -> Locator:
    """Press ``control``; return the confirmation dialog it opens, checked visible."""
    asks_first(control)
    control.click()
    dialog = page.locator(DIALOG)
    expect(dialog).to_be_visible()
    assert (dialog.locator(".rbac-dialog-message").text_content() or "").strip()
    return dialog


def cancel(page: Page, dialog: Locator) -> None:
    url = page.url
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.locator(DIALOG)).to_have_count(0)
    assert page.url == url, "Cancel navigated away"


def test_deactivating_a_member_asks_first(live: Live, browse: Browse, width: int) -> None:
    target = live.extra["membership"]
    owned = read(live, lambda: sum(db.session.scalar(
        sa.select(sa.func.count()).select_from(res.model).where(
            getattr(res.model, res.owner_column)
            == db.session.get(rbac.models.Membership, target).user_id)) or 0
        for res in reassignable(rbac)))
    assert owned > 0
    page = browse.login("owner@example.test", width=width)
    page.goto(f"/settings/members/{target}")
    button = page.get_by_role("button", name=re.compile(r"^\s*Deactivate", re.I))
    dialog = open_dialog(page, button)
    # What happens, with the count: the member's records stay theirs.
    expect(dialog.locator(".rbac-dialog-message")).to_contain_text(
        f"their {owned} records stay theirs")
    cancel(page, dialog)
    assert member_status(live, target) == "active"
    open_dialog(page, button).locator("[data-rbac-dialog-confirm]").click()
    expect(page.get_by_role("button", name=re.compile(r"^\s*Reactivate", re.I))).to_be_visible()
    assert member_status(live, target) == "inactive"


def test_reassigning_records_asks_with_the_count(live: Live, browse: Browse, width: int) -> None:
    source = live.extra["membership"]
    owned = read(live, lambda: db.session.scalar(
        sa.select(sa.func.count()).select_from(Lead).where(
            Lead.owner_id == db.session.get(rbac.models.Membership, source).user_id)))
    page = browse.login("owner@example.test", width=width)
    page.goto(f"/settings/members/{source}/reassign")
    heir = page.locator("select[name=to_user_id] option", has_text=re.compile("member2", re.I))
    page.select_option("select[name=to_user_id]", value=heir.first.get_attribute("value"))
    resources = page.locator("select[name=resources] option, input[name=resources]")
    if page.locator("select[name=resources]").count():
        page.select_option("select[name=resources]", value=resources.evaluate_all(
            "els => els.map(e => e.value)"))
    else:
        for i in range(resources.count()):
            resources.nth(i).check()
    page.get_by_role("button", name=re.compile(r"^\s*Preview", re.I)).click()
    # The preview is a new page: read its table once it has loaded, not the form's.
    expect(page.locator("[data-preview] tbody td").first).to_be_visible()
    total = sum(int(n) for n in page.locator("[data-preview] tbody td").all_inner_texts())
    assert total > 0, page.locator("main").inner_text()
    apply = page.get_by_role("button", name=re.compile(r"^\s*Reassign", re.I))
    dialog = open_dialog(page, apply)
    expect(dialog).to_contain_text(str(total))
    cancel(page, dialog)
    assert read(live, lambda: db.session.scalar(
        sa.select(sa.func.count()).select_from(Lead).where(
            Lead.owner_id == db.session.get(rbac.models.Membership, source).user_id))) == owned


def test_deleting_a_role_asks_first(live: Live, browse: Browse, width: int) -> None:
    role_id = live.extra["role"]

    def give_it_to_two() -> None:
        role = db.session.get(rbac.models.Role, role_id)
        for key in ("viewer", "finance"):
            workspaces.assign_role(rbac, db.session.scalar(
                sa.select(rbac.models.Membership).join(rbac.user_model).where(
                    rbac.user_model.email == f"{key}@example.test")), role)
        db.session.commit()
    read(live, give_it_to_two)
    page = browse.login("owner@example.test", width=width)
    page.goto(f"/settings/roles/{role_id}/delete")
    button = page.get_by_role("button", name=re.compile(r"^\s*Delete", re.I))
    dialog = open_dialog(page, button)
    expect(dialog.locator(".rbac-dialog-message")).to_have_text(
        "Delete Deal desk? 2 members hold it and lose its permissions; "
        "no role inherits from it.")
    cancel(page, dialog)
    assert read(live, lambda: db.session.get(rbac.models.Role, role_id)) is not None
    open_dialog(page, button).locator("[data-rbac-dialog-confirm]").click()
    expect(page.locator("h1")).to_have_text("Roles")
    assert read(live, lambda: db.session.get(rbac.models.Role, role_id)) is None


def test_revoking_an_agreement_asks_first(live: Live, browse: Browse, width: int) -> None:
    agreement_id = live.extra["agreement"]
    status = lambda: db.session.get(rbac.models.SharingAgreement, agreement_id).status  # noqa: E731
    before = read(live, status)
    page = browse.login("owner@example.test", width=width)
    page.goto("/settings/sharing")
    button = page.locator(f"tr[data-agreement='{agreement_id}']").get_by_role(
        "button", name=re.compile(r"^\s*Revoke", re.I))
    cancel(page, open_dialog(page, button))
    assert read(live, status) == before
    open_dialog(page, button).locator("[data-rbac-dialog-confirm]").click()
    expect(page.locator(f"tr[data-agreement='{agreement_id}']")).to_contain_text(
        re.compile("revoked", re.I))
    assert read(live, status) == "revoked"


def lead_count(live: Live) -> int:
    return int(read(live, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Lead))))


def test_bulk_delete_selects_all_asks_with_the_count(live: Live, browse: Browse,
                                                     width: int) -> None:
    before = lead_count(live)
    page = browse.login("owner@example.test", width=width)
    page.goto("/leads/")
    rows = page.locator("input[type=checkbox][name=ids]")
    master = page.locator("input[type=checkbox][data-rbac-select-all]")
    bulk = page.locator("button[data-rbac-needs-selection]")
    expect(master).to_have_count(1)
    expect(bulk).to_have_count(1)
    expect(bulk).to_be_disabled()  # nothing selected yet
    selectable = rows.count()
    assert selectable >= 2
    master.check()
    assert all(rows.nth(i).is_checked() for i in range(selectable))
    expect(bulk).to_be_enabled()
    dialog = open_dialog(page, bulk)
    expect(dialog).to_contain_text(str(selectable))
    cancel(page, dialog)
    assert lead_count(live) == before
    rows.first.uncheck()
    expect(master).not_to_be_checked()
    dialog = open_dialog(page, bulk)
    expect(dialog).to_contain_text(str(selectable - 1))
    dialog.locator("[data-rbac-dialog-confirm]").click()
    page.wait_for_load_state()
    expect(page.locator("input[type=checkbox][name=ids]")).to_have_count(1)
    assert lead_count(live) == before - (selectable - 1)
    expect(bulk).to_be_disabled()  # the new page starts with nothing selected


def tab_to(page: Page, selector: str) -> Locator:
    """Press Tab until the focused element matches ``selector``; return it."""
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)",
                         selector):
            return page.locator(":focus")
    raise AssertionError(f"Tab never reached {selector} in {MAX_TABS} presses")


def test_role_matrix_by_keyboard_alone(live: Live, browse: Browse, width: int) -> None:
    """Name the role, set one scope with the arrow keys, Preview, Save: no mouse at all."""
    page = browse.login("owner@example.test", width=width)
    page.goto("/settings/roles/new")
    tab_to(page, "input[name=name]")
    page.keyboard.type("Keyboard desk")
    scope = tab_to(page, "select.rbac-scope")
    label = scope.get_attribute("aria-label")
    assert label, "the scope select has no accessible name"
    before = scope.input_value()
    page.keyboard.press("ArrowDown")
    after = page.locator(":focus").input_value()
    assert after != before, "ArrowDown did not change the focused scope select"
    tab_to(page, "button[value=preview]:not([tabindex='-1'])")
    page.keyboard.press("Enter")
    preview = page.locator(".rbac-preview")
    expect(preview).to_be_visible()
    expect(preview.locator("tbody tr")).to_have_count(1)
    tab_to(page, "[data-rbac-save]:not([disabled])")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Roles")
    role = read(live, lambda: db.session.scalar(sa.select(rbac.models.Role).where(
        rbac.models.Role.name == "Keyboard desk")))
    assert role is not None
    granted = read(live, lambda: len(db.session.scalars(sa.select(rbac.models.Grant).where(
        rbac.models.Grant.role_id == role.id)).all()))
    assert granted == 1, f"{label} -> {after}: expected one grant"
