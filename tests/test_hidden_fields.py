"""Hidden fields fail closed at the data layer (crm_rbac_plugin.fields).

A role's ``hidden`` field rule must keep the field's values out of every
response: the dashboard's figures, a record's title in ``<title>``, the
breadcrumb, ``<h1>`` and ``aria-label``, and any statement that selects,
filters, sorts, groups or aggregates by the field. The checks run on SQLite
and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from crm_app.extensions import db
from crm_app.models import Client, Deal, Lead, Task
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, roles, workspaces
from tests.rbac_helpers import allowed_tags, custom_role, fast_passwords  # noqa: F401

#: A deal amount, lead texts and a due date no page shows unless they leak.
AMOUNT = Decimal("8642097.31")
DUE = dt.date(2037, 8, 23)


def hide(world: SimpleNamespace, rules: dict[str, dict[str, str]],
         role_key: str = "admin") -> Any:
    """Hide ``rules`` from the built-in role ``role_key``; return its member."""
    roles.set_field_rules(rbac, workspaces.role_by_key(rbac, world.ws, role_key),
                          {res: dict.fromkeys(names, "hidden") for res, names in rules.items()})
    db.session.commit()
    return world.users[role_key]


def text_of(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return str(response.get_data(as_text=True))


# -- dashboard --------------------------------------------------------------------------------

def test_dashboard_leaves_out_pipeline_figures_over_hidden_amounts(world: SimpleNamespace,
                                                                   login: Any) -> None:
    with rbac.system():
        for deal in world.deals.values():
            deal.amount = AMOUNT
        db.session.commit()
    owner = text_of(login(world.users["owner"], world.ws), "/")
    assert 'class="stage-amount"' in owner and "Open pipeline" in owner
    user = hide(world, {"deals": ["amount"]})
    page = text_of(login(user, world.ws), "/")
    assert 'class="stage-row"' in page  # per-stage counts stay: the stage is visible
    assert 'class="stage-amount"' not in page
    # The totals over hidden amounts read "—", never a figure (nor "$0").
    assert page.count('data-total="') == 2 and "$0" not in page
    assert "8,642,097" not in page and "8642097" not in page


def test_dashboard_leaves_out_per_stage_counts_over_hidden_stages(world: SimpleNamespace,
                                                                  login: Any) -> None:
    user = hide(world, {"deals": ["stage"]})
    page = text_of(login(user, world.ws), "/")
    assert 'class="stage-row"' not in page and "Open pipeline" not in page
    assert 'data-resource="deals"' in page  # the visible count of deals stays


def test_dashboard_hides_newest_leads_fields(world: SimpleNamespace, login: Any) -> None:
    with rbac.system():
        for n, lead in enumerate(world.leads.values()):
            lead.company, lead.status = f"Qcompany{n}x", "qualified"
        db.session.commit()
    user = hide(world, {"leads": ["name", "company", "status"]})
    page = text_of(login(user, world.ws), "/")
    assert "Lead of" not in page and "Qcompany" not in page
    leads_card = page[page.index("Newest leads"):]
    assert "badge-qualified" not in leads_card and ">Qualified<" not in leads_card
    assert f"Lead #{world.leads['member'].id}<" in page


def test_dashboard_hides_task_due_dates_and_overdue_count(world: SimpleNamespace,
                                                          login: Any) -> None:
    with rbac.system():
        world.tasks["loose-member"].due_date = DUE
        world.tasks["loose-member2"].due_date = dt.date(2001, 1, 2)  # overdue
        db.session.commit()
    owner = text_of(login(world.users["owner"], world.ws), "/")
    assert "Aug 23" in owner and "1 overdue" in owner
    user = hide(world, {"tasks": ["due_date"]})
    page = text_of(login(user, world.ws), "/")
    assert "Aug 23" not in page and "overdue" not in page
    assert "Loose task of member" in page  # open tasks are still listed


# -- titles and labels -------------------------------------------------------------------------

def test_detail_and_form_pages_title_a_record_by_id_when_its_name_is_hidden(
        world: SimpleNamespace, login: Any) -> None:
    lead = world.leads["member"]
    user = hide(world, {"leads": ["name"]})
    client = login(user, world.ws)
    for url in (f"/leads/{lead.id}", f"/leads/{lead.id}/edit"):
        page = text_of(client, url)
        assert "Lead of member" not in page, url
        assert f"Lead #{lead.id}" in page, url
    detail = text_of(client, f"/leads/{lead.id}")
    assert f"<title>Lead #{lead.id}" in detail
    assert f"<h1>Lead #{lead.id}</h1>" in detail


def test_list_rows_label_edit_links_by_id_when_the_name_is_hidden(world: SimpleNamespace,
                                                                 login: Any) -> None:
    user = hide(world, {"leads": ["name"]})
    page = text_of(login(user, world.ws), "/leads/")
    assert "Lead of" not in page
    assert f'aria-label="Edit Lead #{world.leads["member"].id}"' in page


def test_str_and_label_of_a_record_never_show_a_hidden_field(world: SimpleNamespace) -> None:
    hide(world, {"leads": ["name"]})
    lead_id, admin = world.leads["member"].id, world.members["admin"].id
    db.session.expunge_all()
    with rbac.as_member(admin):
        lead = db.session.get(Lead, lead_id)
        assert str(lead) == rbac.label(lead) == f"Lead #{lead_id}"
    with rbac.system():
        assert str(lead) == "Lead of member"


# -- the data layer -----------------------------------------------------------------------------

HIDDEN_REFERENCES = {
    "column": lambda: sa.select(Deal.amount),
    "where": lambda: sa.select(Deal).where(Deal.amount > 0),
    "order by": lambda: sa.select(Deal).order_by(Deal.amount),
    "group by": lambda: sa.select(sa.func.count()).select_from(Deal).group_by(Deal.amount),
    "aggregate": lambda: sa.select(sa.func.sum(Deal.amount)),
    "subquery": lambda: sa.select(sa.func.count()).select_from(
        sa.select(Deal.id).where(Deal.amount > 5).subquery()),
}


@pytest.mark.parametrize("shape", sorted(HIDDEN_REFERENCES))
def test_statements_naming_a_hidden_column_are_refused_outside_system(
        world: SimpleNamespace, shape: str) -> None:
    hide(world, {"deals": ["amount"]})
    stmt = HIDDEN_REFERENCES[shape]()
    with rbac.as_member(world.members["admin"]):
        with pytest.raises(PermissionDenied, match="deals.amount"):
            db.session.execute(stmt).all()
        assert db.session.scalars(sa.select(Deal).where(Deal.stage == "won")).all()
    with rbac.system():
        db.session.execute(stmt).all()
    with rbac.as_member(world.members["manager"]):  # hides nothing
        db.session.execute(stmt).all()


def test_a_refused_statement_is_a_403_page(world: SimpleNamespace, login: Any) -> None:
    """A page whose query names a hidden column answers 403 (the extension's handler)."""
    app = login(world.users["owner"], world.ws).application
    user = hide(world, {"deals": ["amount"]})

    @app.get("/_test/amounts")
    def amounts() -> str:
        return str(db.session.scalar(sa.select(sa.func.sum(Deal.amount))))

    assert login(user, world.ws).get("/_test/amounts").status_code == 403
    assert login(world.users["owner"], world.ws).get("/_test/amounts").status_code == 200


def test_member_loads_never_hold_hidden_values(world: SimpleNamespace) -> None:
    """Loaded, already in the identity map, reloaded after a commit: never readable."""
    deal_id = world.deals["member-new"].id
    hide(world, {"deals": ["amount"]})
    with rbac.system():
        cached = db.session.get(Deal, deal_id)
        assert cached.amount == Decimal(1000)  # in the identity map, amount loaded
    with rbac.as_member(world.members["admin"]):
        deal = db.session.scalars(sa.select(Deal).where(Deal.id == deal_id)).one()
        assert deal is cached
        with pytest.raises(PermissionDenied, match="deals.amount"):
            deal.amount  # noqa: B018
        deal.title = "Renamed by admin"  # a visible field stays writable
        db.session.commit()
        assert deal.title == "Renamed by admin"  # reloaded after the commit ...
        with pytest.raises(PermissionDenied):
            deal.amount  # noqa: B018  ... without the hidden one
    with rbac.system():
        assert deal.amount == Decimal(1000)  # trusted code reads it


def test_every_row_of_a_load_hides_the_field_and_chunks_follow_the_member_in_force(
        world: SimpleNamespace) -> None:
    """The member in force is asked once per load (its rows are built in one pass),
    never once per statement: a cached statement read by trusted code first still
    hides the field from the member. A ``yield_per`` load asks at each chunk,
    since the caller runs between them."""
    hide(world, {"deals": ["amount"]})
    admin = world.members["admin"].id
    # Unfiltered (no criteria added), so both loads run one compiled, cached statement.
    statement = sa.select(Deal).order_by(Deal.id).execution_options(rbac_bypass=True)
    with rbac.system():  # read by trusted code first
        assert all(deal.amount is not None for deal in db.session.scalars(statement))
    db.session.expunge_all()
    with rbac.as_member(admin):
        deals = db.session.scalars(statement).all()
        assert len(deals) > 1
        for deal in deals:
            with pytest.raises(PermissionDenied, match="deals.amount"):
                deal.amount  # noqa: B018
    db.session.expunge_all()
    with rbac.system():
        rows = db.session.scalars(sa.select(Deal).order_by(Deal.id)
                                  .execution_options(yield_per=1))
        first = next(rows)
        with rbac.as_member(admin):
            second = next(rows)  # built while the member is in force
            with pytest.raises(PermissionDenied, match="deals.amount"):
                second.amount  # noqa: B018
            assert first.amount is not None  # built for trusted code: loaded
        rows.close()


def test_joined_eager_loads_drop_hidden_fields_too(world: SimpleNamespace) -> None:
    task_id = world.tasks["on-member"].id
    hide(world, {"clients": ["name"]})
    admin = world.members["admin"].id
    db.session.expunge_all()
    with rbac.as_member(admin):
        loaded = db.session.scalars(sa.select(Task).where(Task.id == task_id)
                                    .options(joinedload(Task.client))).unique().one()
        with pytest.raises(PermissionDenied, match="clients.name"):
            loaded.client.name  # noqa: B018
        assert str(loaded.client) == f"Client #{loaded.client_id}"


def test_conditions_on_a_hidden_field_agree_between_policy_and_filter(
        world: SimpleNamespace) -> None:
    """A role may test a field hidden from the same member: its own criteria are trusted."""
    role = custom_role(world, "Big deals", [("deals", "view", "all")],
                       condition=[{"field": "amount", "op": "gt", "value": 1002}])
    roles.set_field_rules(rbac, role, {"deals": {"amount": "hidden"}})
    member = world.members["viewer"]
    roles.assign_role(rbac, rbac.access_for(world.members["owner"]), member, role)
    roles.remove_role(rbac, rbac.access_for(world.members["owner"]), member.member_roles[0])
    db.session.commit()
    access = rbac.access_for(member)
    assert access.hidden("deals") == {"amount"}
    db.session.expunge_all()
    with rbac.as_member(access):
        records = {d.title: d for d in db.session.scalars(sa.select(Deal))}  # hidden dropped
    assert allowed_tags(member, "deals", "view", records) == {
        "new deal of junior_rep", "won deal of junior_rep", "new deal of unowned",
        "won deal of unowned"}


def test_edit_form_saves_visible_fields_without_touching_hidden_ones(
        world: SimpleNamespace, login: Any) -> None:
    deal = world.deals["member-new"]
    user = hide(world, {"deals": ["amount", "created_at"]})
    client = login(user, world.ws)
    response = client.post(f"/deals/{deal.id}/edit",
                           data={"title": "Edited", "stage": "new", "close_date": "",
                                 "client_id": "", "owner_id": str(world.users["member"].id)})
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    with rbac.system():
        stored = db.session.get(Deal, deal.id, populate_existing=True)
        assert stored.title == "Edited" and stored.amount == Decimal(1000)
    listing = text_of(client, "/deals/?sort=amount")  # hidden sort key: default order
    assert "Edited" in listing
    text_of(client, f"/clients/{world.clients['member'].id}")  # children sorted by id


def test_client_links_show_labels_when_client_names_are_hidden(world: SimpleNamespace,
                                                              login: Any) -> None:
    with rbac.system():
        world.deals["member-new"].client_id = world.clients["member"].id
        db.session.commit()
    user = hide(world, {"clients": ["name"]})
    client = login(user, world.ws)
    for url in ("/deals/", "/deals/export.csv", "/", f"/deals/{world.deals['member-new'].id}"):
        assert "Client of member" not in text_of(client, url), url
    assert f"Client #{world.clients['member'].id}" in text_of(client, "/deals/")


def test_hidden_link_columns_leave_out_related_lists(world: SimpleNamespace,
                                                     login: Any) -> None:
    """With ``tasks.client_id`` hidden, a client's page does not list its tasks."""
    client_rec = world.clients["member"]
    user = hide(world, {"tasks": ["client_id"]})
    page = text_of(login(user, world.ws), f"/clients/{client_rec.id}")
    assert f"Call {client_rec.name}" not in page
    owner = text_of(login(world.users["owner"], world.ws), f"/clients/{client_rec.id}")
    assert f"Call {client_rec.name}" in owner


def test_plain_entity_selects_still_work(world: SimpleNamespace) -> None:
    hide(world, {"leads": ["name", "created_at"], "clients": ["region"]})
    with rbac.as_member(world.members["admin"]):
        assert db.session.scalars(sa.select(Lead).order_by(Lead.id)).all()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Client))


