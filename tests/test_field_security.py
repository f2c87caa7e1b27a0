"""Field-level security: hidden fields vanish everywhere, read-only ones cannot be written."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Deal
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, roles, tokens, workspaces


def _role(world: SimpleNamespace, key: str) -> Any:
    return workspaces.role_by_key(rbac, world.ws, key)


@pytest.fixture
def restricted(world: SimpleNamespace) -> SimpleNamespace:
    """Manager: deal amounts hidden, stage read-only. Viewer: amounts hidden."""
    roles.set_field_rules(rbac, _role(world, "manager"),
                          {"deals": {"amount": "hidden", "stage": "readonly"}})
    roles.set_field_rules(rbac, _role(world, "viewer"), {"deals": {"amount": "hidden"}})
    db.session.commit()
    return world


def access(world: SimpleNamespace, who: str) -> Any:
    return rbac.access_for(world.members[who])


def test_rules_resolve_per_member(restricted: SimpleNamespace) -> None:
    manager = access(restricted, "manager")
    assert manager.hidden("deals") == {"amount"}
    assert manager.unwritable("deals") == {"amount", "stage"}
    assert access(restricted, "member").hidden("deals") == frozenset()
    assert access(restricted, "owner").unwritable("deals") == frozenset()


def test_stacked_roles_most_permissive_wins(restricted: SimpleNamespace) -> None:
    w = restricted
    # A second role that also grants deals and hides nothing: the amount shows.
    roles.assign_role(rbac, access(w, "owner"), w.members["viewer"], _role(w, "member"))
    db.session.commit()
    assert access(w, "viewer").hidden("deals") == frozenset()
    # A role that grants nothing on deals has no say: Junior Rep + Viewer keeps it hidden.
    roles.assign_role(rbac, access(w, "owner"), w.members["junior_rep"], _role(w, "viewer"))
    db.session.commit()
    assert access(w, "junior_rep").hidden("deals") == {"amount"}


def test_parent_role_rules_are_inherited(restricted: SimpleNamespace) -> None:
    w = restricted
    child = roles.create_role(rbac, access(w, "owner"), name="Senior viewer",
                              parent=_role(w, "viewer"))
    roles.assign_role(rbac, access(w, "owner"), w.members["finance"], child)
    roles.remove_role(rbac, access(w, "owner"), w.members["finance"].member_roles[0])
    db.session.commit()
    assert access(w, "finance").hidden("deals") == {"amount"}


@pytest.mark.parametrize("field, value", [("amount", 1), ("stage", "lost")])
def test_writes_to_restricted_fields_are_refused_at_flush(restricted: SimpleNamespace,
                                                          field: str, value: Any) -> None:
    deal = restricted.deals["member-new"]  # the manager's team: editable
    before = getattr(deal, field)
    with rbac.as_member(restricted.members["manager"]):
        deal = db.session.get(Deal, deal.id)
        setattr(deal, field, value)
        with pytest.raises(PermissionDenied, match="read-only for you"):
            db.session.flush()
        db.session.rollback()
        with pytest.raises(PermissionDenied):
            db.session.add(Deal(title="New", **{field: value}))
            db.session.flush()
        db.session.rollback()
        with pytest.raises(PermissionDenied):
            db.session.execute(sa.update(Deal).values({field: value}))
        db.session.rollback()
        # Other fields stay writable.
        deal = db.session.get(Deal, restricted.deals["member-new"].id)
        deal.title = "Renamed"
        db.session.commit()
    with rbac.system():
        stored = db.session.get(Deal, deal.id, populate_existing=True)
        assert getattr(stored, field) == before and stored.title == "Renamed"


def test_hidden_fields_vanish_from_pages_export_and_api(restricted: SimpleNamespace,
                                                       login: Any) -> None:
    w = restricted
    deal = w.deals["member-won"]
    manager = login(w.users["manager"], w.ws)
    owner = login(w.users["owner"], w.ws)

    assert ">Amount<" in owner.get("/deals/").text
    listing = manager.get("/deals/")
    assert listing.status_code == 200 and ">Amount<" not in listing.text
    assert "Amount" not in manager.get(f"/deals/{deal.id}").text
    assert "Amount" in owner.get(f"/deals/{deal.id}").text
    form = manager.get(f"/deals/{deal.id}/edit").text
    assert 'name="amount"' not in form and 'name="stage"' not in form
    assert 'name="title"' in form
    export = manager.get("/deals/export.csv")
    assert export.status_code == 200
    assert "Amount" not in export.text.splitlines()[0]
    assert "Amount" in owner.get("/deals/export.csv").text.splitlines()[0]
    # Sorting by a hidden column falls back to the default order, not an oracle.
    assert manager.get("/deals/?sort=amount").status_code == 200
    # The client page lists its deals without the amount either.
    with rbac.system():
        db.session.get(Deal, deal.id).client_id = w.clients["member"].id
        db.session.commit()
    client_page = manager.get(f"/clients/{w.clients['member'].id}").text
    assert deal.title in client_page
    assert "1,000" not in client_page and "1000" not in client_page
    assert "1,000" in owner.get(f"/clients/{w.clients['member'].id}").text

    plaintext = tokens.create_token(rbac, w.members["manager"], "fls")[1]
    db.session.commit()
    client = manager.application.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    items = client.get("/api/v1/records/deals", headers=headers).get_json()["items"]
    assert items and all("amount" not in item and "title" in item for item in items)
    one = client.get(f"/api/v1/records/deals/{deal.id}", headers=headers).get_json()
    assert "amount" not in one and one["title"] == deal.title


def test_records_api_is_filtered_and_404s_outside_view(world: SimpleNamespace, login: Any) -> None:
    plaintext = tokens.create_token(rbac, world.members["junior_rep"], "records")[1]
    db.session.commit()
    client = login(world.users["junior_rep"], world.ws).application.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    names = {i["name"] for i in client.get("/api/v1/records/leads", headers=headers)
             .get_json()["items"]}
    assert names == {"Lead of junior_rep", "Lead of unowned"}
    for other in (world.leads["member"], world.other["lead"]):
        response = client.get(f"/api/v1/records/leads/{other.id}", headers=headers)
        assert response.status_code == 404 and "name" not in response.get_json()
    assert client.get("/api/v1/records/deals", headers=headers).status_code == 403
    assert client.get("/api/v1/records/spaceships", headers=headers).status_code == 404
    bad = client.get("/api/v1/records/leads?per_page=1000", headers=headers)
    assert bad.status_code == 400 and bad.get_json()["field"] == "per_page"


@pytest.mark.parametrize("mode", ["readonly", "hidden"])
def test_a_required_field_the_member_may_not_write_refuses_the_create_in_words(
        world: SimpleNamespace, login: Any, mode: str) -> None:
    """A client's name is required. With it read-only (or hidden) for the Member, the
    create form has no name field: the create is refused naming the field, through the
    page (403 on the form) and Flask-Admin (a message, never the database's error with
    its SQL and parameters), and nothing is stored."""
    from crm_app.models import Client

    roles.set_field_rules(rbac, _role(world, "member"), {"clients": {"name": mode}})
    db.session.commit()
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Client))
    member = login(world.users["member"], world.ws)
    page = member.post("/clients/new", data={"email": "a@b.test", "region": "north"})
    assert page.status_code == 403, page.status_code
    assert "name must be filled in and is read-only for you" in page.text
    admin = member.post("/admin/clients/new/", data={"email": "a@b.test", "region": "north"},
                        follow_redirects=True)
    assert admin.status_code == 403  # the guard's refusal, in words, as every panel answers it
    assert "must be filled in and is read-only for you" in admin.text
    assert "INSERT INTO" not in admin.text and "IntegrityError" not in admin.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)) == before


def test_flask_admin_tells_an_integrity_error_without_its_sql(app: Any) -> None:
    """Flask-Admin's own message is the driver's: the statement, its parameters and the
    schema's names, shown to any member whose save the database refused."""
    from flask import get_flashed_messages
    from sqlalchemy.exc import IntegrityError

    from crm_rbac_plugin.admin import RBACModelView

    view = next(v for v in app.extensions["admin"][0]._views if isinstance(v, RBACModelView))
    error = IntegrityError("INSERT INTO client (name) VALUES (?)", ("secret",),
                           Exception("NOT NULL constraint failed: client.name"))
    with app.test_request_context():
        assert view.handle_view_exception(error) is True
        flashed = get_flashed_messages(with_categories=True)
    assert flashed == [("error", "This record could not be saved: a required value is "
                                 "missing, or a value is already used by another record.")]
