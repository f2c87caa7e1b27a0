"""Deleting a record never makes the database unlink records its deleter may not change.

Deals, tasks, notes and invoices point at their client (and invoices at their
deal) with ``ON DELETE SET NULL``. A delete whose ``SET NULL`` would reach a
record the member may not edit, or a record of another workspace, is refused
whole with a 409, on every path (the record's delete, the bulk delete,
Flask-Admin, a flush of Python code); nothing is deleted or unlinked. The 409
counts the linked records of each kind the member may see, and names the
others only as "records you cannot see". Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Client, Deal, Task
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import sharing, workspaces
from crm_rbac_plugin.errors import LinkedRecords
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)


def refusal(response: Any) -> str:
    """The refusal's message, without the page around it (whose menu names every kind)."""
    found = re.search(r"<p>(This \w+ record is linked to [^<]*)</p>", response.get_data(as_text=True))
    assert found is not None, response.get_data(as_text=True)[:300]
    return found.group(1)


def client_of(model: Any, record_id: int) -> Any:
    """``(client_id,)`` of a record (``()`` for a client), None once it is deleted."""
    with rbac.system():
        db.session.expire_all()
        row = db.session.get(model, record_id)
        return None if row is None else tuple(
            [row.client_id] if hasattr(row, "client_id") else [])


@pytest.fixture
def linked(world: SimpleNamespace) -> SimpleNamespace:
    """The Member's client, with a deal of ``member2`` on it that the Member cannot edit."""
    with rbac.system():
        deal = world.deals["member2-won"]
        deal.client_id = world.clients["member"].id
        db.session.commit()
    return SimpleNamespace(client=world.clients["member"].id, deal=deal.id, w=world)


def test_a_delete_that_would_unlink_a_record_one_may_not_edit_is_a_409(
        login: Any, linked: SimpleNamespace) -> None:
    member = login(linked.w.users["member"], linked.w.ws)
    assert member.get(f"/deals/{linked.deal}").status_code == 404  # hidden from the Member
    response = member.post(f"/clients/{linked.client}/delete")
    assert response.status_code == 409
    text = refusal(response)
    assert "records you cannot see" in text and "deals" not in text  # neither counted nor named
    assert client_of(Client, linked.client) is not None
    assert client_of(Deal, linked.deal) == (linked.client,)
    with rbac.as_member(rbac.access_for(linked.w.members["member"])):
        db.session.delete(db.session.get(Client, linked.client))
        with pytest.raises(LinkedRecords, match="records you cannot see"):
            db.session.flush()
    db.session.rollback()
    assert client_of(Client, linked.client) is not None
    # The Owner may edit the deal: the delete goes through and the database unlinks it.
    owner = login(linked.w.users["owner"], linked.w.ws)
    assert owner.post(f"/clients/{linked.client}/delete").status_code == 302
    assert client_of(Client, linked.client) is None
    assert client_of(Deal, linked.deal) == (None,)


def test_a_linked_record_one_sees_but_may_not_edit_is_counted_by_kind(
        login: Any, linked: SimpleNamespace) -> None:
    """Given ``deals.view`` on every deal, the Member sees the deal that blocks the delete:
    the 409 counts it."""
    G = rbac.models.Grant
    with rbac.system():
        grant = db.session.scalar(sa.select(G).where(
            G.role_id == workspaces.role_by_key(rbac, linked.w.ws, "member").id,
            G.resource == "deals", G.action == "view"))
        grant.scope = "all"
        db.session.commit()
    member = login(linked.w.users["member"], linked.w.ws)
    assert member.get(f"/deals/{linked.deal}").status_code == 200
    response = member.post(f"/clients/{linked.client}/delete")
    assert response.status_code == 409
    text = refusal(response)
    assert "1 deals that you may not change" in text and "cannot see" not in text
    assert client_of(Deal, linked.deal) == (linked.client,)


def test_the_bulk_delete_refuses_it_too(login: Any, linked: SimpleNamespace) -> None:
    """The Member, given ``clients.bulk``, bulk deletes their clients: all or none."""
    workspaces.add_grant(rbac, workspaces.role_by_key(rbac, linked.w.ws, "member"),
                         "clients", "bulk", "own")
    db.session.commit()
    member = login(linked.w.users["member"], linked.w.ws)
    response = member.post("/clients/bulk-delete", data={"ids": [str(linked.client)]})
    assert response.status_code == 409
    assert "records you cannot see" in response.get_data(as_text=True)
    assert client_of(Client, linked.client) is not None
    assert client_of(Deal, linked.deal) == (linked.client,)


def test_a_shared_delete_never_unlinks_the_sharers_records(login: Any,
                                                           world: SimpleNamespace) -> None:
    """Beta may delete Acme's north clients; one with Acme's tasks on it stays (409)."""
    agreement = sharing.create_agreement(
        rbac, rbac.access_for(world.members["owner"]), workspace="beta",
        permissions=["clients.view", "clients.delete"])
    db.session.commit()
    dual = db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.workspace_id == world.ws2.id,
        rbac.models.Membership.user_id == world.users["dual"].id))
    with rbac.as_member(rbac.access_for(dual)) as access:
        sharing.accept(rbac, access, agreement)
        db.session.commit()
    target = world.clients["member"].id
    task = world.tasks["on-member"].id
    client = login(world.users["dual"], world.ws2)
    assert client.get(f"/clients/{target}").status_code == 200
    response = client.post(f"/clients/{target}/delete")
    assert response.status_code == 409
    text = refusal(response)
    assert "records you cannot see" in text  # Acme's notes and tasks, never counted
    assert "notes" not in text and "tasks" not in text
    assert client_of(Client, target) is not None
    assert client_of(Task, task) == (target,)
