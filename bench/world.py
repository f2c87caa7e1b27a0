"""The benchmark's data: one CRM workspace with many leads, and role-heavy workspaces.

Everything bulky is written with Core statements straight through the
engine (the plugin's ``do_orm_execute`` listener lives on the ORM session,
so it never sees them): users, memberships, roles and grants with
``executemany``; leads with one ``INSERT ... SELECT`` over
``generate_series`` (PostgreSQL) or a recursive CTE (SQLite), so that a
million rows load in seconds. Only the two small workspaces are created
with the plugin's own functions, so that their built-in roles are exactly
what a real workspace gets.

Layout (user index ``k`` is the k-th row of the ``user`` table):

* ``crm`` workspace: ``crm_members`` members in ``departments`` departments
  (member k is in department k % departments). Member 0 is the Owner,
  1 holds *Member* (own scope), 2 holds a custom *Dept Rep* role (department
  scope on leads), 3 holds *Viewer* (all scope), 4 holds *Member, source
  hidden* (the Member role's grants plus a field rule hiding ``leads.source``,
  member 1's twin for figure 6); the others hold *Member*.
* Leads: lead ``i`` (1-based) belongs to the ``other`` workspace when
  ``i % 20 == 0`` (5 %), has no owner when ``i % 200 == 7`` (0.5 %), and is
  otherwise owned by member ``(i * 7919) % crm_members``: owners are spread
  evenly over the id range, so member 1 owns 1 % of the leads and the Dept
  Rep's department 10 %.
* ``roles-R`` workspaces (one per role count R): R roles in pairs, a root
  and a child whose ``parent_id`` is the root, each with ``grants_per_role``
  grants; ``role_members`` members holding one role each. Member 10 holds
  five child roles (so ten roles with inheritance), member 11 holds one
  root role (the single-role baseline); both are in the same department of
  ``role_members / 100`` members and both manage five members.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Flask, request
from flask_login import FlaskLoginClient

from crm_app import create_app
from crm_app.auth import token_of
from crm_app.extensions import db, login_manager
from crm_app.models import Lead, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles as roles_mod
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.registry import SCOPES

OWN, DEPT, ALL = "own", "department", "all"
#: The own-scope member with one hidden field on leads (figure 6), and that field.
HIDDEN, HIDDEN_FIELD = "own_hidden", "source"


@dataclass
class Sizes:
    """The shape of the generated data (leads are loaded separately, per size)."""

    crm_members: int = 100
    departments: int = 10
    role_counts: tuple[int, ...] = (10, 100, 1000, 10_000)
    canonical_roles: int = 1000
    role_members: int = 10_000
    grants_per_role: int = 8


@dataclass
class Member:
    """One membership the figures act as."""

    membership_id: int
    user_id: int
    workspace_id: int
    department_id: int | None = None


@dataclass
class RoleWorkspace:
    roles: int
    workspace_id: int
    stacked: Member  # five child roles, ten with their parents
    single: Member   # one root role


@dataclass
class World:
    crm_ws: int
    other_ws: int
    user_ids: list[int]
    members: dict[str, Member]  # "owner", OWN, DEPT, ALL, HIDDEN
    role_workspaces: dict[int, RoleWorkspace] = field(default_factory=dict)
    leads: int = 0


def make_app(url: str, unowned_visible: bool = True) -> Flask:
    """Build the demo app on ``url`` with the benchmark's own views."""
    from .views import blueprint

    app = create_app({
        "RBAC_UNOWNED_VISIBLE": unowned_visible,
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": url,
        "WTF_CSRF_ENABLED": False,
        "SECRET_KEY": "bench",
        "RBAC_CACHE_SIZE": 20_000,
        # The settings pages and JSON API play no part in the figures.
        "RBAC_REGISTER_BLUEPRINTS": False,
        # Mail leaves in `flask rbac notify send`, as in a deployment, not in the
        # request that queued it (the demo sends it inline and prints it).
        "RBAC_NOTIFY_INLINE": False,
        "RBAC_MAIL_CONSOLE": False,
    })
    app.test_client_class = FlaskLoginClient
    app.register_blueprint(blueprint())
    _install_user_loader()
    _plugin_hooks_skip_baselines(app)
    return app


