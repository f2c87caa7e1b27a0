"""The measurements behind figures 1 to 4 and 6 (figure 5 is derived in :mod:`.report`).

Each function times its candidates with :func:`.timing.compare` and returns
plain JSON-ready data: per-call medians in nanoseconds and the ratios that
the goals are stated in.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from time import perf_counter
from typing import Any

import casbin
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy.session import Session as AppSession
from sqlalchemy import event

from crm_app.extensions import db
from crm_app.models import Lead, User
from crm_app.rbac_setup import rbac

from . import sql
from .timing import Stat, compare, ratio
from .world import ALL, DEPT, HIDDEN, HIDDEN_FIELD, OWN, Member, World, first_lead_of

CASBIN_MODEL = """
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && r.obj == p.obj && r.act == p.act
"""

LIST_PAGE = 50


@dataclass
class Effort:
    """How hard to try: rounds per comparison and the time budget of each."""

    repeat: int = 21
    warmup: int = 5
    budget_s: float = 20.0
    requests_repeat: int = 60


def _stats(stats: dict[str, Stat]) -> dict[str, Any]:
    return {name: s.as_dict() for name, s in stats.items()}


def _cache_clear(app: Flask) -> None:
    app.extensions["rbac"].cache.clear()


# -- figure 1: one decision ---------------------------------------------------

def build_casbin(workspace_id: int, users: set[int] | None = None,
                 ) -> tuple[dict[str, casbin.Enforcer], dict[str, Any]]:
    """Load the workspace's roles, grants and assignments into pycasbin enforcers.

    RBAC with domains: subject ``u<user id>``, roles ``r<role id>``,
    domain the workspace id, object the resource, action the action. Role
    inheritance is a ``g`` link child -> parent; the Owner role gets every
    (resource, action). Scopes and conditions have no casbin equivalent, so
    this is the resource-level question, like ``rbac.can(action, resource)``.

    Three enforcers of the maintained ``pycasbin`` package (imported as
    ``casbin``) get the same policy: the plain ``casbin.Enforcer`` (the
    reference of the goal: it evaluates the matcher against every policy
    line), ``casbin.FastEnforcer`` with ``cache_key_order=[1, 2]`` (pycasbin's
    own index on domain and object, its fastest enforcer) and
    ``casbin.SyncedEnforcer`` (the thread-safe wrapper a multi-threaded
    server would use). pycasbin 2.x has no cached enforcer. The report
    compares the plugin with the fastest of them, so pycasbin is shown at
    its best.

    ``users`` limits the user-to-role links to those users (every grant and
    role-inheritance link is still loaded). pycasbin's domain role manager
    builds its links lazily on the first ``enforce``, in time quadratic in
    the links of the domain (about 85 s per enforcer for 10,000 members on
    the reference machine); that is a one-off cost, not part of a decision,
    and enforce itself does not depend on the number of user links. The
    first-call time is recorded as ``first_enforce_s``.
    """
    t0 = perf_counter()
    m = rbac.models
    dom = str(workspace_id)
    opts = {"rbac_bypass": True}
    roles = db.session.execute(sa.select(m.Role.id, m.Role.parent_id, m.Role.is_owner)
                               .where(m.Role.workspace_id == workspace_id),
                               execution_options=opts).all()
    grants = db.session.execute(
        sa.select(m.Grant.role_id, m.Grant.resource, m.Grant.action)
        .join(m.Role, m.Role.id == m.Grant.role_id)
        .where(m.Role.workspace_id == workspace_id, m.Grant.effect == "allow"),
        execution_options=opts).all()
    holders = db.session.execute(
        sa.select(m.Membership.user_id, m.MemberRole.role_id)
        .join(m.MemberRole, m.MemberRole.membership_id == m.Membership.id)
        .where(m.Membership.workspace_id == workspace_id, m.Membership.status == "active"),
        execution_options=opts).all()
    policies = {(f"r{g.role_id}", dom, g.resource, g.action) for g in grants}
    for role in roles:
        if role.is_owner:
            policies.update((f"r{role.id}", dom, res.name, act)
                            for res in rbac.registry for act in res.actions)
    links = {(f"u{h.user_id}", f"r{h.role_id}", dom) for h in holders
             if users is None or h.user_id in users}
    links.update((f"r{r.id}", f"r{r.parent_id}", dom) for r in roles if r.parent_id)
    with tempfile.TemporaryDirectory() as folder:
        conf = os.path.join(folder, "rbac_with_domains.conf")
        with open(conf, "w") as f:
            f.write(CASBIN_MODEL)
        # The rules are loaded from a policy file: FastEnforcer's add_policies
        # counts its policy on every insert, so adding 10,000 rules one call at
        # a time is quadratic, while the file adapter appends each line.
        rules = os.path.join(folder, "policy.csv")
        with open(rules, "w") as f:
            f.writelines(f"p, {', '.join(p)}\n" for p in sorted(policies))
            f.writelines(f"g, {', '.join(g)}\n" for g in sorted(links))
        enforcers = {"casbin": casbin.Enforcer(conf, rules),
                     "casbin_fast": casbin.FastEnforcer(conf, rules, cache_key_order=[1, 2]),
                     "casbin_synced": casbin.SyncedEnforcer(conf, rules)}
    build_s = perf_counter() - t0
    first = {}
    for name, enforcer in enforcers.items():
        t1 = perf_counter()
        enforcer.enforce("u0", dom, "leads", "view")
        first[name] = round(perf_counter() - t1, 3)
    info = {"policies": len(policies), "grouping_policies": len(links),
            "user_links_loaded": "all" if users is None else sorted(users),
            "build_s": round(build_s, 3), "first_enforce_s": first}
    return enforcers, info


def _all_questions(only: str | None = None) -> list[tuple[str, str]]:
    return [(res.name, act) for res in rbac.registry for act in res.actions
            if only is None or res.name == only]


def decisions(app: Flask, world: World, member: Member, effort: Effort,
              workspace_members: list[Member] | None = None,
              enforcers: tuple[dict[str, casbin.Enforcer], dict[str, Any]] | None = None,
              agreement_resource: str | None = None) -> dict[str, Any]:
    """Figure 1: ``rbac.can`` warm and cold against pycasbin and a dict lookup."""
    engines, casbin_info = enforcers or build_casbin(member.workspace_id)
    enforcer, fast, synced = engines["casbin"], engines["casbin_fast"], engines["casbin_synced"]
    dom = str(member.workspace_id)
    access = rbac.access_for(member.membership_id)
    # The dict baseline holds the plugin's own answers for every member checked.
    perms: dict[tuple[int, int, str, str], bool] = {}
    mismatches: list[str] = []
    for mem in workspace_members or [member]:
        acc = rbac.access_for(mem.membership_id)
        for resource, action in _all_questions(agreement_resource):
            allowed = rbac.can(action, resource, access=acc)
            perms[(mem.user_id, mem.workspace_id, resource, action)] = allowed
            for name, engine in engines.items():
                if engine.enforce(f"u{mem.user_id}", dom, resource, action) != allowed:
                    mismatches.append(f"{name}: u{mem.user_id} {resource}.{action}")
    key = (member.user_id, member.workspace_id, "leads", "view")
    sub = f"u{member.user_id}"
    lead_id = db.session.scalar(
        sa.select(sa.func.max(Lead.id)).where(Lead.owner_id == member.user_id,
                                              Lead.workspace_id == member.workspace_id)
        .execution_options(rbac_bypass=True))
    lead = db.session.get(Lead, lead_id, execution_options={"rbac_bypass": True}) \
        if lead_id else None

    def cold() -> bool:
        _cache_clear(app)
        return rbac.can("view", "leads", access=rbac.access_for(member.membership_id))

    candidates = {
        "dict": lambda: perms[key],
        "rbac_warm": lambda: rbac.can("view", "leads", access=access),
        "casbin": lambda: enforcer.enforce(sub, dom, "leads", "view"),
        "casbin_fast": lambda: fast.enforce(sub, dom, "leads", "view"),
        "casbin_synced": lambda: synced.enforce(sub, dom, "leads", "view"),
        "rbac_cold": cold,
    }
    if lead is not None:
        candidates["rbac_warm_record"] = lambda: rbac.can("edit", "leads", lead, access=access)
    answers = {name: fn() for name, fn in candidates.items()}
    stats = compare(candidates, warmup=effort.warmup, repeat=effort.repeat,
                    budget_s=effort.budget_s)
    rbac.access_for(member.membership_id)  # leave the cache warm
    return {
        "member_roles": list(access.roles),
        "answers": answers,
        "agreement": {"checked": len(perms), "rbac_vs_casbin_mismatches": mismatches[:20],
                      "mismatch_count": len(mismatches)},
        "casbin": casbin_info,
        "stats": _stats(stats),
        "casbin_over_rbac_warm": ratio(stats["casbin"], stats["rbac_warm"]),
        "rbac_warm_over_dict": ratio(stats["rbac_warm"], stats["dict"]),
        "casbin_fast_over_rbac_warm": ratio(stats["casbin_fast"], stats["rbac_warm"]),
        "casbin_synced_over_rbac_warm": ratio(stats["casbin_synced"], stats["rbac_warm"]),
        # pycasbin at its best: the fastest of its enforcers against the warm check.
        "casbin_fastest_over_rbac_warm": min(
            ratio(stats[name], stats["rbac_warm"])
            for name in ("casbin", "casbin_fast", "casbin_synced")),
        "casbin_over_rbac_cold": ratio(stats["casbin"], stats["rbac_cold"]),
        "rbac_record_over_dict": (ratio(stats["rbac_warm_record"], stats["dict"])
                                  if "rbac_warm_record" in stats else None),
    }


# -- figure 2: one filtered list page ------------------------------------------

def _page() -> sa.Select[tuple[Lead]]:
    return sa.select(Lead).order_by(Lead.id.desc()).limit(LIST_PAGE)


def list_queries(world: World, effort: Effort, explain: bool) -> dict[str, Any]:
    """Figure 2: the plugin-filtered page against the hand-written WHERE, per scope."""
    out: dict[str, Any] = {}
    for scope in (OWN, DEPT, ALL):
        member = world.members[scope]
        access = rbac.access_for(member.membership_id)

        # Both statements are built on every call, as a view builds them:
        # SQLAlchemy memoises a statement object's cache key, so reusing one
        # prebuilt statement would hide part of the baseline's cost.
        def plugin() -> list[int]:
            ids = [x.id for x in db.session.scalars(_page())]
            db.session.expunge_all()
            return ids

        def hand(member: Member = member, scope: str = scope) -> list[int]:
            where = sql.handwritten_where(scope, member.workspace_id, member.user_id,
                                          member.department_id)
            ids = [x.id for x in db.session.scalars(
                _page().where(where).execution_options(rbac_bypass=True))]
            db.session.expunge_all()
            return ids

        with rbac.as_member(access):
            with sql.capture(db.engine) as seen_plugin:
                plugin_ids = plugin()
            with sql.capture(db.engine) as seen_hand:
                hand_ids = hand()
            stats = compare({"plugin": plugin, "handwritten": hand}, warmup=effort.warmup,
                            repeat=effort.repeat, budget_s=effort.budget_s,
                            equal_batches=True)
        row: dict[str, Any] = {
            "rows": len(plugin_ids),
            "same_rows": plugin_ids == hand_ids,
            "stats": _stats(stats),
            "plugin_over_handwritten": ratio(stats["plugin"], stats["handwritten"]),
        }
        if explain and seen_plugin and seen_hand:
            conn = db.session.connection()
            row["explain"] = {"plugin": sql.explain(conn, *seen_plugin[-1]),
                              "handwritten": sql.explain(conn, *seen_hand[-1])}
        db.session.rollback()
        out[scope] = row
    return out


# -- figure 3: a whole request -------------------------------------------------

class _LoginAs:
    """What FlaskLoginClient needs of a user: its login id (the demo's session token)."""

    def __init__(self, login_id: str) -> None:
        self.login_id = login_id

    def get_id(self) -> str:
        return self.login_id


def signed_in(app: Flask, member: Member) -> Any:
    """A test client signed in as ``member`` (by its login id) in its workspace."""
    with app.app_context():
        login_id = db.session.scalar(sa.select(User.session_token).where(
            User.id == member.user_id))
    client = app.test_client(user=_LoginAs(login_id))
    with client.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = member.workspace_id
    return client


def request_pages(app: Flask, member: Member, scope: str) -> dict[str, dict[str, str]]:
    """The URLs of figure 3 for ``member``: per page (list, detail) and version
    (plugin, plain, handwritten); the detail page is the member's newest lead."""
    with app.app_context():
        lead_id = first_lead_of(member.user_id, member.workspace_id)
    q = f"?scope={scope}&dept={member.department_id}"
    return {
        "list": {"plugin": "/bench/rbac/leads", "plain": "/bench/plain/leads",
                 "handwritten": f"/bench/hand/leads{q}"},
        "detail": {"plugin": f"/bench/rbac/leads/{lead_id}",
                   "plain": f"/bench/plain/leads/{lead_id}",
                   "handwritten": f"/bench/hand/leads/{lead_id}{q}"},
    }


def guarded_requests(app: Flask, world: World, effort: Effort) -> dict[str, Any]:
    """Figure 3: list and detail pages through the test client, plugin on and off.

    Runs with no app context pushed, so that every request gets its own app
    context, ``g``, and database session, as in production.
    """
    out: dict[str, Any] = {}
    for scope in (OWN, ALL):
        member = world.members[scope]
        client = signed_in(app, member)
        pages = request_pages(app, member, scope)
        out[scope] = {}
        for page, urls in pages.items():
            bodies = {}
            for name, url in urls.items():
                response = client.get(url)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}: "
                                       f"{response.get_data(as_text=True)[:300]}")
                bodies[name] = response.get_json()
            candidates = {name: (lambda u=url: client.get(u)) for name, url in urls.items()}
            stats = compare(candidates, warmup=effort.warmup, repeat=effort.requests_repeat,
                            budget_s=effort.budget_s, equal_batches=True)
            out[scope][page] = {
                "urls": urls,
                "same_body_as_handwritten": bodies["plugin"] == bodies["handwritten"],
                "stats": _stats(stats),
                "plugin_over_plain": ratio(stats["plugin"], stats["plain"]),
                "plugin_over_handwritten": ratio(stats["plugin"], stats["handwritten"]),
            }
    return out