def test_oversight_pages_answer_nothing_about_a_record_past_a_hidden_field(
        world: SimpleNamespace, login: Any) -> None:
    """Who-could and explain give no record-level answer to a viewer from whom a field is
    hidden: whether the condition ``amount > 1002`` holds would tell the amount's range
    (``test_explain_pages``), so neither the value nor the outcome is shown."""
    role = custom_role(world, "Big deals", [("deals", "view", "all")],
                       condition=[{"field": "amount", "op": "gt", "value": 1002}])
    member = world.members["viewer"]
    roles.assign_role(rbac, rbac.access_for(world.members["owner"]), member, role)
    db.session.commit()
    user = hide(world, {"deals": ["amount"]})
    client = login(user, world.ws)
    deal = world.deals["junior_rep-new"]  # amount 1003: the condition holds
    who = client.get(f"/settings/who-could?resource=deals&record={deal.id}")
    assert who.status_code == 400 and "hidden from you" in who.get_data(as_text=True)
    explain = client.get(f"/settings/explain?member={member.id}&resource=deals"
                         f"&record={deal.id}&action=view")
    assert explain.status_code == 400 and 'aria-label="Decision"' not in explain.text
    assert "1003" not in who.get_data(as_text=True) + explain.get_data(as_text=True)


def test_instances_loaded_by_trusted_code_hide_fields_once_a_member_commits(
        world: SimpleNamespace) -> None:
    """A commit in the member's context expires the instance: the hidden field stays shut."""
    deal_id = world.deals["member-new"].id
    hide(world, {"deals": ["amount"]})
    with rbac.system():
        deal = db.session.get(Deal, deal_id)
        assert deal.amount == Decimal(1000)
    with rbac.as_member(world.members["admin"]):
        db.session.commit()
        with pytest.raises(PermissionDenied, match="deals.amount"):
            deal.amount  # noqa: B018
        assert deal.title == "new deal of member"


