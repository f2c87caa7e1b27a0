"""Reports and analytics (crm_app.reports): filtered aggregates, gated pages, audited CSV.

Every figure is a SQL aggregate that the plugin's query filter narrows like
a list page: the first tests check the aggregate *shapes* the reports use
(sum, count, GROUP BY, subquery, CTE, UNION, scalar subquery, EXISTS) against
the same aggregate computed in Python over the records ``rbac.can("view")``
allows, for every built-in role, on SQLite and PostgreSQL (the ``app``
fixture). The property test over random data is ``test_reports_property``.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Deal, Lead, Task, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, roles, sharing, workspaces
from tests.rbac_helpers import access_of, fast_passwords  # noqa: F401

ROLES = ["owner", "admin", "manager", "member", "viewer", "finance", "junior_rep",
         "client_success", "dual"]


def visible(access: Any, resource: str, model: type) -> list[Any]:
    """The records of ``model`` that ``rbac.can("view")`` allows ``access`` (policy side)."""
    with rbac.system():
        records = list(db.session.scalars(sa.select(model)))
    return [r for r in records if rbac.can("view", resource, r, access=access)]


def as_client(app: Any, world: SimpleNamespace, key: str) -> Any:
    client = app.test_client(user=world.users[key])
    with client.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = world.ws.id
    return client


def read_csv(response: Any) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


# -- the query filter reaches every aggregate shape -----------------------------------------

@pytest.mark.parametrize("key", ROLES)
def test_every_aggregate_shape_is_filtered_like_can_view(world: SimpleNamespace,
                                                          key: str) -> None:
    access = access_of(world.members[key])
    deals = visible(access, "deals", Deal)
    leads = visible(access, "leads", Lead)
    n, total = len(deals), sum((d.amount for d in deals), Decimal(0))
    stages = Counter(d.stage for d in deals)
    owners = Counter(d.owner_id for d in deals if d.owner_id is not None)
    with rbac.as_member(access):
        s = db.session
        assert s.scalar(sa.select(sa.func.count(Deal.id))) == n
        assert s.scalar(sa.select(sa.func.count()).select_from(Deal)) == n
        assert (s.scalar(sa.select(sa.func.sum(Deal.amount))) or Decimal(0)) == total
        assert dict(s.execute(sa.select(Deal.stage, sa.func.count(Deal.id))
                              .group_by(Deal.stage)).all()) == stages
        assert s.scalar(sa.select(sa.func.count()).select_from(
            sa.select(Deal.id).subquery())) == n
        assert s.scalar(sa.select(sa.func.count()).select_from(sa.select(Deal.id).cte())) == n
        assert (s.scalar(sa.select(sa.select(sa.func.sum(Deal.amount)).scalar_subquery()))
                or Decimal(0)) == total
        assert s.scalar(sa.select(sa.func.count()).select_from(
            sa.union_all(sa.select(Deal.id), sa.select(Lead.id)).subquery())) == n + len(leads)
        joined = dict(s.execute(sa.select(User.id, sa.func.count(Deal.id))
                                .join(Deal, Deal.owner_id == User.id).group_by(User.id)).all())
        assert joined == owners
        assert s.scalar(sa.select(sa.func.count(User.id)).where(
            sa.select(Deal.id).where(Deal.owner_id == User.id).exists())) == len(owners)


#: Aggregates that name a protected table where ``with_loader_criteria`` cannot reach it
#: (only in WHERE, in ``exists()``'s ``SELECT *``, through a Core table or alias): each
#: would count every deal of the database, so the plugin refuses them for a member.
UNREACHABLE = {
    "core statement": lambda: sa.select(sa.func.count()).select_from(Deal.__table__),
    "table only in WHERE": lambda: sa.select(sa.func.count()).where(Deal.id > 0),
    "implicit cross join": lambda: sa.select(sa.func.count(User.id)).where(
        User.id == Deal.owner_id),
    "exists star": lambda: sa.select(sa.func.count(User.id)).where(
        sa.exists().where(Deal.owner_id == User.id)),
    "core subquery": lambda: sa.select(sa.func.count(User.id)).where(
        User.id.in_(sa.select(Deal.__table__.c.owner_id))),
    "core alias": lambda: sa.select(sa.func.count(User.id)).where(
        User.id.in_(sa.select(Deal.__table__.alias().c.owner_id))),
    "core table in a union": lambda: sa.select(sa.func.count()).select_from(sa.union_all(
        sa.select(Lead.id), sa.select(Deal.__table__.c.id)).subquery()),
    "scalar subquery over WHERE only": lambda: sa.select(Lead.id, sa.select(
        sa.func.count()).where(Deal.owner_id == Lead.owner_id).scalar_subquery()),
}


@pytest.mark.parametrize("shape", sorted(UNREACHABLE))
def test_aggregates_out_of_the_filters_reach_are_refused(world: SimpleNamespace,
                                                         shape: str) -> None:
    stmt = UNREACHABLE[shape]()
    with rbac.system():
        db.session.execute(stmt).all()  # trusted code may run it
    with rbac.as_member(access_of(world.members["finance"])), pytest.raises(PermissionDenied):
        db.session.execute(stmt).all()


def test_a_correlated_subquery_of_a_covered_table_is_allowed(world: SimpleNamespace) -> None:
    """``Deal`` in the inner WHERE is the outer, filtered, Deal: nothing escapes."""
    access = access_of(world.members["manager"])
    deals = visible(access, "deals", Deal)
    tasks = visible(access, "tasks", Task)
    with rbac.as_member(access):
        counts = db.session.execute(sa.select(Deal.id, sa.select(sa.func.count(Task.id)).where(
            Task.owner_id == Deal.owner_id).scalar_subquery())).all()
    assert {i for i, _ in counts} == {d.id for d in deals}
    expected = {d.id: sum(1 for t in tasks if t.owner_id == d.owner_id and t.owner_id)
                for d in deals}
    assert dict(counts) == {i: expected[i] for i, _ in counts}


# -- who may open what ---------------------------------------------------------------------------

#: role -> (reports page, charts page, CSV export) statuses.
EXPECTED = {
    "owner": (200, 200, 200), "admin": (200, 200, 200), "manager": (200, 200, 200),
    "finance": (200, 200, 200), "viewer": (200, 200, 403), "member": (200, 200, 403),
    "junior_rep": (403, 403, 403), "client_success": (403, 403, 403),
}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_reports_pages_follow_reports_and_analytics_grants(app: Any, world: SimpleNamespace,
                                                           key: str) -> None:
    client = as_client(app, world, key)
    got = tuple(client.get(url).status_code for url in
                ("/reports/", "/reports/charts", "/reports/export.csv?figure=pipeline"))
    assert got == EXPECTED[key]
    nav = client.get("/").get_data(as_text=True)
    assert ('data-nav="reports"' in nav) == (EXPECTED[key][0] == 200 or EXPECTED[key][1] == 200)


def test_anonymous_is_sent_to_sign_in(app: Any, world: SimpleNamespace) -> None:
    for url in ("/reports/", "/reports/charts", "/reports/export.csv?figure=pipeline"):
        assert app.test_client().get(url).status_code in (302, 401)


def test_a_plan_without_sales_has_no_reports_even_for_the_owner(app: Any,
                                                                world: SimpleNamespace) -> None:
    world.ws.plan = "free"
    db.session.commit()
    client = as_client(app, world, "owner")
    assert client.get("/reports/").status_code == 403
    assert client.get("/reports/charts").status_code == 403
    assert 'data-nav="reports"' not in client.get("/").get_data(as_text=True)


# -- the figures a member sees ---------------------------------------------------------------

def test_finance_exports_the_pipeline_of_closed_deals_only(app: Any,
                                                           world: SimpleNamespace) -> None:
    client = as_client(app, world, "finance")
    rows = read_csv(client.get("/reports/export.csv?figure=pipeline"))
    deals = visible(access_of(world.members["finance"]), "deals", Deal)
    assert rows[0] == ["Stage", "Deals", "Value"]
    assert {r[0] for r in rows[1:]} == {"won"}  # the world's closed deals are all won
    assert rows[1][1:] == [str(len(deals)), str(sum(d.amount for d in deals))]
    # Finance may not view leads: the figure says so instead of showing zero.
    page = client.get("/reports/").get_data(as_text=True)
    assert "You may not view leads." in page
    assert client.get("/reports/export.csv?figure=leads_by_source").status_code == 403


def test_the_export_is_audited_with_its_row_count(app: Any, world: SimpleNamespace) -> None:
    client = as_client(app, world, "manager")
    response = client.get("/reports/export.csv?figure=activity")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    rows = read_csv(response)
    A = rbac.models.AuditEvent
    event = db.session.scalars(sa.select(A).where(A.action == "export",
                                                  A.resource == "reports")).one()
    assert event.detail["rows"] == len(rows) - 1
    assert event.detail["figure"] == "activity"
    assert event.actor_user_id == world.users["manager"].id


def test_export_cells_are_neutralised(app: Any, world: SimpleNamespace) -> None:
    with rbac.system():
        db.session.add(Lead(workspace_id=world.ws.id, owner_id=world.users["member"].id,
                            name="Formula", source="=HYPERLINK(\"http://evil\")"))
        db.session.commit()
    rows = read_csv(as_client(app, world, "owner").get("/reports/export.csv?figure=leads_by_source"))
    sources = [r[0] for r in rows[1:]]
    assert "'=HYPERLINK(\"http://evil\")" in sources
    assert not any(s.startswith("=") for s in sources)


@pytest.mark.parametrize("query, field", [
    ("start=yesterday", "start"), ("end=2026-13-01", "end"), ("owner=abc", "owner"),
    ("department=1e9", "department"), ("start=2026-05-02&end=2026-05-01", "end"),
])
def test_a_bad_filter_is_a_400_naming_the_field(app: Any, world: SimpleNamespace, query: str,
                                               field: str) -> None:
    client = as_client(app, world, "owner")
    page = client.get(f"/reports/?{query}")
    assert page.status_code == 400
    assert f'data-field="{field}"' in page.get_data(as_text=True)
    export = client.get(f"/reports/export.csv?figure=pipeline&{query}")
    assert export.status_code == 400 and field in export.get_data(as_text=True)


def test_an_unknown_figure_is_a_404(app: Any, world: SimpleNamespace) -> None:
    assert as_client(app, world, "owner").get("/reports/export.csv?figure=x").status_code == 404


def test_owner_and_department_filters_narrow_every_figure(app: Any,
                                                          world: SimpleNamespace) -> None:
    client = as_client(app, world, "owner")
    member = world.users["member"]
    rows = read_csv(client.get(f"/reports/export.csv?figure=pipeline&owner={member.id}"))
    assert rows[1:] == [["new", "1", "1000.00"], ["won", "1", "1000.00"]]
    sales = world.departments["sales"].id
    activity = read_csv(client.get(f"/reports/export.csv?figure=activity&department={sales}"))
    in_sales = {"Manager", "Member", "Member2", "Junior Rep"}
    assert {r[0] for r in activity[1:]} <= in_sales and len(activity) > 1
    # A department of another workspace matches nobody here.
    other = workspaces.create_workspace(rbac, "Gamma", owner=world.users["outsider"], slug="g")
    dept = rbac.models.Department(workspace=other, name="Elsewhere")
    db.session.add(dept)
    db.session.commit()
    none = read_csv(client.get(f"/reports/export.csv?figure=pipeline&department={dept.id}"))
    assert none[1:] == []


def test_the_department_filter_needs_members_view(app: Any, world: SimpleNamespace) -> None:
    """Filtering by department tells who belongs to it: without ``members.view`` the filter
    is not offered and a ``department`` argument is a 403 naming it, on the pages and the
    CSV (as a filter on a hidden field is)."""
    sales = world.departments["sales"].id
    for key in ("viewer", "finance"):
        assert not rbac.can("view", "members", access=access_of(world.members[key]))
    viewer = as_client(app, world, "viewer")
    for url in ("/reports/", "/reports/charts"):
        assert 'data-filter="department"' not in viewer.get(url).get_data(as_text=True)
        refused = viewer.get(f"{url}?department={sales}")
        assert refused.status_code == 403
        text = refused.get_data(as_text=True)
        assert 'data-field="department"' in text and 'data-figure=' not in text
    finance = as_client(app, world, "finance")  # reports.export, no members.view
    assert finance.get("/reports/export.csv?figure=activity").status_code == 200
    export = finance.get(f"/reports/export.csv?figure=activity&department={sales}")
    assert export.status_code == 403 and "department" in export.get_data(as_text=True)
    owner = as_client(app, world, "owner")
    for url in ("/reports/", "/reports/charts"):
        assert 'data-filter="department"' in owner.get(url).get_data(as_text=True)
        assert owner.get(f"{url}?department={sales}").status_code == 200
    activity = read_csv(owner.get(f"/reports/export.csv?figure=activity&department={sales}"))
    assert len(activity) > 1


def test_date_filter_bounds_are_inclusive_days(app: Any, world: SimpleNamespace) -> None:
    with rbac.system():
        deal = db.session.get(Deal, world.deals["member-new"].id)
        deal.created_at = deal.created_at.replace(year=2030, month=3, day=15, hour=23)
        db.session.commit()
    client = as_client(app, world, "owner")
    rows = read_csv(client.get("/reports/export.csv?figure=pipeline&start=2030-03-15"
                               "&end=2030-03-15"))
    assert rows[1:] == [["new", "1", "1000.00"]]
    assert read_csv(client.get("/reports/export.csv?figure=pipeline&start=2030-03-16"))[1:] == []


# -- hidden fields -------------------------------------------------------------------------

def hide(world: SimpleNamespace, rules: dict[str, list[str]], key: str = "admin") -> None:
    roles.set_field_rules(rbac, workspaces.role_by_key(rbac, world.ws, key),
                          {res: dict.fromkeys(names, "hidden") for res, names in rules.items()})
    db.session.commit()


def test_a_figure_over_a_hidden_field_is_not_shown(app: Any, world: SimpleNamespace) -> None:
    with rbac.system():
        db.session.get(Deal, world.deals["member-won"].id).amount = Decimal("8642097.31")
        db.session.commit()
    hide(world, {"deals": ["amount"], "leads": ["source"]})
    client = as_client(app, world, "admin")
    for url in ("/reports/", "/reports/charts"):
        text = client.get(url).get_data(as_text=True)
        assert "8,642" not in text and "8642" not in text
        assert "it uses amount of deals, which is hidden from you" in text
        assert "it uses source of leads, which is hidden from you" in text
        assert 'data-figure="overdue"' in text and 'data-figure="activity"' in text
    assert client.get("/reports/export.csv?figure=pipeline").status_code == 403
    assert client.get("/reports/export.csv?figure=won_lost").status_code == 403
    assert client.get("/reports/export.csv?figure=overdue").status_code == 200


def test_a_filter_on_a_hidden_field_leaves_the_figure_out(app: Any,
                                                          world: SimpleNamespace) -> None:
    """Filtering by a hidden date would reveal it: the figure is then not shown."""
    hide(world, {"deals": ["created_at"], "tasks": ["due_date"]})
    client = as_client(app, world, "admin")
    assert client.get("/reports/export.csv?figure=pipeline").status_code == 200
    assert client.get("/reports/export.csv?figure=pipeline&start=2020-01-01"
                      ).status_code == 403
    assert client.get("/reports/export.csv?figure=overdue").status_code == 403
    header = read_csv(client.get("/reports/export.csv?figure=activity&end=2099-01-01"))[0]
    assert header == ["Member", "Leads", "Tasks", "Notes", "Total"]


# -- charts ----------------------------------------------------------------------------------

def test_charts_are_inline_svg_without_script(app: Any, world: SimpleNamespace) -> None:
    with rbac.system():
        db.session.add(Lead(workspace_id=world.ws.id, name="x", source="<script>alert(1)"))
        db.session.commit()
    text = as_client(app, world, "owner").get("/reports/charts").get_data(as_text=True)
    # Won/lost and overdue are empty in this world (no close or due dates).
    assert text.count('<svg class="chart"') == 3
    assert 'viewBox="0 0 340 ' in text and 'width="100%"' in text
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)" in text
    assert 'style="' not in text.split('<svg class="chart"', 1)[1]


def test_overdue_counts_open_tasks_past_due(app: Any, world: SimpleNamespace) -> None:
    import datetime as dt
    past = dt.date.today() - dt.timedelta(days=3)
    with rbac.system():
        for key, status in (("loose-member", "open"), ("loose-member2", "done")):
            task = db.session.get(Task, world.tasks[key].id)
            task.due_date, task.status = past, status
        db.session.commit()
    rows = read_csv(as_client(app, world, "owner").get("/reports/export.csv?figure=overdue"))
    assert rows[1:] == [["Member", "1"]]


def test_a_member_reads_personal_reports(app: Any, world: SimpleNamespace) -> None:
    """Seed 002 gives a user "Personal" reports: the Member reads the page and charts,
    each figure over the records they see (their own), and exports nothing."""
    client = as_client(app, world, "member")
    page = client.get("/reports/")
    assert page.status_code == 200
    assert client.get("/reports/charts").status_code == 200
    assert client.get("/reports/export.csv?figure=pipeline").status_code == 403
    member = access_of(world.members["member"])
    deals = visible(member, "deals", Deal)
    assert {d.owner_id for d in deals} <= {world.users["member"].id, None}


def test_a_workspace_reports_its_own_records_not_the_ones_shared_with_it(
        world: SimpleNamespace, login: Any) -> None:
    """Acme shares deals, leads and tasks with Beta (view only): Beta's reports, charts and
    report CSVs count Beta's records only, and never name Acme's members."""
    agreement = sharing.create_agreement(
        rbac, rbac.access_for(world.members["owner"]), workspace="beta",
        permissions=["deals.view", "leads.view", "tasks.view"])
    db.session.commit()
    dual = db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.workspace_id == world.ws2.id,
        rbac.models.Membership.user_id == world.users["dual"].id))
    with rbac.as_member(rbac.access_for(dual)) as access:
        sharing.accept(rbac, access, agreement)
        db.session.commit()
    client = login(world.users["dual"], world.ws2)
    assert client.get(f"/deals/{world.deals['member-won'].id}").status_code == 200
    for key in ("pipeline", "won_lost", "activity", "leads_by_source", "overdue"):
        response = client.get(f"/reports/export.csv?figure={key}")
        if response.status_code == 404:
            continue  # not a figure of this app
        assert response.status_code == 200, (key, response.status_code)
        rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
        names = {cell for row in rows[1:] for cell in row}
        assert not names & {world.users[k].name for k in ("member", "member2", "manager")}, key
        if key == "leads_by_source":  # Beta's own lead only, not Acme's five
            assert sum(int(r[-1]) for r in rows[1:]) == 1, rows
        if key in ("pipeline", "won_lost"):  # Beta has no deals of its own
            assert all(r[1] in ("0", "") for r in rows[1:]), (key, rows)
    page = client.get("/reports/").get_data(as_text=True)
    assert world.users["member2"].name not in page