#: The views of figure 3 that stand for the app without the plugin (bench/views.py).
BASELINE_ENDPOINTS = frozenset({"bench.plain_list", "bench.plain_detail", "bench.hand_list",
                                "bench.hand_detail"})


def _plugin_hooks_skip_baselines(app: Flask) -> None:
    """Keep the plugin's app-wide request hooks off the baseline views of figure 3.

    "The same view with the plugin disabled" must not pay for the plugin's
    ``before_request`` (last-activity stamp) and ``after_request`` (audit of
    refusals) either; the host's own hooks still run for every view. The
    teardown that ends a read-only transaction with COMMIT on PostgreSQL
    (``RBAC_COMMIT_READ_ONLY``) runs for every view, baselines included: it
    is how the app ends its transactions, which a hand-written app can do as
    well, so the ratios do not credit it to the plugin.
    """
    def skip(hook: Any) -> Any:
        if not getattr(hook, "__module__", "").startswith("crm_rbac_plugin"):
            return hook

        @functools.wraps(hook)
        def hook_unless_baseline(*args: Any) -> Any:
            if request.endpoint in BASELINE_ENDPOINTS:
                return args[0] if args else None  # after_request hands the response back
            return hook(*args)
        return hook_unless_baseline

    for hooks in (app.before_request_funcs, app.after_request_funcs):
        for key, funcs in hooks.items():
            hooks[key] = [skip(f) for f in funcs]


def _install_user_loader() -> None:
    callback = login_manager._user_callback
    if getattr(callback, "_bench", False):
        return
    def by_token(login_id: str) -> Any:
        """The user whose ``get_id()`` (session token) this is, alone."""
        user = db.session.scalar(
            sa.select(User).where(User.session_token == token_of(login_id)))
        return user if user is not None and user.is_active_user else None

    if callback is None:
        callback = by_token  # the demo's auth module (the real loader) is not there

    def load(login_id: str) -> Any:
        if request.endpoint in BASELINE_ENDPOINTS:
            # An app without the plugin loads the user alone (the demo's loader
            # reads the membership row with the user for the plugin, see
            # RBAC.load_user): the baselines of figure 3 keep that plain lookup.
            return by_token(login_id)
        return callback(login_id)

    load._bench = True  # type: ignore[attr-defined]
    login_manager.user_loader(load)


def _now() -> dt.datetime:
    return dt.datetime(2024, 1, 1)


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]],
            returning: bool = False, batch: int = 20_000) -> list[int]:
    """executemany ``rows`` in batches; return the new ids in order if asked."""
    ids: list[int] = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        if returning:
            result = conn.execute(
                sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), chunk)
            ids.extend(result.scalars())
        else:
            conn.execute(sa.insert(table), chunk)
    return ids


