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

import datetime as dt
import os
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from bench import sql as bench_sql
from bench.sparse import explain_analyze, rows_read
from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import audit
from tests.conftest import make_app

pytestmark = pytest.mark.postgres

EVENTS = 1_000_000
TABLE = "rbac_audit_event"
MAX_SHARE = 0.05
START = dt.datetime(2025, 1, 1)

#: One event a second from START; workspace 2 holds every tenth event. Sign-in
#: events are 70 % of the trail, role changes 1 in 1,000, exports 1 in 100,000;
#: actor 9999 acts once in 50,000 events and ``approvals`` is the resource of one
#: in 40,000.
_EVENTS_PG = """
INSERT INTO rbac_audit_event (workspace_id, at, actor_user_id, actor_membership_id, action,
                              resource, target, ip)
SELECT CASE WHEN i % 10 = 0 THEN 2 ELSE 1 END,
       CAST(:start AS timestamp) + i * interval '1 second',
       1 + i % 500, CASE WHEN i % 50000 = 21 THEN 9999 ELSE 1 + i % 500 END,
       CASE WHEN i % 100000 = 3 THEN 'export'
            WHEN i % 1000 = 1 THEN 'role.updated'
            WHEN i % 10 < 5 THEN 'auth.login'
            WHEN i % 10 < 7 THEN 'auth.failed'
            ELSE 'access.refused' END,
       CASE WHEN i % 40000 = 31 THEN 'approvals'
            ELSE (ARRAY['leads', 'deals', 'clients', 'tasks', 'campaigns', 'files', 'members',
                        'roles'])[1 + i % 8] END,
       'member #' || (i % 500), '127.0.0.1'
FROM generate_series(1, :n) AS s(i)
"""

FILTERS: dict[str, dict[str, Any]] = {
    "none": {},
    "actor": {"actor": 7},
    "rare actor": {"actor": 9999},
    "common action": {"action": "auth.login"},
    "rare action": {"action": "role.updated"},
    "rarest action": {"action": "export"},
    "group": {"group": "security"},
    "resource": {"resource": "roles"},
    "rare resource": {"resource": "approvals"},
    "time window": {"from": START + dt.timedelta(days=3),
                    "to": START + dt.timedelta(days=4)},
    "old time window": {"to": START + dt.timedelta(hours=2)},
    "actor and window": {"actor": 7, "from": START + dt.timedelta(days=1),
                         "to": START + dt.timedelta(days=2)},
    "action and resource": {"action": "role.updated", "resource": "deals"},
    "actor and action": {"actor": 16, "action": "auth.failed"},
}


@pytest.fixture(scope="module")
def trail(pg_server: Any) -> Iterator[Flask]:
    name = f"t{os.getpid()}_audit_plans"
    app = make_app(pg_server.create_database(name))
    with app.app_context():
        db.create_all()
        with db.engine.begin() as conn:
            conn.execute(sa.text(_EVENTS_PG).bindparams(
                sa.bindparam("start", type_=sa.DateTime())), {"start": START, "n": EVENTS})
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
        try:
            yield app
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
    pg_server.drop_database(name)


def scan_nodes(plan: dict[str, Any]) -> list[str]:
    """Node types of the plan's nodes that read the audit table or one of its indexes."""
    found, stack = [], [plan["Plan"]]
    while stack:
        node = stack.pop()
        if node.get("Relation Name") == TABLE or str(node.get("Index Name", "")).startswith(
                f"ix_{TABLE}_"):
            found.append(node["Node Type"])
        stack.extend(node.get("Plans", []))
    return found


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
