"""A large audit trail and the audit page's filters on it (PostgreSQL).

:func:`load_trail` writes ``n`` audit events with one ``INSERT ... SELECT``
over ``generate_series`` per chunk: one event a second from :data:`START`,
workspace 2 holding every tenth; sign-in events are 70 % of the trail, role
changes 1 in 1,000, exports 1 in 100,000; actor 9999 acts once in 50,000
events and ``approvals`` is the resource of one in 40,000. :data:`FILTERS`
are the audit page's filters (actor, action, group of actions, resource, a
time window, and combinations), from common to rare.

:func:`filter_plans` asks each filter for its newest page of 50 events
through :func:`crm_rbac_plugin.audit.events_query` (what the page and ``GET
/api/audit`` run), runs the plan for real and reports the nodes that read
the trail, the rows they touched and the database time: the "audit page on
10 million events" line of the feature-cost figure, and
``tests/test_audit_plans.py``'s world at 1M.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import audit

from . import sql
from .sparse import database_ms, explain_analyze, rows_read

TABLE = "rbac_audit_event"
START = dt.datetime(2025, 1, 1)
PAGE = 50

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
FROM generate_series(CAST(:first AS bigint), CAST(:last AS bigint)) AS s(i)
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


def load_trail(n: int, chunk: int = 1_000_000) -> None:
    """Write ``n`` events (the schema must exist), then ``VACUUM ANALYZE`` (PostgreSQL only)."""
    stmt = sa.text(_EVENTS_PG).bindparams(sa.bindparam("start", type_=sa.DateTime()))
    first = 1
    while first <= n:
        last = min(n, first + chunk - 1)
        with db.engine.begin() as conn:
            conn.execute(stmt, {"start": START, "first": first, "last": last})
        first = last + 1
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


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


def _indexes(plan: dict[str, Any]) -> list[str]:
    found, stack = set(), [plan["Plan"]]
    while stack:
        node = stack.pop()
        if node.get("Index Name"):
            found.add(str(node["Index Name"]))
        stack.extend(node.get("Plans", []))
    return sorted(found)


def filter_plans(events: int, workspace_id: int = 1) -> dict[str, Any]:
    """Each filter's page of 50: rows returned, nodes, indexes, rows read, database time.

    Run inside an app context, on a trail of ``events`` rows.
    """
    out: dict[str, Any] = {}
    for label, filters in FILTERS.items():
        stmt = audit.events_query(rbac, workspace_id, filters).limit(PAGE)
        with rbac.system(), sql.capture(db.engine) as seen:
            rows = len(db.session.scalars(stmt).all())
        db.session.rollback()
        statement, params = seen[-1]
        with db.engine.connect() as conn:
            plan = explain_analyze(conn, statement, params)
            read = rows_read(plan, TABLE)
            out[label] = {"filters": {k: str(v) for k, v in filters.items()}, "rows": rows,
                          "nodes": scan_nodes(plan), "indexes": _indexes(plan),
                          "rows_read": read, "share": round(read / events, 6),
                          "db_ms": database_ms(conn, statement, params)}
    return out