# -- figure 4: effective-access resolution ---------------------------------------

def resolution(app: Flask, stacked: Member, single: Member, effort: Effort) -> dict[str, Any]:
    """Figure 4: build a member's Access from the database, cache cleared."""
    def resolve(member: Member) -> Any:
        _cache_clear(app)
        return rbac.access_for(member.membership_id)

    shapes = {}
    for name, member in (("stacked_5", stacked), ("single_role", single)):
        with sql.capture(db.engine) as seen:
            access = resolve(member)
        shapes[name] = {"roles_resolved": len(access.roles),
                        "rules": sum(len(v) for v in access.rules.values()),
                        "department_users": len(access.department_user_ids),
                        "team_users": len(access.team_user_ids),
                        "queries": len(seen)}
    stats = compare({"stacked_5": lambda: resolve(stacked),
                     "single_role": lambda: resolve(single)},
                    warmup=effort.warmup, repeat=effort.repeat, budget_s=effort.budget_s)
    return {
        "shapes": shapes,
        "stats": _stats(stats),
        "stacked_ms": round(stats["stacked_5"].median_ns / 1e6, 3),
        "stacked_over_single": ratio(stats["stacked_5"], stats["single_role"]),
    }


# -- figure 6: field rules at the data layer, and the write path ------------------

