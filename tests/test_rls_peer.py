"""The row-level-security peer of the benchmark returns the plugin's rows.

``bench/rls.py`` writes the own, department and all rules of leads as
PostgreSQL RLS policies, with the member's settings per transaction (``SET
LOCAL``). For a comparison of the two to mean anything, both must answer the
same page: for each scope, with ``RBAC_UNOWNED_VISIBLE`` on and off, every
lead the RLS policies let through is a lead the plugin's filter lets through,
in the same order, and the settings never outlive the page's transaction.
The side-by-side figure (:func:`bench.rls.rls_pages`) runs at a tiny size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from bench import rls
from bench.figures import Effort
from bench.world import ALL, DEPT, OWN, Sizes, World, load_leads, seed
from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from tests.conftest import make_app

pytestmark = pytest.mark.postgres

SIZES = Sizes(crm_members=100, departments=10, role_counts=(), role_members=0)
LEADS = 4_000


@pytest.fixture(scope="module")
def world(pg_server: Any) -> Iterator[tuple[Flask, World]]:
    name = f"t{os.getpid()}_rls_peer"
    app = make_app(pg_server.create_database(name))
    with app.app_context():
        built = seed(SIZES)
        load_leads(built, SIZES, LEADS)
        try:
            yield app, built
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
    pg_server.drop_database(name)


def set_unowned(app: Flask, on: bool) -> None:
    app.config["RBAC_UNOWNED_VISIBLE"] = on
    rbac.state.cache.clear()
    db.session.rollback()  # ALTER TABLE waits for every open transaction on leads
    with db.engine.begin() as conn:
        rls.install(conn, unowned_visible=on)


@pytest.mark.parametrize("unowned", [True, False], ids=["unowned-visible", "unowned-hidden"])
@pytest.mark.parametrize("scope", [OWN, DEPT, ALL])
def test_rls_returns_the_plugin_rows(world: tuple[Flask, World], scope: str,
                                     unowned: bool) -> None:
    app, built = world
    member = built.members[scope]
    set_unowned(app, unowned)
    try:
        with rbac.as_member(member.membership_id):
            plugin = list(db.session.scalars(sa.select(Lead.id).order_by(Lead.id.desc())))
        db.session.rollback()
        by_rls = rls.rls_page(db.session, member, scope, limit=None)
        page = rls.rls_page(db.session, member, scope)
    finally:
        set_unowned(app, True)
    assert by_rls == plugin
    assert page == plugin[:rls.LIST_PAGE]
    with rbac.system():
        everything = db.session.scalar(sa.select(sa.func.count()).select_from(Lead))
    # The policies filter: a narrower scope sees fewer leads than the whole table.
    assert 0 < len(by_rls) < everything
    if scope == OWN:
        with rbac.system():
            owners = set(db.session.scalars(sa.select(Lead.owner_id).where(
                Lead.id.in_(by_rls))))
        assert owners <= {member.user_id, None}
        assert (None in owners) == unowned


def test_rls_settings_end_with_the_page(world: tuple[Flask, World]) -> None:
    """After an RLS page, the session is back to its own role: nothing leaks."""
    app, built = world
    set_unowned(app, True)
    rls.rls_page(db.session, built.members[OWN], OWN)
    role = db.session.scalar(sa.text("SELECT current_user"))
    settings = db.session.scalar(sa.text("SELECT current_setting('rbac.user_id', true)"))
    db.session.rollback()
    assert role not in rls.ROLES.values()
    assert settings in (None, "")


def test_the_side_by_side_figure_runs(world: tuple[Flask, World]) -> None:
    """The plugin page, the hand-written page and the RLS page, timed at a tiny effort."""
    app, built = world
    set_unowned(app, True)
    out = rls.rls_pages(built, Effort(repeat=3, warmup=1, budget_s=1.0))
    assert set(out) == {OWN, DEPT, ALL}
    for scope, row in out.items():
        assert row["same_rows"], scope
        assert row["rows"] == rls.LIST_PAGE
        assert {"plugin", "handwritten", "rls"} <= set(row["stats"])
        assert row["plugin_over_rls"] > 0
