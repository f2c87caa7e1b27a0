"""Scoped pages stay O(page) when a member's scope holds almost nothing.

On a million leads in the sparse layout of :mod:`bench.sparse` (a member who
owns few leads, none or only old ones; a department or a team owning a
sliver of the table or nothing; almost no unowned lead), with
``RBAC_UNOWNED_VISIBLE`` on and off, the plugin's list page of 50 rows and
its detail lookup are explained:

* on PostgreSQL, run for real (``EXPLAIN (ANALYZE, FORMAT JSON)``): the plan
  may touch at most 5 % of the lead table to produce the page;
* on SQLite (whose ``EXPLAIN QUERY PLAN`` has no row counts), a scoped list
  page reads the owner index ``ix_lead_ws_owner``, never the whole table nor
  the workspace in id order (``ix_lead_ws_id``), which is the plan that reads
  every row when the scope's rows are few or old.

The lead table is built once per backend with one ``INSERT ... SELECT`` per
250,000 rows (``generate_series`` or a recursive CTE). This checks plan
shapes and row counts, which are deterministic, not speed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
from flask import Flask

from bench import sql as bench_sql
from bench.figures import Effort
from bench.sparse import (
    SPARSE_SCOPES,
    SparseWorld,
    explain_analyze,
    load_sparse_leads,
    rows_read,
    seed_sparse,
    sparse_pages,
)
from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from tests.conftest import make_app

LEADS = 1_000_000
#: The largest share of the lead table one page may touch.
MAX_SHARE = 0.05
PAGE = 50


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql",
                                                                marks=pytest.mark.postgres)])
def sparse(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, SparseWorld]]:
    name = None
    if request.param == "postgresql":
        server = request.getfixturevalue("pg_server")
        name = f"t{os.getpid()}_sparse_plans"
        url = server.create_database(name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('sparse')}/sparse.db"
    app = make_app(url)
    with app.app_context():
        built = seed_sparse()
        load_sparse_leads(built, LEADS)
        try:
            yield app, built
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
    if name is not None:
        server.drop_database(name)


@contextmanager
def unowned_visible(app: Flask, on: bool) -> Iterator[None]:
    """Run with ``RBAC_UNOWNED_VISIBLE`` set to ``on`` (every Access rebuilt)."""
    before = app.config["RBAC_UNOWNED_VISIBLE"]
    app.config["RBAC_UNOWNED_VISIBLE"] = on
    rbac.state.cache.clear()
    try:
        yield
    finally:
        app.config["RBAC_UNOWNED_VISIBLE"] = before
        rbac.state.cache.clear()


def lead_rows() -> int:
    with db.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(Lead.__table__)))


def check_reads(seen: list[tuple[str, object]], scoped: bool) -> list[str]:
    """Return what is wrong with the plans of the captured statements (nothing: [])."""
    problems = []
    with db.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            limit = MAX_SHARE * lead_rows()
            for sql, params in seen:
                read = rows_read(explain_analyze(conn, sql, params), "lead")
                if read > limit:
                    plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, params))
                    problems.append(f"{read:,} lead rows read (limit {limit:,.0f}):\n{plan}")
            return problems
        for sql, params in seen:
            plan = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql,
                                                             params)]
            on_lead = [line for line in plan if " lead " in f" {line} "]
            whole = [line for line in on_lead if line.startswith("SCAN")
                     or (scoped and "ix_lead_ws_id" in line)]
            if whole or not on_lead:
                problems.append(f"{sql}\n" + "\n".join(plan))
    return problems


@pytest.mark.parametrize("unowned", [True, False], ids=["unowned-visible", "unowned-hidden"])
@pytest.mark.parametrize("name", sorted(SPARSE_SCOPES))
def test_a_sparse_list_page_reads_little_of_the_table(
        sparse: tuple[Flask, SparseWorld], name: str, unowned: bool) -> None:
    app, world = sparse
    member = world.members[name]
    with unowned_visible(app, unowned), rbac.as_member(member.membership_id), \
            bench_sql.capture(db.engine) as seen:
        rows = db.session.scalars(sa.select(Lead).order_by(Lead.id.desc()).limit(PAGE)).all()
        access = rbac.access_for(member.membership_id)
        assert all(rbac.can("view", "leads", lead, access=access) for lead in rows)
    if name in ("all", "old", "small_dept", "small_team"):
        assert len(rows) == PAGE  # these scopes hold more than a page
    elif name in ("none", "empty_dept", "empty_team") and not unowned:
        assert rows == []
    lead_statements = [(sql, p) for sql, p in seen if "FROM lead" in sql]
    assert lead_statements, "the page sent no query on leads"
    assert not check_reads(lead_statements, scoped=name != "all"), \
        "\n\n".join(check_reads(lead_statements, scoped=name != "all"))


@pytest.mark.parametrize("name", sorted(SPARSE_SCOPES))
def test_a_sparse_detail_reads_one_row(sparse: tuple[Flask, SparseWorld], name: str) -> None:
    """A detail lookup is a primary-key read, whether the record is visible or not."""
    app, world = sparse
    member = world.members[name]
    with rbac.system():
        newest = db.session.scalar(sa.select(sa.func.max(Lead.id)))
    db.session.expunge_all()
    with rbac.as_member(member.membership_id), bench_sql.capture(db.engine) as seen:
        db.session.scalars(sa.select(Lead).where(Lead.id == newest)).one_or_none()
    lead_statements = [(sql, p) for sql, p in seen if "FROM lead" in sql]
    assert lead_statements
    with db.engine.connect() as conn:
        for sql, params in lead_statements:
            if conn.dialect.name == "postgresql":
                assert rows_read(explain_analyze(conn, sql, params), "lead") <= 1
            else:
                plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(
                    "EXPLAIN QUERY PLAN " + sql, params))
                assert "INTEGER PRIMARY KEY" in plan and "SCAN" not in plan, plan


def test_the_check_sees_a_page_that_reads_the_table(sparse: tuple[Flask, SparseWorld]) -> None:
    """The guard itself: a small department's page shaped as a membership
    subquery (the shape the filter no longer sends) is flagged on both backends."""
    app, world = sparse
    member = world.members["small_dept"]
    m = rbac.models
    colleagues = sa.select(m.Membership.user_id).where(
        m.Membership.workspace_id == member.workspace_id,
        m.Membership.department_id == member.department_id)
    with rbac.system(), bench_sql.capture(db.engine) as seen:
        db.session.scalars(sa.select(Lead).where(
            Lead.workspace_id == member.workspace_id,
            sa.or_(Lead.owner_id.in_(colleagues.scalar_subquery()), Lead.owner_id.is_(None)))
            .order_by(Lead.id.desc()).limit(PAGE)).all()
    assert check_reads(seen, scoped=True)


def test_the_sparse_figure_runs(sparse: tuple[Flask, SparseWorld]) -> None:
    """The benchmark's sparse figure, at a tiny effort: every member, both settings."""
    app, world = sparse
    out = sparse_pages(app, world, Effort(repeat=3, warmup=1, budget_s=0.5))
    assert len(out) == 2 * len(SPARSE_SCOPES)
    assert out["all/unowned-hidden"]["rows"] == PAGE
    assert out["none/unowned-hidden"]["rows"] == 0
    assert "handwritten" in out["small_dept/unowned-visible"]["stats"]
    if db.engine.dialect.name == "postgresql":
        assert max(row["rows_read"] for row in out.values()) <= MAX_SHARE * LEADS