def hidden_field_requests(app: Flask, world: World, effort: Effort) -> dict[str, Any]:
    """Figure 6: figure 3's guarded list and detail pages for the member with one
    hidden field on leads, against their twin without it (the Member role alone).

    The hidden field is one the pages do not serialise, so both members answer
    the same JSON shape and only the data layer's work differs: statements run
    with ``populate_existing``, their column walk is looked up by cache key, and
    every loaded lead gets the field deferred. Runs with no app context pushed.
    """
    members = {"hidden": world.members[HIDDEN], "visible": world.members[OWN]}
    with app.app_context():
        hidden = {name: sorted(rbac.access_for(m.membership_id).hidden("leads"))
                  for name, m in members.items()}
        with rbac.as_member(members["hidden"].membership_id):
            lead = db.session.scalars(_page()).first()
            deferred = lead is not None and HIDDEN_FIELD in sa.inspect(lead).unloaded
        db.session.remove()
    if hidden != {"hidden": [HIDDEN_FIELD], "visible": []} or not deferred:
        raise RuntimeError(f"figure 6 needs leads.{HIDDEN_FIELD} hidden from one member "
                           f"only, and deferred on load: {hidden}, deferred={deferred}")
    clients = {name: signed_in(app, m) for name, m in members.items()}
    urls = {name: request_pages(app, m, OWN) for name, m in members.items()}
    out: dict[str, Any] = {"hidden_fields": hidden}
    for page in ("list", "detail"):
        candidates = {name: (lambda c=clients[name], u=urls[name][page]["plugin"]: c.get(u))
                      for name in members}
        for name, url in ((n, urls[n][page]["plugin"]) for n in members):
            response = candidates[name]()
            if response.status_code != 200:
                raise RuntimeError(f"{url} answered {response.status_code}: "
                                   f"{response.get_data(as_text=True)[:300]}")
        stats = compare(candidates, warmup=effort.warmup, repeat=effort.requests_repeat,
                        budget_s=effort.budget_s, equal_batches=True)
        out[page] = {"urls": {n: urls[n][page]["plugin"] for n in members},
                     "stats": _stats(stats),
                     "hidden_over_visible": ratio(stats["hidden"], stats["visible"])}
    return out


