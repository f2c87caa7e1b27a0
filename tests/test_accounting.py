"""The Accounting module (crm_app.accounting): invoices, gated by plan and role.

``003``: access is the plan *and* the role. Free and Pro leave Accounting
out, so invoices are invisible to everyone there, the Owner included: no
sidebar link, the pages refuse (403 for the lists, 404 for a record), the
JSON API refuses and Flask-Admin hides the panel. The Bookkeeper (Accounting
full, CRM view, Marketing none) is checked against the registry, so a
Marketing resource added later is covered too. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.accounting import PLANS
from crm_app.accounting.models import Invoice
from crm_app.accounting.resources import MODULE
from crm_app.accounting.seed import CRM_MODULES, bookkeeper_role
from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, tokens, workspaces
from tests.rbac_helpers import access_of, fast_passwords, give_role  # noqa: F401


def as_client(app: Any, world: SimpleNamespace, key: str) -> Any:
    client = app.test_client(user=world.users[key])
    with client.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = world.ws.id
    return client


@pytest.fixture
def invoices(world: SimpleNamespace) -> dict[str, Invoice]:
    """One invoice per owner (member, manager, unowned), billing a client and a deal."""
    out = {}
    with rbac.system():
        for key in ("member", "manager", None):
            tag = key or "unowned"
            out[tag] = Invoice(workspace_id=world.ws.id, number=f"INV-{tag}",
                               owner_id=world.users[key].id if key else None,
                               client_id=world.clients[tag].id,
                               deal_id=world.deals[f"{tag}-won"].id, status="sent",
                               amount=Decimal("1200.00"), issued_on=dt.date(2031, 1, 2))
        db.session.add_all(out.values())
        db.session.commit()
    return out


def test_only_enterprise_includes_accounting() -> None:
    assert MODULE not in PLANS["free"] and MODULE not in PLANS["pro"]
    assert PLANS["enterprise"] == "*"
    assert rbac.registry.get("invoices").module == MODULE


@pytest.mark.parametrize("plan", ["free", "pro"])
def test_a_plan_without_accounting_hides_invoices_from_the_owner(
        app: Any, world: SimpleNamespace, invoices: dict[str, Invoice], plan: str) -> None:
    world.ws.plan = plan
    db.session.commit()
    client = as_client(app, world, "owner")
    record = invoices["member"].id
    assert client.get("/invoices/").status_code == 403
    assert client.get("/invoices/new").status_code == 403
    assert client.get("/invoices/export.csv").status_code == 403
    assert client.get(f"/invoices/{record}").status_code == 404
    assert client.get(f"/invoices/{record}/edit").status_code == 404
    assert client.post(f"/invoices/{record}/delete").status_code == 404
    assert client.post("/invoices/new", data={"number": "X", "amount": "1",
                                              "status": "draft"}).status_code == 403
    home = client.get("/").get_data(as_text=True)
    assert 'data-nav="invoices"' not in home and "INV-" not in home
    admin_home = client.get("/admin/").get_data(as_text=True)
    assert "/admin/invoices" not in admin_home
    assert client.get("/admin/invoices/").status_code in (403, 404)
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "accounting test")
    db.session.commit()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert api.get("/api/v1/records/invoices", headers=headers).status_code == 403
    assert api.get(f"/api/v1/records/invoices/{record}", headers=headers).status_code in (403,
                                                                                         404)
    with rbac.as_member(access_of(world.members["owner"])):
        assert db.session.scalars(sa.select(Invoice)).all() == []
        assert db.session.scalar(sa.select(sa.func.count(Invoice.id))) == 0


def test_enterprise_shows_invoices_to_the_owner_everywhere(
        app: Any, world: SimpleNamespace, invoices: dict[str, Invoice]) -> None:
    assert world.ws.plan == "enterprise"
    client = as_client(app, world, "owner")
    listing = client.get("/invoices/").get_data(as_text=True)
    assert all(f"INV-{tag}" in listing for tag in invoices)
    assert 'data-nav="invoices"' in client.get("/").get_data(as_text=True)
    assert client.get(f"/invoices/{invoices['member'].id}").status_code == 200
    assert client.get("/admin/invoices/").status_code == 200


#: role -> the invoices (by owner tag) it views, and whether it may create and delete.
ROLE_TABLE = {
    "owner": ({"member", "manager", "unowned"}, True, True),
    "admin": ({"member", "manager", "unowned"}, True, True),
    "finance": ({"member", "manager", "unowned"}, True, True),
    "viewer": ({"member", "manager", "unowned"}, False, False),
    "manager": ({"member", "manager", "unowned"}, True, True),
    "junior_rep": (set(), False, False),
    "client_success": (set(), False, False),
    # 003: a Member has no Accounting, though their "*" grants reach every other module.
    "member": (set(), False, False),
}


@pytest.mark.parametrize("key", sorted(ROLE_TABLE))
def test_invoice_access_per_role(world: SimpleNamespace, invoices: dict[str, Invoice],
                                 key: str) -> None:
    views, creates, deletes = ROLE_TABLE[key]
    access = access_of(world.members[key])
    by_policy = {t for t, inv in invoices.items() if rbac.can("view", "invoices", inv,
                                                               access=access)}
    with rbac.as_member(access):
        ids = set(db.session.scalars(sa.select(Invoice.id)))
    assert by_policy == {t for t, inv in invoices.items() if inv.id in ids} == views
    assert rbac.can("create", "invoices", access=access) is creates
    assert rbac.can("delete", "invoices", access=access) is deletes


# -- the Bookkeeper -----------------------------------------------------------------------------

@pytest.fixture
def bookkeeper(world: SimpleNamespace) -> Any:
    role = bookkeeper_role(world.ws)
    membership = workspaces.add_member(rbac, world.ws, world.users["outsider"], [])
    give_role(membership, role)
    db.session.commit()
    return membership


def test_bookkeeper_has_accounting_full_crm_view_and_nothing_else(
        world: SimpleNamespace, bookkeeper: Any) -> None:
    access = access_of(bookkeeper)
    checked = 0
    for res in rbac.registry:
        for action in res.actions:
            allowed = rbac.can(action, res.name, access=access)
            if res.module == MODULE:
                expected = True
            elif res.module in CRM_MODULES and res.model is not None:
                expected = action == "view"
            else:  # marketing, reports, administration, any other module: none
                expected = False
            assert allowed is expected, (res.name, action)
            checked += 1
    assert checked > 40


def test_bookkeeper_pages(app: Any, world: SimpleNamespace, bookkeeper: Any,
                          invoices: dict[str, Invoice]) -> None:
    client = app.test_client(user=world.users["outsider"])
    with client.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = world.ws.id
    assert client.get("/leads/").status_code == 200
    assert client.get("/leads/new").status_code == 403
    assert client.get(f"/deals/{world.deals['member-won'].id}/edit").status_code == 403
    assert client.get("/reports/").status_code == 403
    assert client.get("/invoices/export.csv").status_code == 200
    response = client.post("/invoices/new", data={
        "number": "INV-BK-1", "client_id": str(world.clients["member"].id),
        "owner_id": str(world.users["outsider"].id),
        "deal_id": str(world.deals["member-won"].id), "status": "draft", "amount": "450.50"})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    with rbac.system():
        made = db.session.scalars(sa.select(Invoice).where(Invoice.number == "INV-BK-1")).one()
        assert (made.client_id, made.deal_id, made.amount, made.workspace_id) == (
            world.clients["member"].id, world.deals["member-won"].id, Decimal("450.50"),
            world.ws.id)
    assert client.post(f"/invoices/{invoices['member'].id}/delete").status_code == 302


def test_an_invoice_cannot_link_a_deal_the_member_cannot_see(
        app: Any, world: SimpleNamespace) -> None:
    """The junior rep's own invoices: a deal outside their view is not a valid choice."""
    role = rbac.models.Role(workspace=world.ws, name="Own invoices")
    for action in ("view", "create"):
        workspaces.add_grant(rbac, role, "invoices", action, "own")
    db.session.add(role)
    db.session.flush()
    give_role(world.members["junior_rep"], role)
    db.session.commit()
    client = as_client(app, world, "junior_rep")
    form = client.get("/invoices/new").get_data(as_text=True)
    assert world.deals["member-won"].title not in form
    response = client.post("/invoices/new", data={
        "number": "INV-X", "deal_id": str(world.deals["member-won"].id), "status": "draft",
        "amount": "1"})
    assert response.status_code == 400 and "Not a valid choice" in response.get_data(as_text=True)
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count(Invoice.id))) == 0


