"""The PostgreSQL row-level-security peer: the same list page, filtered by the database.

A team that does not use the plugin could write its rules as PostgreSQL
policies instead. This module installs the own, department and all rules of
the benchmark's leads as RLS policies, one database role per scope
(``bench_rls_own``, ``bench_rls_department``, ``bench_rls_all``), each with
one ``FOR SELECT`` policy, so the planner sees exactly one rule and no
``CASE`` over scopes. A request sets, in its own transaction and with
``set_config(..., is_local => true)`` (``SET LOCAL``), the role of its scope,
its workspace, its user and the user ids of its department, runs the page
with no ``WHERE`` at all, and ends the transaction, which drops the settings.

Unowned leads are in own and department scope when ``unowned_visible`` is
on, as the plugin's ``RBAC_UNOWNED_VISIBLE``. A superuser bypasses RLS, and
so does the table's owner: the roles are neither, so the policies apply.

:func:`rls_pages` puts the three pages side by side for figure 2: the
plugin's filter, the hand-written ``WHERE`` and RLS; ``tests/test_rls_peer.py``
checks that RLS returns the plugin's rows.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac

from . import sql
from .figures import Effort, _stats
from .timing import compare, ratio
from .world import ALL, DEPT, OWN, Member, World

#: The RLS role of each scope.
ROLES = {scope: f"bench_rls_{scope}" for scope in (OWN, DEPT, ALL)}
LIST_PAGE = 50

_WS = "lead.workspace_id = current_setting('rbac.workspace_id')::integer"
_RULES = {
    OWN: "lead.owner_id = current_setting('rbac.user_id')::integer",
    DEPT: "lead.owner_id = ANY (current_setting('rbac.member_ids')::integer[])",
}


def install(conn: sa.Connection, unowned_visible: bool = True) -> None:
    """Create the roles (once per server) and the lead table's policies (once per database)."""
    for role in ROLES.values():
        conn.exec_driver_sql(
            f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') "
            f"THEN CREATE ROLE {role} NOLOGIN; END IF; END $$")
        conn.exec_driver_sql(f"GRANT {role} TO CURRENT_USER")
        conn.exec_driver_sql(f"GRANT SELECT ON lead TO {role}")
    conn.exec_driver_sql("ALTER TABLE lead ENABLE ROW LEVEL SECURITY")
    for scope, role in ROLES.items():
        rule = _WS
        if scope in _RULES:
            unowned = " OR lead.owner_id IS NULL" if unowned_visible else ""
            rule = f"{_WS} AND ({_RULES[scope]}{unowned})"
        conn.exec_driver_sql(f"DROP POLICY IF EXISTS rbac_{scope} ON lead")
        conn.exec_driver_sql(f"CREATE POLICY rbac_{scope} ON lead FOR SELECT TO {role} "
                             f"USING ({rule})")


def uninstall(conn: sa.Connection) -> None:
    """Drop the policies and turn RLS off (the roles stay: they belong to the server)."""
    for scope in ROLES:
        conn.exec_driver_sql(f"DROP POLICY IF EXISTS rbac_{scope} ON lead")
    conn.exec_driver_sql("ALTER TABLE lead DISABLE ROW LEVEL SECURITY")


def department_user_ids(session: Session, member: Member) -> list[int]:
    """The user ids of the member's department and the member's own, as a request reads them."""
    M = rbac.models.Membership
    colleagues = session.scalars(
        sa.select(M.user_id).where(M.workspace_id == member.workspace_id,
                                   M.department_id == member.department_id),
        execution_options={"rbac_bypass": True}).all() if member.department_id else []
    return sorted({member.user_id, *colleagues})


def begin_as(session: Session, member: Member, scope: str) -> None:
    """Set the transaction's RLS role and the member's settings (``SET LOCAL``), in one trip."""
    ids = department_user_ids(session, member) if scope == DEPT else []
    session.execute(
        sa.text("SELECT set_config('role', :role, true), "
                "set_config('rbac.workspace_id', :ws, true), "
                "set_config('rbac.user_id', :uid, true), "
                "set_config('rbac.member_ids', :ids, true)"),
        {"role": ROLES[scope], "ws": str(member.workspace_id), "uid": str(member.user_id),
         "ids": "{" + ",".join(str(i) for i in ids) + "}"},
        execution_options={"rbac_bypass": True})


def rls_page(session: Session, member: Member, scope: str, limit: int | None = LIST_PAGE
             ) -> list[int]:
    """The member's newest ``limit`` lead ids as RLS filters them (all of them for None).

    The page runs in a transaction of its own, ended afterwards so that its
    role and settings never reach the next statement.
    """
    session.rollback()
    try:
        begin_as(session, member, scope)
        stmt = sa.select(Lead.id).order_by(Lead.id.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        return list(session.scalars(stmt, execution_options={"rbac_bypass": True}))
    finally:
        session.rollback()


def rls_pages(world: World, effort: Effort) -> dict[str, Any]:
    """Figure 2 with RLS: the plugin page, the hand-written page and the RLS page, per scope.

    PostgreSQL only; :func:`install` must have run on the database. Each
    entry has the pages' timings, whether they return the same rows, and the
    ratio of the plugin to RLS (the issue's goal: at most 1.1). The RLS page
    (``rls``) is what a request pays: its transaction's settings, the
    department's user ids read for the department scope, the statement and
    the end of the transaction. ``rls_statement`` is the statement alone, in
    a session whose settings were made once: the database's share, a bound
    no RLS deployment reaches (context for the goal).
    """
    out: dict[str, Any] = {}
    for scope in (OWN, DEPT, ALL):
        member = world.members[scope]
        access = rbac.access_for(member.membership_id)
        page = sa.select(Lead.id).order_by(Lead.id.desc()).limit(LIST_PAGE)

        def plugin() -> list[int]:
            return list(db.session.scalars(page))

        def hand(member: Member = member, scope: str = scope) -> list[int]:
            where = sql.handwritten_where(scope, member.workspace_id, member.user_id,
                                          member.department_id)
            return list(db.session.scalars(page.where(where),
                                           execution_options={"rbac_bypass": True}))

        def rls(member: Member = member, scope: str = scope) -> list[int]:
            return rls_page(db.session, member, scope)

        # The RLS statement alone: a session of its own, its settings made once.
        settled = Session(db.engine)
        begin_as(settled, member, scope)

        def rls_statement(settled: Session = settled) -> list[int]:
            return list(settled.scalars(page))

        candidates = {"plugin": plugin, "handwritten": hand, "rls": rls,
                      "rls_statement": rls_statement}
        try:
            with rbac.as_member(access):
                answers = {name: fn() for name, fn in candidates.items()}
                stats = compare(candidates, warmup=effort.warmup, repeat=effort.repeat,
                                budget_s=effort.budget_s, equal_batches=True)
        finally:
            settled.rollback()
            settled.close()
        row: dict[str, Any] = {
            "rows": len(answers["plugin"]),
            "same_rows": (answers["plugin"] == answers["handwritten"] == answers["rls"]
                          == answers["rls_statement"]),
            "stats": _stats(stats),
            "plugin_over_rls": ratio(stats["plugin"], stats["rls"]),
            "plugin_over_rls_statement": ratio(stats["plugin"], stats["rls_statement"]),
            "plugin_over_handwritten": ratio(stats["plugin"], stats["handwritten"]),
        }
        db.session.rollback()
        out[scope] = row
    return out