def seed(sizes: Sizes) -> World:
    """Create the schema and every row except the leads (inside an app context)."""
    db.create_all()
    m = rbac.models
    n_users = max(sizes.role_members, sizes.crm_members) + 10
    with db.engine.begin() as conn:
        _insert(conn, User.__table__, [
            {"email": f"user{k}@bench.test", "name": f"User {k}", "password_hash": "",
             "is_active_user": True, "created_at": _now()} for k in range(n_users)])
        user_ids = list(conn.scalars(sa.select(User.id).order_by(User.id)))
    if user_ids != list(range(user_ids[0], user_ids[0] + len(user_ids))):
        raise RuntimeError("user ids are not contiguous; the lead generator relies on it")

    # The two small workspaces go through the plugin's own functions.
    crm = workspaces.create_workspace(rbac, "Bench CRM", slug="bench-crm")
    other = workspaces.create_workspace(rbac, "Other", slug="bench-other")
    dept_rep = m.Role(workspace=crm, key="dept_rep", name="Dept Rep",
                      description="Works the leads of their department.")
    for action in ("view", "create", "edit"):
        workspaces.add_grant(rbac, dept_rep, "leads", action, "department")
    db.session.add(dept_rep)
    member_role = db.session.scalar(sa.select(m.Role).where(m.Role.workspace_id == crm.id,
                                                            m.Role.key == "member"))
    hiding = m.Role(workspace=crm, key="member_hiding", name="Member, source hidden",
                    description="The Member role with one field of leads hidden.")
    hiding.grants = [m.Grant(resource=gr.resource, action=gr.action, scope=gr.scope,
                             effect=gr.effect, condition=gr.condition)
                     for gr in member_role.grants]
    db.session.add(hiding)
    roles_mod.set_field_rules(rbac, hiding, {"leads": {HIDDEN_FIELD: "hidden"}})
    db.session.commit()
    roles = {r.key: r.id for r in db.session.scalars(
        sa.select(m.Role).where(m.Role.workspace_id == crm.id))}

    members: dict[str, Member] = {}
    with db.engine.begin() as conn:
        dept_ids = _insert(conn, m.Department.__table__, [
            {"workspace_id": crm.id, "name": f"Department {d}"}
            for d in range(sizes.departments)], returning=True)
        mids = _insert(conn, m.Membership.__table__, [
            {"workspace_id": crm.id, "user_id": user_ids[k], "status": "active",
             "department_id": dept_ids[k % sizes.departments], "created_at": _now()}
            for k in range(sizes.crm_members)], returning=True)
        role_of = {0: "owner", 1: "member", 2: "dept_rep", 3: "viewer", 4: "member_hiding"}
        _insert(conn, m.MemberRole.__table__, [
            {"membership_id": mid, "role_id": roles[role_of.get(k, "member")]}
            for k, mid in enumerate(mids)])
        # The Owner of the other workspace, so its leads have a real owner.
        _insert(conn, m.Membership.__table__, [
            {"workspace_id": other.id, "user_id": user_ids[0], "status": "active",
             "created_at": _now()}])
    for key, k in (("owner", 0), (OWN, 1), (DEPT, 2), (ALL, 3), (HIDDEN, 4)):
        members[key] = Member(mids[k], user_ids[k], crm.id, dept_ids[k % sizes.departments])

    world = World(crm_ws=crm.id, other_ws=other.id, user_ids=user_ids, members=members)
    for count in sizes.role_counts:
        world.role_workspaces[count] = _role_workspace(sizes, count, user_ids)
    return world


def _grant_combos(registry_names: list[str]) -> list[tuple[str, str]]:
    from crm_rbac_plugin.registry import STANDARD_ACTIONS

    return [(r, a) for r in registry_names for a in STANDARD_ACTIONS]