@contextmanager
def _no_disk_sync() -> Iterator[None]:
    """On SQLite, open connections with ``PRAGMA synchronous=OFF`` for the block."""
    engine = db.engine
    if engine.dialect.name != "sqlite":
        yield
        return

    def no_sync(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=OFF")

    db.session.close()
    event.listen(engine, "connect", no_sync)
    engine.dispose()  # the pooled connections were opened without it
    try:
        yield
    finally:
        db.session.close()
        event.remove(engine, "connect", no_sync)
        engine.dispose()


def guarded_edit(world: World, effort: Effort) -> dict[str, Any]:
    """Figure 6: load one lead, change its name, commit, three ways (inside an app context).

    * *member*: as the own-scope member, through the query filter and every
      ``before_flush`` check (numbers, token revocation, the guard, audit);
    * *system*: the same session inside ``rbac.system()``: no filter, no guard,
      but the listeners that do not look at the context still run;
    * *plugin_off*: a session of the app's class with none of the plugin's
      listeners (the write-path twin of figure 3's plugin-off view).

    The session is emptied after each edit, so every edit loads the row again.
    SQLite commits without waiting for the disk here, as the bench's PostgreSQL
    does (``fsync=off``): a disk flush of 1 to 20 ms would drown the checks.
    """
    member = world.members[OWN]
    lead_id = first_lead_of(member.user_id, member.workspace_id)
    access = rbac.access_for(member.membership_id)
    plain = AppSession(db)
    db.session.rollback()
    with rbac.system():
        original = db.session.get(Lead, lead_id).name
        db.session.rollback()
    names = itertools.cycle((f"{original} (edited)", original))  # every commit writes

    def edit(session: Any) -> None:
        lead = session.get(Lead, lead_id)
        lead.name = next(names)
        session.commit()
        session.expunge_all()

    def as_member() -> None:
        with rbac.as_member(access):
            edit(db.session)

    def in_system() -> None:
        with rbac.system():
            edit(db.session)

    with _no_disk_sync():
        stats = compare({"member": as_member, "system": in_system,
                         "plugin_off": lambda: edit(plain)},
                        warmup=effort.warmup, repeat=effort.requests_repeat,
                        budget_s=effort.budget_s, equal_batches=True)
    with rbac.system():
        db.session.get(Lead, lead_id).name = original
        db.session.commit()
    plain.close()
    return {"lead_id": lead_id, "stats": _stats(stats),
            "member_over_system": ratio(stats["member"], stats["system"]),
            "member_over_plugin_off": ratio(stats["member"], stats["plugin_off"])}