@pytest.mark.parametrize("field, op, value", [
    ("amount", "lt", 1002), ("stage", "eq", "won"), ("stage", "in", ["new"]),
    ("title", "ne", "won deal of member"), ("close_date", "is_null", True),
])
def test_policy_and_filter_agree_on_member_loaded_records_with_hidden_condition_fields(
        world: SimpleNamespace, field: str, op: str, value: Any) -> None:
    """Records loaded by the member (hidden field deferred) decide as the filter selects."""
    with rbac.system():
        world.deals["member-won"].close_date = dt.date(2030, 1, 1)
        db.session.commit()
    role = custom_role(world, "Conditional", [("deals", a, "all") for a in ("view", "edit")],
                       condition=[{"field": field, "op": op, "value": value}])
    roles.set_field_rules(rbac, role, {"deals": {field: "hidden"}})
    member = world.members["viewer"]
    owner = rbac.access_for(world.members["owner"])
    roles.assign_role(rbac, owner, member, role)
    roles.remove_role(rbac, owner, member.member_roles[0])
    db.session.commit()
    access = rbac.access_for(member)
    with rbac.system():
        everything = {d.id: d.title for d in db.session.scalars(sa.select(Deal))}
    db.session.expunge_all()
    with rbac.as_member(access):
        loaded = {everything[d.id]: d for d in db.session.scalars(
            sa.select(Deal).execution_options(rbac_bypass=True))}  # every deal, as the member
        with pytest.raises(PermissionDenied):
            getattr(next(iter(loaded.values())), field)
    for action in ("view", "edit"):
        tags = allowed_tags(member, "deals", action, loaded)  # fails on disagreement
        assert 0 < len(tags) < len(loaded), (action, tags)