def _role_workspace(sizes: Sizes, count: int, user_ids: list[int]) -> RoleWorkspace:
    """Create a workspace with ``count`` roles (root/child pairs) and many members."""
    m = rbac.models
    combos = _grant_combos([r.name for r in rbac.registry if r.is_model])
    n_members = sizes.role_members
    n_depts = max(1, n_members // 100)
    with db.engine.begin() as conn:
        (ws_id,) = _insert(conn, m.Workspace.__table__, [
            {"name": f"{count} roles", "slug": f"roles-{count}", "plan": "enterprise",
             "policy_version": 1, "created_at": _now()}], returning=True)
        pairs = max(1, count // 2)
        roots = _insert(conn, m.Role.__table__, [
            {"workspace_id": ws_id, "name": f"Root {j}", "description": "", "builtin": False,
             "is_owner": False, "created_at": _now()} for j in range(pairs)], returning=True)
        children = _insert(conn, m.Role.__table__, [
            {"workspace_id": ws_id, "name": f"Child {j}", "description": "", "builtin": False,
             "is_owner": False, "parent_id": roots[j], "created_at": _now()}
            for j in range(pairs)], returning=True)
        role_ids = [rid for pair in zip(roots, children, strict=True) for rid in pair]
        grants = []
        for j, rid in enumerate(role_ids):
            for t in range(sizes.grants_per_role):
                resource, action = combos[(j * 7 + t * 11) % len(combos)]
                grants.append({"role_id": rid, "resource": resource, "action": action,
                               "scope": SCOPES[(j + t) % len(SCOPES)], "effect": "allow"})
        _insert(conn, m.Grant.__table__, grants)
        dept_ids = _insert(conn, m.Department.__table__, [
            {"workspace_id": ws_id, "name": f"Department {d}"} for d in range(n_depts)],
            returning=True)
        mids = _insert(conn, m.Membership.__table__, [
            {"workspace_id": ws_id, "user_id": user_ids[k], "status": "active",
             "department_id": dept_ids[k % n_depts], "created_at": _now()}
            for k in range(n_members)], returning=True)
        stacked, single = 10, 11
        assignments = []
        for k, mid in enumerate(mids):
            if k == stacked:
                assignments += [{"membership_id": mid, "role_id": children[j % pairs]}
                                for j in range(5)]
            elif k == single:
                assignments.append({"membership_id": mid, "role_id": roots[0]})
            else:
                assignments.append({"membership_id": mid,
                                    "role_id": role_ids[(k * 7) % len(role_ids)]})
        _insert(conn, m.MemberRole.__table__, assignments)
        _insert(conn, m.ManagerAssignment.__table__, [
            {"manager_id": mids[boss], "member_id": mids[20 + t + 5 * (boss - stacked)]}
            for boss in (stacked, single) for t in range(5)])
    dept = dept_ids[stacked % n_depts]
    # Same department for both (10 and 11 would otherwise differ).
    with db.engine.begin() as conn:
        conn.execute(sa.update(m.Membership.__table__)
                     .where(m.Membership.__table__.c.id == mids[single])
                     .values(department_id=dept))
    return RoleWorkspace(
        roles=len(role_ids), workspace_id=ws_id,
        stacked=Member(mids[stacked], user_ids[stacked], ws_id, dept),
        single=Member(mids[single], user_ids[single], ws_id, dept))


_LEADS_PG = """
INSERT INTO lead (workspace_id, owner_id, name, company, email, status, source, created_at)
SELECT CASE WHEN i % 20 = 0 THEN :other_ws ELSE :crm_ws END,
       CASE WHEN i % 200 = 7 THEN NULL
            ELSE CAST(:u0 AS integer) + CAST((i * 7919) % :n_owners AS integer) END,
       'Lead ' || i, 'Company ' || (i % 5000), 'lead' || i || '@bench.test',
       (ARRAY['new', 'contacted', 'qualified', 'lost'])[1 + i % 4],
       CASE WHEN i % 3 = 0 THEN 'web' ELSE 'referral' END,
       :created
FROM generate_series(CAST(:start AS bigint), CAST(:stop AS bigint)) AS s(i)
"""

_LEADS_SQLITE = """
WITH RECURSIVE s(i) AS (SELECT :start UNION ALL SELECT i + 1 FROM s WHERE i < :stop)
INSERT INTO lead (workspace_id, owner_id, name, company, email, status, source, created_at)
SELECT CASE WHEN i % 20 = 0 THEN :other_ws ELSE :crm_ws END,
       CASE WHEN i % 200 = 7 THEN NULL
            ELSE CAST(:u0 AS integer) + CAST((i * 7919) % :n_owners AS integer) END,
       'Lead ' || i, 'Company ' || (i % 5000), 'lead' || i || '@bench.test',
       CASE i % 4 WHEN 0 THEN 'new' WHEN 1 THEN 'contacted' WHEN 2 THEN 'qualified'
                  ELSE 'lost' END,
       CASE WHEN i % 3 = 0 THEN 'web' ELSE 'referral' END,
       :created
FROM s
"""


def load_leads(world: World, sizes: Sizes, target: int, chunk: int = 250_000) -> float:
    """Grow the lead table to ``target`` rows, then ANALYZE; return the seconds taken."""
    from time import perf_counter

    t0 = perf_counter()
    engine = db.engine
    sql = _LEADS_PG if engine.dialect.name == "postgresql" else _LEADS_SQLITE
    stmt = sa.text(sql).bindparams(sa.bindparam("created", type_=sa.DateTime()))
    start = world.leads + 1
    while start <= target:
        stop = min(target, start + chunk - 1)
        with engine.begin() as conn:
            conn.execute(stmt, {"start": start, "stop": stop, "crm_ws": world.crm_ws,
                                "other_ws": world.other_ws, "u0": world.user_ids[0],
                                "n_owners": sizes.crm_members, "created": _now()})
        start = stop + 1
    world.leads = target
    analyze()
    return perf_counter() - t0


def analyze() -> None:
    """Refresh planner statistics (and, on PostgreSQL, the visibility map)."""
    engine = db.engine
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def lead_count() -> int:
    with db.engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(Lead.__table__)))


def first_lead_of(user_id: int, workspace_id: int) -> int:
    """The newest lead a user owns (for detail pages and record-level decisions)."""
    with db.engine.connect() as conn:
        t = Lead.__table__
        return int(conn.scalar(sa.select(sa.func.max(t.c.id)).where(
            t.c.owner_id == user_id, t.c.workspace_id == workspace_id)))
