"""The selects of record forms offer only what the member may pick.

* Client and deal: records of the current workspace the member sees. A record
  another workspace shares is visible but never offered (a record cannot
  point at another workspace's), and posting its id is refused at the field,
  nothing written.
* Owner: the members the member may give a new record to (their team for a
  team scope); another is refused at the field, whose error names the rule.

Runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.accounting.models import Invoice
from crm_app.extensions import db
from crm_app.models import Note, Task
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import sharing
from tests.rbac_helpers import custom_role, fast_passwords, give_role  # noqa: F401


def option_values(page: str, field: str) -> set[str]:
    """The values of the options of select ``field`` on ``page``."""
    select = re.search(rf'<select[^>]*name="{field}".*?</select>', page, re.S)
    assert select is not None, f"no {field} select"
    return set(re.findall(r'<option[^>]*value="([^"]*)"', select.group(0)))


def agree(w: SimpleNamespace, permissions: list[Any]) -> None:
    """Acme's Owner shares ``permissions`` with Beta, whose Owner (``dual``) accepts."""
    agreement = sharing.create_agreement(rbac, rbac.access_for(w.members["owner"]),
                                         workspace="beta", permissions=permissions)
    db.session.commit()
    dual = db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.workspace_id == w.ws2.id,
        rbac.models.Membership.user_id == w.users["dual"].id))
    with rbac.as_member(rbac.access_for(dual)) as access:
        sharing.accept(rbac, access, agreement)
        db.session.commit()


def count(model: Any) -> int:
    with rbac.system():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0


@pytest.mark.parametrize("resource, model, data", [
    ("tasks", Task, {"title": "Beta follow-up", "status": "open"}),
    ("notes", Note, {"body": "Beta note"}),
])
def test_a_shared_client_is_never_offered_nor_taken(world: SimpleNamespace, login: Any,
                                                    resource: str, model: Any,
                                                    data: dict[str, str]) -> None:
    agree(world, ["clients.view"])
    shared = world.clients["member"].id
    beta_client = world.other["client"].id
    client = login(world.users["dual"], world.ws2)
    assert client.get(f"/clients/{shared}").status_code == 200  # visible: shared
    page = client.get(f"/{resource}/new").get_data(as_text=True)
    assert option_values(page, "client_id") == {"", str(beta_client)}
    before = count(model)
    owner = str(world.users["dual"].id)
    response = client.post(f"/{resource}/new", data={**data, "client_id": str(shared),
                                                     "owner_id": owner})
    assert response.status_code == 400, response.status_code
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert count(model) == before
    response = client.post(f"/{resource}/new", data={**data, "client_id": str(beta_client),
                                                     "owner_id": owner})
    assert response.status_code == 302
    assert count(model) == before + 1


def test_a_shared_deal_is_never_offered_on_an_invoice(world: SimpleNamespace,
                                                      login: Any) -> None:
    agree(world, ["deals.view"])
    shared = world.deals["member-won"].id
    client = login(world.users["dual"], world.ws2)
    assert client.get(f"/deals/{shared}").status_code == 200
    page = client.get("/invoices/new").get_data(as_text=True)
    assert option_values(page, "deal_id") == {""}
    before = count(Invoice)
    response = client.post("/invoices/new", data={
        "number": "B-1", "deal_id": str(shared), "status": "draft", "amount": "5",
        "owner_id": str(world.users["dual"].id)})
    assert response.status_code == 400
    assert count(Invoice) == before


def test_the_owner_select_offers_the_members_one_may_assign_to(world: SimpleNamespace,
                                                                login: Any) -> None:
    """A team-scoped Task Lead (the Manager, who manages the Member) may give a new task to
    themselves and their team only; another member is a 400 naming the rule."""
    lead = custom_role(world, "Task Lead", [("tasks", a, "team")
                                            for a in ("view", "create", "edit", "manage")])
    give_role(world.members["manager"], lead)
    db.session.commit()
    client = login(world.users["manager"], world.ws)
    page = client.get("/tasks/new").get_data(as_text=True)
    team = {str(world.users["manager"].id), str(world.users["member"].id)}
    assert option_values(page, "owner_id") == team
    before = count(Task)
    response = client.post("/tasks/new", data={"title": "Probe", "status": "open",
                                               "owner_id": str(world.users["owner"].id)})
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "only to members within your scope" in text and "Task Lead" in text
    assert count(Task) == before
    response = client.post("/tasks/new", data={"title": "Probe", "status": "open",
                                               "owner_id": str(world.users["member"].id)})
    assert response.status_code == 302
    assert count(Task) == before + 1
    owner_page = login(world.users["owner"], world.ws).get("/tasks/new").get_data(as_text=True)
    assert str(world.users["viewer"].id) in option_values(owner_page, "owner_id")


def test_an_invoice_bills_its_deals_client(world: SimpleNamespace, login: Any) -> None:
    """A deal of another client is refused at ``deal_id``; the deal's own client saves."""
    with rbac.system():
        for tag in ("member", "member2"):
            world.deals[f"{tag}-won"].client_id = world.clients[tag].id
        db.session.commit()
    client = login(world.users["owner"], world.ws)
    form = {"number": "PROBE-1", "status": "draft", "amount": "10",
            "owner_id": str(world.users["owner"].id),
            "client_id": str(world.clients["member"].id)}
    before = count(Invoice)
    response = client.post("/invoices/new",
                           data={**form, "deal_id": str(world.deals["member2-won"].id)})
    assert response.status_code == 400
    assert "This deal belongs to another client" in response.get_data(as_text=True)
    assert count(Invoice) == before
    response = client.post("/invoices/new",
                           data={**form, "deal_id": str(world.deals["member-won"].id)})
    assert response.status_code == 302
    assert count(Invoice) == before + 1