@pytest.mark.parametrize("amount", ["1000.004", "NaN", "-5", "1e12"])
def test_a_bad_amount_is_refused_at_its_field(app: Any, world: SimpleNamespace,
                                              amount: str) -> None:
    client = as_client(app, world, "finance")
    response = client.post("/invoices/new", data={"number": "INV-Y", "status": "draft",
                                                  "amount": amount})
    assert response.status_code == 400
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count(Invoice.id))) == 0


def test_reassigning_everything_leaves_out_a_module_the_plan_excludes(
        app: Any, world: SimpleNamespace, invoices: dict[str, Invoice]) -> None:
    """On Pro the Owner cannot manage invoices: "reassign all" moves the rest, not those."""
    world.ws.plan = "pro"
    db.session.commit()
    client = as_client(app, world, "owner")
    member = world.members["member"].id
    response = client.post(f"/settings/members/{member}/reassign", data={
        "to_user_id": str(world.users["member2"].id), "step": "apply"})
    assert response.status_code == 302
    with rbac.system():
        assert db.session.get(Invoice, invoices["member"].id).owner_id == world.users["member"].id
        from crm_app.models import Lead
        assert db.session.get(Lead, world.leads["member"].id).owner_id == world.users["member2"].id


@pytest.fixture
def draft(world: SimpleNamespace) -> Invoice:
    """A draft invoice of the member, in the Manager's team."""
    with rbac.system():
        invoice = Invoice(workspace_id=world.ws.id, number="INV-draft", status="draft",
                          owner_id=world.users["member"].id, amount=Decimal("10.00"))
        db.session.add(invoice)
        db.session.commit()
    return invoice


