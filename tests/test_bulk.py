"""Bulk operations: a permission of their own, deniable per role and per record (conditions,
agreements), all or nothing, in the demo's bulk delete and Flask-Admin's mass delete."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.exceptions import NotFound

from crm_app.extensions import db
from crm_app.models import Client, Lead, Note, Task
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, bulk, roles, sharing


def lead_ids() -> set[int]:
    with rbac.system():
        return set(db.session.scalars(sa.select(Lead.id)))


def test_admin_bulk_deletes_selected_records(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["admin"], world.ws)
    page = client.get("/leads/").text
    assert 'data-action="bulk-delete"' in page and 'name="ids"' in page
    chosen = {world.leads["member"].id, world.leads["member2"].id}
    response = client.post("/leads/bulk-delete", data={"ids": sorted(chosen)})
    assert response.status_code == 302
    assert not chosen & lead_ids()


def test_bulk_is_all_or_nothing(world: SimpleNamespace, login: Any) -> None:
    before = lead_ids()
    client = login(world.users["admin"], world.ws)
    # One id of another workspace among visible ones: nothing is deleted.
    response = client.post("/leads/bulk-delete",
                           data={"ids": [world.leads["member"].id, world.other["lead"].id]})
    assert response.status_code == 404
    assert lead_ids() == before
    assert client.post("/leads/bulk-delete", data={}).status_code == 400
    # An id that cannot be one names no record: it refuses the selection, not drops out.
    for junk in ("abc", "", "1.5", "9" * 40):
        response = client.post("/leads/bulk-delete",
                               data={"ids": [str(world.leads["member"].id), junk]})
        assert response.status_code in (400, 404), junk  # 400: past the key type's range
        assert lead_ids() == before


def test_bulk_needs_its_own_permission(world: SimpleNamespace, login: Any) -> None:
    before = lead_ids()
    # Member may delete their own leads one by one, but has no bulk permission.
    member = login(world.users["member"], world.ws)
    assert 'name="ids"' not in member.get("/leads/").text
    response = member.post("/leads/bulk-delete", data={"ids": [world.leads["member"].id]})
    assert response.status_code == 403
    assert lead_ids() == before


def test_an_explicit_deny_of_bulk_wins(world: SimpleNamespace, login: Any) -> None:
    before = lead_ids()
    records_manager(world, "admin")
    owner = rbac.access_for(world.members["owner"])
    no_bulk = roles.create_role(rbac, owner, name="No bulk", grants=roles.parse_grants(
        rbac, [{"resource": "leads", "action": "bulk", "effect": "deny"}]))
    roles.assign_role(rbac, owner, world.members["admin"], no_bulk)
    db.session.commit()
    client = login(world.users["admin"], world.ws)
    assert 'data-action="bulk-delete"' not in client.get("/leads/").text
    response = client.post("/leads/bulk-delete", data={"ids": [world.leads["member"].id]})
    assert response.status_code == 403
    assert lead_ids() == before
    # Per-record delete is untouched by the bulk deny.
    assert client.post(f"/leads/{world.leads['member'].id}/delete").status_code == 302


# -- bulk and the per-record action, decided on every selected record ----------------------

NORTH = [{"field": "region", "value": "north"}]


def client_ids() -> set[int]:
    with rbac.system():
        db.session.expire_all()
        return set(db.session.scalars(sa.select(Client.id)))


def checkboxes(page: str) -> set[int]:
    """Ids of the list rows that offer the bulk selection checkbox."""
    return {int(i) for i in re.findall(r'<input type="checkbox" name="ids" value="(\d+)"', page)}


def records_manager(world: SimpleNamespace, member: str) -> None:
    """Make ``member`` hold a custom role with every action on leads and clients in place
    of their roles. An Admin always has full access (003), so a deny is given to
    someone as strong on records who is not an Admin."""
    owner = rbac.access_for(world.members["owner"])
    membership = world.members[member]
    held = list(membership.member_roles)
    role = roles.create_role(rbac, owner, name="Records manager", grants=roles.parse_grants(
        rbac, [{"resource": res, "action": act}
               for res in ("leads", "clients") for act in rbac.registry.get(res).actions]))
    roles.assign_role(rbac, owner, membership, role)
    for assignment in held:
        roles.remove_role(rbac, owner, assignment)
    db.session.commit()


def deny_bulk_on_north(world: SimpleNamespace, member: str = "admin") -> None:
    """Give ``member`` a role denying ``clients.bulk`` where ``region = north``."""
    owner = rbac.access_for(world.members["owner"])
    if member == "admin":
        records_manager(world, member)
    role = roles.create_role(rbac, owner, name="No bulk in the north", grants=roles.parse_grants(
        rbac, [{"resource": "clients", "action": "bulk", "effect": "deny",
                "condition": NORTH}]))
    roles.assign_role(rbac, owner, world.members[member], role)
    db.session.commit()


def unlink_children(client_ids: set[int]) -> None:
    """Detach the world's tasks and notes (``member2``'s) from these clients, in trusted code.

    A delete that would unlink records its deleter may not edit is refused (409,
    :mod:`crm_rbac_plugin.dependants`); these tests are about the bulk rules.
    """
    with rbac.system():
        for model in (Task, Note):
            for row in db.session.scalars(sa.select(model).where(
                    model.client_id.in_(client_ids))):
                row.client_id = None
        db.session.commit()


def share_view_and_delete(world: SimpleNamespace) -> None:
    """Acme shares clients.view and clients.delete (not bulk) with Beta, which accepts."""
    agreement = sharing.create_agreement(rbac, rbac.access_for(world.members["owner"]),
                                         workspace="beta",
                                         permissions=["clients.view", "clients.delete"])
    db.session.commit()
    m = rbac.models
    dual = db.session.scalar(sa.select(m.Membership).where(
        m.Membership.workspace_id == world.ws2.id,
        m.Membership.user_id == world.users["dual"].id))
    with rbac.as_member(rbac.access_for(dual)) as access:
        sharing.accept(rbac, access, agreement)
        db.session.commit()


def mass_delete(client: Any, ids: Any) -> Any:
    """Flask-Admin's mass-delete action on the clients panel."""
    return client.post("/admin/clients/action/",
                       data={"action": "delete", "rowid": [str(i) for i in ids]})


