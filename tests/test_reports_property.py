"""Property: every figure of the reports page equals its Python twin over ``can("view")``.

Hypothesis draws deals, leads, tasks and notes (owners, stages, amounts,
sources, statuses, creation, close and due dates), a member of the world
(each built-in role, plus a custom role with a condition and one with
hidden fields) and the page's filters. Each example computes every figure
through :mod:`crm_app.reports.figures` (filtered SQL aggregates) as that
member, and the same aggregate in Python over the records that
``rbac.can("view", ...)`` allows, with the same filters; a figure must be
shown in exactly the same cases too. The test counts examples and
disagreements and asserts there are no disagreements over enough examples,
on SQLite and on PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_app.extensions import db
from crm_app.models import DEAL_STAGES, TASK_STATUSES, Deal, Lead, Note, Task
from crm_app.rbac_setup import rbac
from crm_app.reports import figures as F
from crm_rbac_plugin import Access, roles, workspaces
from tests.rbac_helpers import access_of, custom_role, fast_passwords, give_role  # noqa: F401

EXAMPLES = 60
MINIMUM = 40
TODAY = dt.date(2031, 6, 15)
SOURCES = ("", "website", "referral", "event")
MEMBER_KEYS = ("owner", "admin", "manager", "member", "viewer", "finance", "junior_rep",
               "client_success", "dual", "big_deals", "hidden")

days = st.integers(min_value=-90, max_value=90).map(lambda d: TODAY + dt.timedelta(days=d))
moments = st.builds(lambda d, h: dt.datetime.combine(d, dt.time(h)), days,
                    st.integers(min_value=0, max_value=23))
owner_keys = st.sampled_from(["member", "member2", "manager", "junior_rep", "viewer", None])


def records() -> Any:
    deal = st.fixed_dictionaries({
        "owner": owner_keys, "stage": st.sampled_from(DEAL_STAGES), "created_at": moments,
        "amount": st.integers(min_value=0, max_value=10**7).map(lambda c: Decimal(c) / 100),
        "close_date": st.none() | days})
    lead = st.fixed_dictionaries({"owner": owner_keys, "source": st.sampled_from(SOURCES),
                                  "created_at": moments})
    task = st.fixed_dictionaries({"owner": owner_keys, "status": st.sampled_from(TASK_STATUSES),
                                  "due_date": st.none() | days, "created_at": moments,
                                  "client": st.integers(min_value=-1, max_value=4)})
    note = st.fixed_dictionaries({"owner": owner_keys, "created_at": moments})
    return st.fixed_dictionaries({"deals": st.lists(deal, max_size=8),
                                  "leads": st.lists(lead, max_size=6),
                                  "tasks": st.lists(task, max_size=6),
                                  "notes": st.lists(note, max_size=4)})


def filters() -> Any:
    return st.fixed_dictionaries({
        "start": st.none() | days, "end": st.none() | days,
        "owner": st.none() | owner_keys.filter(lambda k: k is not None),
        "department": st.none() | st.sampled_from(["sales", "support"])})


def prepare(w: SimpleNamespace) -> None:
    """Two more members: a role with a condition, and one with hidden fields."""
    big = custom_role(w, "Big deals", [("deals", "view", "all")],
                      condition=[{"field": "amount", "op": "gt", "value": 50000}])
    hidden = custom_role(w, "Hidden", [(r, "view", "all") for r in
                                       ("deals", "leads", "tasks", "notes")])
    roles.set_field_rules(rbac, hidden, {"leads": {"source": "hidden"},
                                         "tasks": {"due_date": "hidden"}})
    for key, role in (("big_deals", big), ("hidden", hidden)):
        user = w.users["outsider"] if key == "big_deals" else w.users["client_success"]
        ms = (workspaces.add_member(rbac, w.ws, user, []) if key == "big_deals"
              else w.members["client_success"])
        give_role(ms, role)
        w.members[key] = ms
    db.session.commit()


def plain_ids(w: SimpleNamespace) -> SimpleNamespace:
    """The world's ids as plain values (its objects are detached between examples)."""
    return SimpleNamespace(
        ws=w.ws.id, users={k: u.id for k, u in w.users.items()}, clients=[
            c.id for c in w.clients.values()],
        departments={k: d.id for k, d in w.departments.items()},
        names={None: "Unassigned", **{u.id: u.name for u in w.users.values()}})


