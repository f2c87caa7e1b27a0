"""Sparse worlds: lead tables where a member's scope holds almost nothing.

The uniform world of :mod:`bench.world` spreads every owner evenly over the
lead ids, so any index walk finds a page of 50 visible rows quickly. Real
tables are not like that: a new rep owns a handful of leads, a leaver owns
only old ones, a small department or a manager's team owns a sliver of a
million rows, and a tidy workspace has almost no unowned lead. A plan that
walks the primary key and filters out almost every row looks cheap to the
planner there and reads the whole table; these worlds make that visible.

:func:`seed_sparse` builds on :func:`bench.world.seed` (the ``crm`` workspace
of 100 uniform owners in 10 departments) and adds, in the same workspace:

* ``few``: a Member (own scope) who owns one lead in 50,000, spread over the ids;
* ``none``: a Member who owns no lead (in the *Empty* department);
* ``old``: a Member who owns only old leads (one in ten of the first 2,000);
* ``small_dept``: a Dept Rep of the *Small* department, whose two members own
  one lead in 10,000 (the rep's colleague owns them);
* ``empty_dept``: a Dept Rep of the *Empty* department, which owns nothing;
* ``small_team``: a Team Lead (team scope) managing two members who own one
  lead in 10,000;
* ``empty_team``: a Team Lead managing only ``none``;
* ``all``: the base world's Viewer (all scope), the unfiltered twin.

Almost no lead is unowned (one in 100,000), and 5 % of the leads belong to
the ``other`` workspace, as in the uniform world. :func:`load_sparse_leads`
writes them with one ``INSERT ... SELECT`` per chunk, like
:func:`bench.world.load_leads`.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from time import perf_counter_ns
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces

from . import sql
from .figures import Effort, _stats
from .timing import compare, ratio
from .world import ALL, Member, Sizes, World, _insert, _now, analyze, seed

#: The sparse members, each with the scope of its role on leads.
SPARSE_SCOPES = {"few": "own", "none": "own", "old": "own", "small_dept": "department",
                 "empty_dept": "department", "small_team": "team", "empty_team": "team",
                 ALL: "all"}

#: One lead in this many has no owner ("almost no unowned lead").
UNOWNED_EVERY = 100_000
#: The oldest lead ids among which ``old`` owns one in ten.
OLD_SPAN = 2_000
#: Runs of a page's statement whose median is its database time (:func:`database_ms`).
DB_RUNS = 7


@dataclass
class SparseWorld:
    """The base world and the sparse members, by name (see the module docstring)."""

    world: World
    members: dict[str, Member]
    #: User ids of the leads' special owners, by name, for the lead generator.
    owners: dict[str, int]
    leads: int = 0


def _roles(crm_ws: int) -> dict[str, int]:
    """The crm workspace's role ids by key, adding a team-scope *Team Lead* role."""
    m = rbac.models
    crm = db.session.get(m.Workspace, crm_ws)
    lead = m.Role(workspace=crm, key="team_lead", name="Team Lead",
                  description="Works the leads of the members assigned to them.")
    for action in ("view", "create", "edit"):
        workspaces.add_grant(rbac, lead, "leads", action, "team")
    db.session.add(lead)
    db.session.commit()
    return {r.key: r.id for r in db.session.scalars(
        sa.select(m.Role).where(m.Role.workspace_id == crm_ws))}


def seed_sparse() -> SparseWorld:
    """Create the schema, the base world and the sparse members (no leads yet)."""
    world = seed(Sizes(crm_members=100, departments=10, role_counts=(), role_members=0))
    m = rbac.models
    roles = _roles(world.crm_ws)
    names = ["few", "none", "old", "small_dept", "small_owner", "empty_dept", "small_team",
             "team_a", "team_b", "empty_team"]
    with db.engine.begin() as conn:
        uids = _insert(conn, User.__table__, [
            {"email": f"sparse-{n}@bench.test", "name": f"Sparse {n}", "password_hash": "",
             "is_active_user": True, "created_at": _now()} for n in names], returning=True)
        small, empty = _insert(conn, m.Department.__table__, [
            {"workspace_id": world.crm_ws, "name": name} for name in ("Small", "Empty")],
            returning=True)
        dept = {"small_dept": small, "small_owner": small, "empty_dept": empty, "none": empty}
        role = {"small_dept": "dept_rep", "empty_dept": "dept_rep", "small_team": "team_lead",
                "empty_team": "team_lead"}
        mids = _insert(conn, m.Membership.__table__, [
            {"workspace_id": world.crm_ws, "user_id": uid, "status": "active",
             "department_id": dept.get(n), "created_at": _now()}
            for n, uid in zip(names, uids, strict=True)], returning=True)
        _insert(conn, m.MemberRole.__table__, [
            {"membership_id": mid, "role_id": roles[role.get(n, "member")]}
            for n, mid in zip(names, mids, strict=True)])
        by_name = dict(zip(names, mids, strict=True))
        _insert(conn, m.ManagerAssignment.__table__, [
            {"manager_id": by_name[boss], "member_id": by_name[member]}
            for boss, member in (("small_team", "team_a"), ("small_team", "team_b"),
                                 ("empty_team", "none"))])
    members = {n: Member(mid, uid, world.crm_ws, dept.get(n))
               for n, mid, uid in zip(names, mids, uids, strict=True) if n in SPARSE_SCOPES}
    members[ALL] = world.members[ALL]
    return SparseWorld(world, members, dict(zip(names, uids, strict=True)))


