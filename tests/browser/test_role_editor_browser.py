"""The role editor in a real Chromium at phone width, with the keyboard.

The test client proves what the server stores; this proves what a person
gets at 390 px: no sideways scroll, the matrix as one card per resource,
conditions built with conditions.js (operators and value inputs that follow
the field), every control reached by Tab with a name and a visible focus
ring, and a saved role whose condition is the JSON the API would store.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from crm_app.extensions import db
from crm_app.rbac_setup import rbac

from .conftest import Browse, Live, page_width

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]


def test_a_condition_is_built_at_phone_width_and_saved_as_json(
        live: Live, browse: Browse, screenshot: Shot) -> None:
    owner = browse.login("owner@example.test")
    owner.set_viewport_size({"width": 390, "height": 860})
    owner.goto("/settings/roles/new")
    expect(owner.locator("h1")).to_have_text("New role")
    assert page_width(owner) <= 390

    owner.fill("input[name=name]", "Closed deals")
    owner.get_by_label("Deals: view scope").select_option("all")
    # The matrix row is a card: the resource's name above its actions, each labelled.
    deals = owner.locator("tr.rbac-matrix-row", has_text="Deals")
    expect(deals.locator(".rbac-cell-action").first).to_be_visible()

    owner.click("summary:has-text('Record conditions for Deals')")
    owner.get_by_role("button", name="Add a condition to Deals: view").click()
    first = owner.locator("[data-rbac-clause='cond__deals__view__0']")
    expect(first.locator("[data-rbac-clause-field]")).to_be_focused()
    first.get_by_label("Deals: view, condition 1: field").select_option(label="Stage")
    operators = first.locator("[data-rbac-clause-op] option").all_inner_texts()
    assert "is less than" not in operators and "is one of" in operators
    first.get_by_label("Deals: view, condition 1: operator").select_option(label="is one of")
    first.get_by_label("won").check()
    first.get_by_label("lost").check()

    owner.get_by_role("button", name="Add a condition to Deals: view").click()
    second = owner.locator("[data-rbac-clause='cond__deals__view__1']")
    second.get_by_label("Deals: view, condition 2: field").select_option(label="Amount")
    second.get_by_label("Deals: view, condition 2: operator").select_option(
        label="is greater than")
    amount = second.get_by_label("Deals: view, condition 2: value")
    assert amount.get_attribute("type") == "number"
    amount.fill("1000")
    assert page_width(owner) <= 390
    screenshot(owner, "role-editor-builder-390")

    owner.click(".rbac-role-actions button[value=preview]")
    preview = owner.locator(".rbac-preview")
    expect(preview).to_contain_text("stage in (won, lost) and amount > 1000.00")
    owner.click(".rbac-preview [data-rbac-save]")
    expect(owner.locator("h1")).to_have_text("Roles")

    with live.app.app_context():
        G, R = rbac.models.Grant, rbac.models.Role
        grant = db.session.scalar(sa.select(G).join(R, G.role_id == R.id).where(
            R.name == "Closed deals", G.resource == "deals", G.action == "view"))
        assert grant is not None and grant.condition == [
            {"field": "stage", "op": "in", "value": ["won", "lost"]},
            {"field": "amount", "op": "gt", "value": "1000.00"}]
    browse.watch.check()


def test_the_matrix_is_used_with_the_keyboard_alone(live: Live, browse: Browse) -> None:
    """Tab walks the form in reading order; every stop has a name and a visible focus ring."""
    owner = browse.login("owner@example.test")
    owner.goto("/settings/roles/new")
    owner.focus("input[name=name]")
    stops = []
    for _ in range(40):
        owner.keyboard.press("Tab")
        stop = owner.evaluate("""() => {
          const el = document.activeElement;
          const style = getComputedStyle(el);
          const label = el.getAttribute('aria-label') || (el.labels && el.labels[0] &&
                        el.labels[0].textContent) || el.textContent;
          return {name: el.getAttribute('name') || '', label: (label || '').trim(),
                  ring: style.boxShadow !== 'none' || style.outlineStyle !== 'none'};
        }""")
        stops.append(stop)
    names = [s["name"] for s in stops]
    assert names.index("description") < names.index("parent_id") < names.index(
        "scope__leads__view") < names.index("deny__leads__view") < names.index(
        "scope__leads__create")
    assert all(s["label"] for s in stops), [s for s in stops if not s["label"]]
    assert all(s["ring"] for s in stops), [s for s in stops if not s["ring"]]
    # Space on a focused shortcut applies it, as a click does.
    owner.focus("button[data-shortcut='sales:view']")
    owner.keyboard.press("Space")
    expect(owner.get_by_label("Leads: view scope")).to_have_value("all")
    expect(owner.get_by_label("Team members: view scope")).to_have_value("")
    browse.watch.check()