def replace_records(ids: SimpleNamespace, data: dict[str, list[dict[str, Any]]]) -> None:
    uid = {k: (ids.users[k] if k else None) for k in (None, "member", "member2", "manager",
                                                      "junior_rep", "viewer")}
    clients = ids.clients
    with rbac.system():
        for model in (Note, Task, Deal, Lead):
            db.session.execute(sa.delete(model))
        base = {"workspace_id": ids.ws}
        for d in data["deals"]:
            db.session.add(Deal(**base, owner_id=uid[d["owner"]], title="d", stage=d["stage"],
                                amount=d["amount"], close_date=d["close_date"],
                                created_at=d["created_at"]))
        for d in data["leads"]:
            db.session.add(Lead(**base, owner_id=uid[d["owner"]], name="l", source=d["source"],
                                created_at=d["created_at"]))
        for d in data["tasks"]:
            db.session.add(Task(**base, owner_id=uid[d["owner"]], title="t", status=d["status"],
                                due_date=d["due_date"], created_at=d["created_at"],
                                client_id=clients[d["client"]] if d["client"] >= 0 else None))
        for d in data["notes"]:
            db.session.add(Note(**base, owner_id=uid[d["owner"]], body="n",
                                created_at=d["created_at"]))
        db.session.commit()
    db.session.expunge_all()


# -- the Python twins ------------------------------------------------------------------------

def seen(access: Access, resource: str, model: type) -> list[Any]:
    with rbac.system():
        rows = list(db.session.scalars(sa.select(model)))
    return [r for r in rows if rbac.can("view", resource, r, access=access)]


def kept(rows: list[Any], f: F.Filters, dept_users: set[int] | None,
         date_field: str = "created_at") -> list[Any]:
    def ok(r: Any) -> bool:
        value = getattr(r, date_field)
        day = value.date() if isinstance(value, dt.datetime) else value
        if (f.start or f.end) and day is None:
            return False
        if f.start and day < f.start or f.end and day > f.end:
            return False
        if f.owner is not None and r.owner_id != f.owner:
            return False
        return dept_users is None or r.owner_id in dept_users
    return [r for r in rows if ok(r)]


def python_figures(access: Access, f: F.Filters, dept_users: set[int] | None,
                   names: dict[int | None, str]) -> dict[str, Any]:
    """The expected figure rows (as comparable values), None where it is not shown."""
    hidden = {res: access.hidden(res) for res in ("deals", "leads", "tasks", "notes")}
    may = {res: rbac.can("view", res, access=access) for res in hidden}
    date_used = {"created_at"} if f.start or f.end else set()
    owner_used = {"owner_id"} if f.owner is not None or f.department is not None else set()

    def shown(res: str, needs: set[str]) -> bool:
        return may[res] and not (needs & hidden[res])

    out: dict[str, Any] = {}
    deals = seen(access, "deals", Deal)
    if shown("deals", {"stage", "amount"} | date_used | owner_used):
        ds = kept(deals, f, dept_users)
        out["pipeline"] = {s: (sum(1 for d in ds if d.stage == s),
                               sum((d.amount for d in ds if d.stage == s), Decimal(0)))
                           for s in {d.stage for d in ds}}
    else:
        out["pipeline"] = None
    close_used = {"close_date"} if f.start or f.end else set()
    if shown("deals", {"stage", "amount", "close_date"} | close_used | owner_used):
        ds = [d for d in kept(deals, f, dept_users, "close_date")
              if d.stage in ("won", "lost") and d.close_date is not None]
        table: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), 0, Decimal(0)])
        for d in ds:
            row = table[d.close_date.strftime("%Y-%m")]
            i = 0 if d.stage == "won" else 2
            row[i] += 1
            row[i + 1] += d.amount
        out["won_lost"] = {m: tuple(v) for m, v in table.items()}
    else:
        out["won_lost"] = None
    if shown("leads", {"source"} | date_used | owner_used):
        out["leads_by_source"] = dict(Counter(
            r.source or "(none)" for r in kept(seen(access, "leads", Lead), f, dept_users)))
    else:
        out["leads_by_source"] = None
    parts = [(n, m) for n, m in F.ACTIVITY if shown(n, {"owner_id"} | date_used | owner_used)]
    if parts:
        per = {n: Counter(r.owner_id for r in kept(seen(access, n, m), f, dept_users))
               for n, m in parts}
        owners = {o for c in per.values() for o in c}
        out["activity"] = {names[o]: tuple(per[n][o] for n, _ in parts) for o in owners}
    else:
        out["activity"] = None
    if shown("tasks", {"status", "due_date", "owner_id"} | date_used):
        ts = [t for t in kept(seen(access, "tasks", Task), f, dept_users)
              if t.status == "open" and t.due_date is not None and t.due_date < TODAY]
        out["overdue"] = {names[o]: n for o, n in Counter(t.owner_id for t in ts).items()}
    else:
        out["overdue"] = None
    return out