_OWNER = """
       CASE WHEN i % :unowned_every = 7 THEN NULL
            WHEN i % 50000 = 11 THEN :few
            WHEN i <= :old_span AND i % 10 = 3 THEN :old
            WHEN i % 10000 = 13 THEN :small_owner
            WHEN i % 20000 = 17 THEN :team_a
            WHEN i % 10000 = 17 THEN :team_b
            ELSE CAST(:u0 AS integer) + CAST((i * 7919) % :n_owners AS integer) END"""

_SPARSE_PG = f"""
INSERT INTO lead (workspace_id, owner_id, name, company, email, status, source, created_at)
SELECT CASE WHEN i % 20 = 0 THEN :other_ws ELSE :crm_ws END, {_OWNER},
       'Lead ' || i, 'Company ' || (i % 5000), 'lead' || i || '@bench.test',
       (ARRAY['new', 'contacted', 'qualified', 'lost'])[1 + i % 4], 'web', :created
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS s(i)
"""

_SPARSE_SQLITE = f"""
WITH RECURSIVE s(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM s WHERE i < :stop)
INSERT INTO lead (workspace_id, owner_id, name, company, email, status, source, created_at)
SELECT CASE WHEN i % 20 = 0 THEN :other_ws ELSE :crm_ws END, {_OWNER},
       'Lead ' || i, 'Company ' || (i % 5000), 'lead' || i || '@bench.test',
       CASE i % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'contacted' WHEN 2 THEN 'qualified'
                  ELSE 'lost' END, 'web', :created
FROM s
"""


def load_sparse_leads(sparse: SparseWorld, target: int, chunk: int = 250_000) -> None:
    """Grow the lead table to ``target`` rows of the sparse layout, then ANALYZE."""
    engine = db.engine
    sql = _SPARSE_PG if engine.dialect.name == "postgresql" else _SPARSE_SQLITE
    stmt = sa.text(sql).bindparams(sa.bindparam("created", type_=sa.DateTime()))
    world = sparse.world
    params: dict[str, Any] = {
        "crm_ws": world.crm_ws, "other_ws": world.other_ws, "u0": world.user_ids[0],
        "n_owners": 100, "created": _now(), "unowned_every": UNOWNED_EVERY,
        "old_span": OLD_SPAN, **{k: sparse.owners[k] for k in
                                 ("few", "old", "small_owner", "team_a", "team_b")}}
    start = sparse.leads + 1
    while start <= target:
        stop = min(target, start + chunk - 1)
        with engine.begin() as conn:
            conn.execute(stmt, {**params, "start": start, "stop": stop})
        start = stop + 1
    sparse.leads = world.leads = target
    analyze()


def rows_read(plan: dict[str, Any], table: str) -> int:
    """Rows of ``table`` a PostgreSQL ``EXPLAIN (ANALYZE, FORMAT JSON)`` plan touched.

    Every scan node on the table counts the rows it returned plus the rows
    its filter or its bitmap recheck threw away, times its loops; a bitmap
    index scan of one of the table's indexes counts the entries it read. An
    entry and its row may both be counted: the figure errs on the high side.
    """
    total = 0
    node_stack = [plan["Plan"] if "Plan" in plan else plan]
    while node_stack:
        node = node_stack.pop()
        on_table = node.get("Relation Name") == table or (
            node.get("Node Type") == "Bitmap Index Scan"
            and str(node.get("Index Name", "")).startswith(f"ix_{table}_"))
        if on_table:
            seen = (node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
                    + node.get("Rows Removed by Index Recheck", 0))
            total += int(seen * node.get("Actual Loops", 1))
        node_stack.extend(node.get("Plans", []))
    return total