def stored_status(ident: int) -> str:
    db.session.expire_all()
    with rbac.system():
        return str(db.session.get(Invoice, ident).status)


@pytest.mark.parametrize("status", ["sent", "void"])
def test_sending_or_voiding_an_invoice_needs_manage(app: Any, world: SimpleNamespace,
                                                    draft: Invoice, status: str) -> None:
    """003: Manage covers "sensitive actions like sending an invoice ... or voiding a bill".
    The Manager edits the team's invoices (no manage): the form, Flask-Admin and a plain
    flush refuse the move, and a new invoice cannot start sent or void either."""
    manager = as_client(app, world, "manager")
    form = {"number": "INV-draft", "status": status, "amount": "10.00"}
    refused = manager.post(f"/invoices/{draft.id}/edit", data=form)
    assert refused.status_code == 403
    assert f"setting status {status} needs the manage permission" in refused.text
    assert stored_status(draft.id) == "draft"
    admin = manager.post(f"/admin/invoices/edit/?id={draft.id}", data=form)
    assert admin.status_code == 403 and "needs the manage permission" in admin.text
    assert stored_status(draft.id) == "draft"
    created = manager.post("/invoices/new", data={**form, "number": "INV-new"})
    assert created.status_code == 403
    with rbac.system():
        assert db.session.scalar(sa.select(Invoice).where(Invoice.number == "INV-new")) is None
    with rbac.as_member(access_of(world.members["manager"])):
        invoice = db.session.get(Invoice, draft.id)
        invoice.status = status
        with pytest.raises(PermissionDenied, match="needs the manage permission"):
            db.session.commit()
        db.session.rollback()
    assert stored_status(draft.id) == "draft"
    finance = as_client(app, world, "finance")  # invoices "*": manage included
    assert finance.post(f"/invoices/{draft.id}/edit", data=form).status_code == 302
    assert stored_status(draft.id) == status


def test_other_invoice_edits_need_no_manage(app: Any, world: SimpleNamespace, draft: Invoice,
                                            invoices: dict[str, Invoice]) -> None:
    """Paying an invoice, or editing one already sent while it stays sent, is an edit."""
    manager = as_client(app, world, "manager")
    paid = manager.post(f"/invoices/{draft.id}/edit", data={
        "number": "INV-draft", "status": "paid", "amount": "10.00"})
    assert paid.status_code == 302 and stored_status(draft.id) == "paid"
    sent = invoices["member"]
    kept = manager.post(f"/admin/invoices/edit/?id={sent.id}", data={
        "number": sent.number, "status": "sent", "amount": "99.00"})
    assert kept.status_code == 302 and stored_status(sent.id) == "sent"


def test_a_deal_the_reader_cannot_see_reads_restricted_on_pages_and_in_the_csv(
        app: Any, world: SimpleNamespace, invoices: dict[str, Invoice]) -> None:
    """Finance sees closed deals only: an invoice on an open deal is tied to a deal all the
    same, so the page and the export say "Restricted" there (a blank or "—" reads as "no
    deal"); a deal Finance sees is linked; an invoice without a deal stays blank."""
    with rbac.system():
        on_open = Invoice(workspace_id=world.ws.id, number="INV-OPEN-DEAL",
                          owner_id=world.users["member"].id, deal_id=world.deals["member-new"].id,
                          status="draft", amount=Decimal("1"))
        no_deal = Invoice(workspace_id=world.ws.id, number="INV-NO-DEAL",
                          owner_id=world.users["member"].id, status="draft", amount=Decimal("1"))
        db.session.add_all([on_open, no_deal])
        db.session.commit()
    client = as_client(app, world, "finance")

    def deal_cell(invoice: Invoice) -> str:
        page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
        return page.split("<dt>Deal</dt>", 1)[1].split("</dd>", 1)[0]

    assert "Restricted" in deal_cell(on_open)
    assert world.deals["member-new"].title not in deal_cell(on_open)
    won = world.deals["member-won"]
    assert f'href="/deals/{won.id}"' in deal_cell(invoices["member"])
    assert "Restricted" not in deal_cell(no_deal)
    listing = client.get("/invoices/export.csv")
    assert listing.status_code == 200
    rows = {row["Invoice"]: row for row in csv.DictReader(io.StringIO(listing.get_data(as_text=True)))}
    assert rows["INV-OPEN-DEAL"]["Deal"] == "Restricted"
    assert rows["INV-member"]["Deal"] == won.title
    assert rows["INV-NO-DEAL"]["Deal"] == ""