def sql_figures(access: Access, f: F.Filters) -> dict[str, Any]:
    """The page's figures (SQL through the plugin), in the same comparable shape."""
    with rbac.as_member(access):
        figs = {fig.key: fig for fig in (F.pipeline(f, access), F.won_lost(f, access),
                                          F.leads_by_source(f, access), F.activity(f, access),
                                          F.overdue(f, access, today=TODAY))}
    out: dict[str, Any] = {k: None for k in figs}
    for key, fig in figs.items():
        if not fig.shown:
            continue
        if key == "pipeline":
            out[key] = {r[0]: (r[1], r[2]) for r in fig.rows}
        elif key == "won_lost":
            out[key] = {r[0]: tuple(r[1:]) for r in fig.rows}
        elif key == "activity":
            out[key] = {r[0]: tuple(r[1:-1]) for r in fig.rows}
            assert all(r[-1] == sum(r[1:-1]) for r in fig.rows)
        else:
            out[key] = {r[0]: r[1] for r in fig.rows}
    return out


def test_every_figure_equals_python_over_can_view(app: Any, world: SimpleNamespace) -> None:
    prepare(world)
    ids = plain_ids(world)
    m = rbac.models
    accesses = {k: access_of(world.members[k]) for k in MEMBER_KEYS}
    stats = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(data=records(), chosen=st.sampled_from(MEMBER_KEYS), flt=filters())
    def check(data: dict[str, Any], chosen: str, flt: dict[str, Any]) -> None:
        replace_records(ids, data)
        dept = ids.departments[flt["department"]] if flt["department"] else None
        f = F.Filters(start=flt["start"], end=flt["end"], department=dept,
                      owner=ids.users[flt["owner"]] if flt["owner"] else None)
        dept_users = None if dept is None else set(db.session.scalars(
            sa.select(m.Membership.user_id).where(m.Membership.workspace_id == ids.ws,
                                                  m.Membership.department_id == dept)))
        access = accesses[chosen]
        expected = python_figures(access, f, dept_users, ids.names)
        got = sql_figures(access, f)
        stats["examples"] += 1
        stats["figures"] += sum(v is not None for v in got.values())
        stats["non_empty"] += sum(bool(v) for v in got.values())
        for key in expected:
            if expected[key] != got[key]:
                stats["disagreements"] += 1
                print("DISAGREE", chosen, key, f, expected[key], got[key])

    check()
    print("reports property:", dict(stats))
    assert stats["disagreements"] == 0, stats
    assert stats["examples"] >= MINIMUM and stats["non_empty"] >= MINIMUM, stats
