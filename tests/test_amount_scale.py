"""Amounts the ``Numeric(12, 2)`` column cannot hold exactly are refused at every input.

SQLite keeps ``1000.004`` as given in a ``Numeric(12, 2)`` column while the
ORM reads back ``1000.00``: the list filter (SQL) and ``can()`` (Python)
would then judge different amounts. The demo form refuses such a value at
the field; the plugin's flush check (:func:`crm_rbac_plugin.inputs.check_numbers`)
refuses it for every other writer (Flask-Admin, scripts, the system context);
a condition value with more decimals than the column is refused when saved.
"""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Deal
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import conditions, inputs
from crm_rbac_plugin.errors import InvalidCondition, ValidationError
from tests.rbac_helpers import allowed_tags, custom_role, fast_passwords, give_role, remove_roles  # noqa: F401

UNSTORABLE = ["1000.004", "0.001", "1000.0001", "NaN", "Infinity", "-Infinity", "sNaN",
              "10000000000", "1e12", "1e400", "-1e400", "1e-400"]


def _titles() -> set[str]:
    with rbac.system():
        db.session.expire_all()
        return set(db.session.scalars(sa.select(Deal.title)))


def _amount(deal_id: int) -> Decimal:
    with rbac.system():
        return db.session.scalar(sa.select(Deal.amount).where(Deal.id == deal_id))


@pytest.mark.parametrize("amount", UNSTORABLE)
def test_the_deal_form_refuses_amounts_the_column_cannot_hold(
        world: SimpleNamespace, login: Any, amount: str) -> None:
    admin = login(world.users["admin"], world.ws)
    owner = world.users["admin"].id
    before = _titles()
    response = admin.post("/deals/new", data={"title": "Odd amount", "stage": "new",
                                              "amount": amount, "client_id": "", "owner_id": owner})
    assert response.status_code == 400, response.status_code  # the form again, no 500
    assert "The amount " in response.text  # the field's own message, not a 500
    assert _titles() == before
    deal = world.deals["member-new"]
    old = _amount(deal.id)
    response = admin.post(f"/deals/{deal.id}/edit", data={
        "title": deal.title, "stage": "new", "amount": amount, "client_id": "",
        "owner_id": owner})
    assert response.status_code == 400
    assert _amount(deal.id) == old


def test_the_deal_form_names_the_decimals(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    data = {"stage": "new", "client_id": "", "owner_id": world.users["admin"].id}
    response = admin.post("/deals/new", data={**data, "title": "Odd", "amount": "1000.004"})
    assert "The amount takes at most 2 decimals." in response.text
    response = admin.post("/deals/new", data={**data, "title": "Even amount",
                                              "amount": "1000.40"})
    assert response.status_code == 302
    assert "Even amount" in _titles()


@pytest.mark.parametrize("amount", ["1000.004", "NaN", "12345678901"])
def test_flask_admin_cannot_store_them_either(world: SimpleNamespace, login: Any,
                                              amount: str) -> None:
    admin = login(world.users["admin"], world.ws)
    before = _titles()
    response = admin.post("/admin/deals/new/", data={"title": "Admin odd", "stage": "new",
                                                     "amount": amount})
    assert response.status_code in (200, 302) and response.status_code != 500
    assert _titles() == before
    deal = world.deals["member-new"]
    old = _amount(deal.id)
    admin.post(f"/admin/deals/edit/?id={deal.id}", data={"title": deal.title, "stage": "new",
                                                           "amount": amount})
    assert _amount(deal.id) == old


@pytest.mark.parametrize("amount", [Decimal("1000.004"), 1000.004, Decimal("NaN"),
                                    Decimal("Infinity"), Decimal("1E+10")])
def test_the_flush_check_refuses_any_writer(world: SimpleNamespace, amount: Any) -> None:
    """Scripts and the system context included: the check is on the data, not the member."""
    with rbac.system():
        deal = Deal(workspace_id=world.ws.id, title="Scripted", amount=amount)
        db.session.add(deal)
        with pytest.raises(ValidationError) as refused:
            db.session.flush()
        assert refused.value.field == "amount"
        db.session.rollback()
    with rbac.as_member(rbac.access_for(world.members["admin"])):
        deal = db.session.get(Deal, world.deals["member-new"].id)
        deal.amount = amount
        with pytest.raises(ValidationError):
            db.session.flush()
        db.session.rollback()
    assert "Scripted" not in _titles()


@pytest.mark.parametrize("amount", [Decimal("1000.004"), 1000.004, Decimal("NaN")])
def test_bulk_updates_are_refused_too(world: SimpleNamespace, amount: Any) -> None:
    """An ORM UPDATE bypasses the flush: the query listener checks its literal values."""
    target = world.deals["member-new"].id
    statement = sa.update(Deal).where(Deal.id == target).values(amount=amount)
    for context in (rbac.system(), rbac.as_member(rbac.access_for(world.members["admin"]))):
        with context:
            with pytest.raises(ValidationError) as refused:
                db.session.execute(statement)
            assert refused.value.field == "amount"
            db.session.rollback()
    with rbac.system():
        db.session.execute(sa.update(Deal).where(Deal.id == target)
                           .values(amount=Decimal("1000.40")))
        assert db.session.get(Deal, target).amount == Decimal("1000.40")
        db.session.rollback()


def test_amounts_the_column_holds_pass() -> None:
    col_type = Deal.__table__.c.amount.type
    for value in (Decimal("1000.00"), Decimal("1000.000"), Decimal("1000.4"), 1000, 0.1,
                  Decimal("9999999999.99"), Decimal("-9999999999.99"), None):
        assert inputs.numeric_problem(value, col_type) is None, value


def test_check_and_filter_agree_around_the_cent(world: SimpleNamespace) -> None:
    """A deal saved at the limit of the scale, and conditions either side of it."""
    member = world.members["finance"]
    remove_roles(member)
    with rbac.system():
        deal = Deal(workspace_id=world.ws.id, title="Cent", amount=Decimal("1000.01"))
        db.session.add(deal)
        db.session.commit()
    records = {"cent": deal, **world.deals}
    for value, expected in (("1000.02", True), ("1000.01", False), ("1000", False)):
        role = custom_role(world, f"Under {value}", [("deals", "view", "all")],
                           condition=[{"field": "amount", "op": "lt", "value": value}])
        assignment = give_role(member, role)
        assert ("cent" in allowed_tags(member, "deals", "view", records)) is expected
        db.session.delete(assignment)
        db.session.flush()
    with pytest.raises(InvalidCondition, match="at most 2"):
        conditions.validate(Deal, [{"field": "amount", "op": "lt", "value": "1000.002"}])


@pytest.mark.parametrize("amount", ["1e400", "-1e400", "1e-400"])
def test_the_invoice_form_refuses_exponents_at_the_field(world: SimpleNamespace, login: Any,
                                                         amount: str) -> None:
    owner = login(world.users["owner"], world.ws)
    response = owner.post("/invoices/new", data={
        "number": "INV-EXP", "client_id": str(world.clients["member"].id),
        "owner_id": str(world.users["owner"].id), "status": "draft", "amount": amount})
    assert response.status_code == 400
    assert "The amount " in response.text or "amount" in response.text.lower()