# -- search -----------------------------------------------------------------------------------

def test_a_search_over_hidden_fields_only_matches_nothing(world: SimpleNamespace,
                                                          login: Any) -> None:
    """Hidden fields are left out of the search; when that leaves none, a query matches
    nothing (never every record), the list offers no search box, and the export of that
    list holds no row."""
    user = hide(world, {"deals": ["title"]}, "finance")
    client = login(user, world.ws)
    plain = text_of(client, "/deals/")
    assert 'name="q"' not in plain  # nothing to search in
    page = text_of(client, "/deals/?q=no-such-deal")
    assert "0 deals match your filters" in page and "<tr data-id=" not in page
    export = client.get("/deals/export.csv?q=no-such-deal")
    assert export.status_code == 200
    assert export.get_data(as_text=True).strip().count("\n") == 0  # the header only
    # A search with a visible field left still looks there.
    leads = login(hide(world, {"leads": ["email", "company"]}, "viewer"), world.ws)
    found = text_of(leads, "/leads/?q=Lead of member2")
    assert 'name="q"' in found and "1 lead match" in found


# -- lists link every row -----------------------------------------------------------------------

def test_lists_link_every_row_when_the_label_field_is_hidden(world: SimpleNamespace,
                                                            login: Any) -> None:
    """The title column carries the link to a record; when its field is hidden the row is
    named by its label ("Deal #12"), still linked, in the lists and a client's child tables."""
    user = hide(world, {"deals": ["title"], "tasks": ["title"], "notes": ["body"]}, "viewer")
    client = login(user, world.ws)
    for resource, records in (("deals", world.deals), ("tasks", world.tasks),
                              ("notes", world.notes)):
        page = text_of(client, f"/{resource}/")
        rows = page.count("<tr data-id=")
        assert rows > 0
        assert page.count(f'class="row-title" href="/{resource}/') == rows, resource
        some = next(iter(records.values()))
        assert f">{type(some).__name__} #" in page
        assert all(getattr(r, "title", None) not in page for r in records.values()
                   if resource != "notes")
    parent = text_of(client, f"/clients/{world.clients['member'].id}")
    for resource, key in (("deals", None), ("tasks", "on-member"), ("notes", "on-member")):
        if key is not None:
            ident = getattr(world, resource)[key].id
            assert f'href="/{resource}/{ident}"' in parent, resource
    assert "sort=title" not in text_of(client, "/deals/")  # no sorting by the hidden title
