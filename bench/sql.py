"""Hand-written list filters (the baselines) and query-plan capture."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event

from crm_app.models import Lead
from crm_app.rbac_setup import rbac


def handwritten_where(scope: str, workspace_id: int, user_id: int,
                      department_id: int | None = None) -> sa.ColumnElement[bool]:
    """The WHERE a developer would write by hand for one member's list page.

    Same meaning as the plugin's criteria (leads without an owner are visible
    when ``RBAC_UNOWNED_VISIBLE`` is on, as by default), written the short way.
    """
    ws = Lead.workspace_id == workspace_id
    if scope == "all":
        return ws
    unowned = [Lead.owner_id.is_(None)] if current_app.config["RBAC_UNOWNED_VISIBLE"] else []
    if scope == "own":
        return sa.and_(ws, sa.or_(Lead.owner_id == user_id, *unowned))
    if scope == "department":
        M = rbac.models.Membership
        colleagues = sa.select(M.user_id).where(M.workspace_id == workspace_id,
                                                M.department_id == department_id)
        return sa.and_(ws, sa.or_(Lead.owner_id == user_id, Lead.owner_id.in_(colleagues),
                                  *unowned))
    raise ValueError(f"unknown scope {scope!r}")


@contextmanager
def capture(engine: sa.Engine) -> Iterator[list[tuple[str, Any]]]:
    """Collect (SQL, parameters) of every statement sent to the driver."""
    seen: list[tuple[str, Any]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
                 executemany: bool) -> None:
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def explain(conn: sa.Connection, statement: str, parameters: Any) -> dict[str, Any]:
    """Return the plan of a captured statement (and, on PostgreSQL, its actual run)."""
    if conn.dialect.name == "postgresql":
        plan = [r[0] for r in conn.exec_driver_sql("EXPLAIN (FORMAT TEXT) " + statement,
                                                  parameters)]
        actual = [r[0] for r in conn.exec_driver_sql(
            "EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) " + statement, parameters)]
    else:
        plan = [str(r[-1]) for r in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement,
                                                         parameters)]
        actual = []
    text = "\n".join(plan).lower()
    return {
        "sql": statement,
        "parameters": _plain(parameters),
        "plan": plan,
        "analyze": actual,
        "uses_index": "index" in text,
        "seq_scan": ("seq scan" in text) or any(
            line.strip().lower().startswith("scan ") and "index" not in line.lower() for line in plan),
    }


def _plain(parameters: Any) -> Any:
    if isinstance(parameters, dict):
        return {k: _plain(v) for k, v in parameters.items()}
    if isinstance(parameters, (list, tuple)):
        return [_plain(v) for v in parameters]
    if isinstance(parameters, (int, float, str, bool)) or parameters is None:
        return parameters
    return str(parameters)