def bulk_delete(client: Any, ids: Any) -> Any:
    return client.post("/clients/bulk-delete", data={"ids": sorted(ids)})


@pytest.mark.parametrize("send", [bulk_delete, mass_delete], ids=["demo", "admin"])
def test_an_agreement_without_bulk_refuses_bulk_deletes(world: SimpleNamespace, login: Any,
                                                        send: Any) -> None:
    share_view_and_delete(world)
    before = client_ids()
    acme = world.clients["member"].id
    beta_own = world.other["client"].id
    dual = login(world.users["dual"], world.ws2)
    # The shared client is listed and deletable one by one, but not selectable in bulk.
    page = dual.get("/clients/").text
    assert f'data-id="{acme}"' in page and f'data-id="{beta_own}"' in page
    assert checkboxes(page) == {beta_own}
    for ids in ([acme], [beta_own, acme]):
        assert send(dual, ids).status_code == 403
        assert client_ids() == before
    # Beta's own client goes; the per-record delete of the shared one is still allowed,
    # once no Acme record hangs on it (else the database would unlink Acme's tasks: 409).
    assert send(dual, [beta_own]).status_code == 302
    assert client_ids() == before - {beta_own}
    assert dual.post(f"/clients/{acme}/delete").status_code == 409
    unlink_children({acme})
    assert dual.post(f"/clients/{acme}/delete").status_code == 302
    assert client_ids() == before - {beta_own, acme}


@pytest.mark.parametrize("send", [bulk_delete, mass_delete], ids=["demo", "admin"])
def test_a_conditional_deny_of_bulk_holds_for_every_selected_record(
        world: SimpleNamespace, login: Any, send: Any) -> None:
    deny_bulk_on_north(world)
    before = client_ids()
    north = {c.id for c in world.clients.values() if c.region == "north"}
    south = {c.id for c in world.clients.values() if c.region == "south"}
    assert north and south
    admin = login(world.users["admin"], world.ws)
    assert checkboxes(admin.get("/clients/").text) == south
    for ids in ([min(north)], [*south, min(north)], north):
        assert send(admin, ids).status_code == 403
        assert client_ids() == before
    # The refusal names the record and is in the audit trail.
    A = rbac.models.AuditEvent
    with rbac.system():
        denied = db.session.scalars(sa.select(A).where(A.action == "access.denied",
                                                       A.resource == "clients")).all()
    assert {(e.detail["action"], e.detail["record_id"]) for e in denied} >= {
        ("bulk", min(north))}
    # An id the member cannot see among allowed ones: 404, nothing deleted.
    assert send(admin, [*south, world.other["client"].id]).status_code == 404
    assert client_ids() == before
    # The south clients are allowed: all of them go at once (once the tasks and notes of
    # member2, which the records manager may not edit, no longer hang on them).
    unlink_children(south)
    assert send(admin, south).status_code == 302
    assert client_ids() == before - south


@pytest.mark.parametrize("send", [bulk_delete, mass_delete], ids=["demo", "admin"])
def test_bulk_delete_of_allowed_records_deletes_them_all(world: SimpleNamespace, login: Any,
                                                          send: Any) -> None:
    before = client_ids()
    mine = {c.id for c in world.clients.values()}
    admin = login(world.users["admin"], world.ws)
    assert checkboxes(admin.get("/clients/").text) == mine
    assert send(admin, mine).status_code == 302
    assert client_ids() == before - mine


def test_the_helper_refuses_outside_bulk_and_in_the_system_context(world: SimpleNamespace,
                                                                   app: Any) -> None:
    deny_bulk_on_north(world)
    north = next(c for c in world.clients.values() if c.region == "north")
    south = next(c for c in world.clients.values() if c.region == "south")
    with rbac.as_member(world.members["admin"]):
        assert bulk.allowed(rbac, "clients", south) and not bulk.allowed(rbac, "clients", north)
        assert [r.id for r in bulk.select(rbac, "clients", [str(south.id)])] == [south.id]
        with pytest.raises(PermissionDenied, match=f"#{north.id}"):
            bulk.select(rbac, "clients", [south.id, north.id])
        with pytest.raises(NotFound):
            bulk.select(rbac, "clients", ["not-a-number"])
    with rbac.as_member(world.members["member"]):  # no bulk on clients at all
        with pytest.raises(PermissionDenied):
            bulk.select(rbac, "clients", [world.clients["member"].id])
    with rbac.system():
        assert len(bulk.select(rbac, "clients", [south.id, north.id])) == 2
