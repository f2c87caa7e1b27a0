"""A report as Finance, in a real Chromium, at 1280 px and at 390 px.

Finance views and exports closed deals only (``crm_app/roles.py``), and reads
the reports and charts. The journey opens the reports from the sidebar,
filters them, reads the pipeline (closed stages only, the leads figure
explained rather than zero), downloads the pipeline CSV (whose rows match
the page), opens the SVG charts without a horizontal scroll at phone
width, and finds no way to the reports for a Junior Rep.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from .conftest import Browse, Live, page_width

pytestmark = pytest.mark.browser

Shot = Callable[[Page, str], None]


def no_sideways_scroll(page: Page) -> None:
    width = page_width(page)
    assert width <= page.viewport_size["width"], width  # type: ignore[index]


def test_finance_reads_filters_and_exports_a_report(live: Live, browse: Browse,
                                                    screenshot: Shot) -> None:
    page = browse.login("finance@example.test", screenshot=screenshot)
    page.click("nav.nav a.nav-item[data-nav=reports]:has-text('Reports')")
    expect(page.locator("h1")).to_have_text("Reports")
    pipeline = page.locator("section[data-figure=pipeline]")
    stages = pipeline.locator("tbody tr td:first-child").all_inner_texts()
    assert stages and {s.strip().lower() for s in stages} <= {"won", "lost"}
    expect(page.locator("section[data-figure=leads_by_source] [data-missing]")).to_contain_text(
        "You may not view leads.")
    screenshot(page, "finance-reports")

    page.fill("input[name=start]", "2000-01-01")
    page.click("button:has-text('Apply')")
    expect(page).to_have_url(re.compile(r"start=2000-01-01"))
    with page.expect_download() as info:
        pipeline.locator("[data-action=export]").click()
    download = info.value
    assert download.suggested_filename.startswith("report-pipeline-")
    rows = list(csv.reader(io.StringIO(download.path().read_text(encoding="utf-8"))))
    assert rows[0] == ["Stage", "Deals", "Value"]
    assert [r[0] for r in rows[1:]] == [s.strip().lower() for s in stages]
    assert sum(int(r[1]) for r in rows[1:]) == live.world.deal_count // 2  # the won half

    phone = browse.login("finance@example.test", width=390)
    phone.goto("/reports/charts")
    expect(phone.locator("h1")).to_have_text("Analytics")
    chart = phone.locator("section[data-figure=pipeline] svg.chart")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and 250 <= box["width"] <= 390
    no_sideways_scroll(phone)
    screenshot(phone, "finance-charts-phone")


def test_junior_rep_has_no_way_to_the_reports(live: Live, browse: Browse) -> None:
    page = browse.login("junior_rep@example.test")
    assert page.locator("nav.nav a[data-nav=reports]").count() == 0
    browse.goto_refused(page, "/reports/", 403)
    browse.goto_refused(page, "/reports/export.csv?figure=pipeline", 403)