def explain_analyze(conn: sa.Connection, statement: str, parameters: Any) -> dict[str, Any]:
    """The JSON plan of a captured statement, run for real (PostgreSQL only)."""
    row = conn.exec_driver_sql("EXPLAIN (ANALYZE, FORMAT JSON) " + statement,
                               parameters).scalar_one()
    return row[0] if isinstance(row, list) else row


def sparse_pages(app: Flask, sparse: SparseWorld, effort: Effort) -> dict[str, Any]:
    """The sparse figure: each sparse member's list page of 50, unowned leads visible and not.

    For every member and setting: the rows returned, the plan, the database
    time of the plugin's statement (``db_ms``, :func:`database_ms`), on
    PostgreSQL the lead rows the plan touched (``rows_read``,
    :func:`rows_read`) and on SQLite whether it reads the owner index, and the
    timing of the plugin's page against the hand-written ``WHERE`` where one
    exists (own, department and all scopes; :func:`bench.sql.handwritten_where`
    has no team scope). Run inside an app context.
    """
    out: dict[str, Any] = {}
    before = app.config["RBAC_UNOWNED_VISIBLE"]
    page = sa.select(Lead.id).order_by(Lead.id.desc()).limit(50)
    try:
        for unowned in (True, False):
            app.config["RBAC_UNOWNED_VISIBLE"] = unowned
            rbac.state.cache.clear()
            for name, member in sparse.members.items():
                out[f"{name}/{'unowned-visible' if unowned else 'unowned-hidden'}"] = \
                    _sparse_page(member, SPARSE_SCOPES[name], page, effort)
    finally:
        app.config["RBAC_UNOWNED_VISIBLE"] = before
        rbac.state.cache.clear()
    return out


def _sparse_page(member: Member, scope: str, page: Any, effort: Effort) -> dict[str, Any]:
    candidates = {"plugin": lambda: list(db.session.scalars(page))}
    if scope != "team":
        where = sql.handwritten_where(scope, member.workspace_id, member.user_id,
                                      member.department_id)
        candidates["handwritten"] = lambda: list(db.session.scalars(
            page.where(where), execution_options={"rbac_bypass": True}))
    with rbac.as_member(member.membership_id):
        with sql.capture(db.engine) as seen:
            ids = candidates["plugin"]()
        stats = compare(candidates, warmup=effort.warmup, repeat=effort.repeat,
                        budget_s=effort.budget_s, equal_batches=True)
    row: dict[str, Any] = {"scope": scope, "rows": len(ids), "stats": _stats(stats)}
    if "handwritten" in stats:
        row["plugin_over_handwritten"] = ratio(stats["plugin"], stats["handwritten"])
    with db.engine.connect() as conn:
        row["explain"] = sql.explain(conn, *seen[-1])
        row["db_ms"] = database_ms(conn, *seen[-1])
        if conn.dialect.name == "postgresql":
            row["rows_read"] = rows_read(explain_analyze(conn, *seen[-1]), "lead")
        else:
            row["owner_index"] = any("ix_lead_ws_owner" in line
                                     for line in row["explain"]["plan"])
    db.session.rollback()
    return row


def database_ms(conn: sa.Connection, statement: str, parameters: Any,
                runs: int = DB_RUNS) -> float:
    """The database's own time for one run of a captured statement, in ms (median of ``runs``).

    On PostgreSQL it is the ``Execution Time`` of ``EXPLAIN (ANALYZE, FORMAT
    JSON)`` (the executor's time, without planning, the network or the
    driver); on SQLite, which runs in the process, the time of executing the
    statement on the driver's cursor and fetching its rows (no ORM).
    """
    samples = []
    for _ in range(runs):
        if conn.dialect.name == "postgresql":
            samples.append(float(explain_analyze(conn, statement, parameters)
                                 ["Execution Time"]))
        else:
            cursor = conn.connection.driver_connection.cursor()
            t0 = perf_counter_ns()
            cursor.execute(statement, parameters)
            cursor.fetchall()
            samples.append((perf_counter_ns() - t0) / 1e6)
            cursor.close()
    return round(statistics.median(samples), 4)
