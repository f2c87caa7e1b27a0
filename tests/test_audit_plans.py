"""The audit page's filters are index reads on a large trail.

A million audit events (PostgreSQL, one ``INSERT ... SELECT`` over
``generate_series``), 90 % of them in one workspace: sign-ins by the
thousand, role changes now and then, one actor among 500, one resource among
eight. Every filter of the audit page and of ``GET /api/audit`` (actor,
action, group of actions, resource, a time window, and combinations) asks
for its newest page of 50 events through :func:`.audit.events_query`, and
the plan, run for real, must read the trail through an index and touch at
most 5 % of its rows: an index on ``(workspace_id, <filter column>, at,
id)`` hands the page over in order.

The free-text filters ``member`` and ``role`` (a ``LIKE`` over the target and
the JSON detail) are not index reads and are left out; the page's total
(``paginate``'s count) reads every matching event, as any count does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from bench import sql as bench_sql
from bench.audittrail import FILTERS, TABLE, load_trail, scan_nodes
from bench.sparse import explain_analyze, rows_read
from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import audit
from tests.conftest import make_app

pytestmark = pytest.mark.postgres

EVENTS = 1_000_000
MAX_SHARE = 0.05


@pytest.fixture(scope="module")
def trail(pg_server: Any) -> Iterator[Flask]:
    name = f"t{os.getpid()}_audit_plans"
    app = make_app(pg_server.create_database(name))
    with app.app_context():
        db.create_all()
        load_trail(EVENTS)
        try:
            yield app
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
    pg_server.drop_database(name)


@pytest.mark.parametrize("label", list(FILTERS))
def test_an_audit_filter_page_is_an_index_read(trail: Flask, label: str) -> None:
    stmt = audit.events_query(rbac, 1, FILTERS[label]).limit(50)
    with rbac.system(), bench_sql.capture(db.engine) as seen:
        events = db.session.scalars(stmt).all()
    assert events, f"the {label!r} filter found nothing: the world does not test it"
    (sql, params), = seen
    with db.engine.connect() as conn:
        plan = explain_analyze(conn, sql, params)
        text = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + sql, params))
    nodes = scan_nodes(plan)
    assert nodes and "Seq Scan" not in nodes, text
    read = rows_read(plan, TABLE)
    assert read <= MAX_SHARE * EVENTS, f"{read:,} events read for a page of 50:\n{text}"
