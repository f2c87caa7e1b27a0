"""Bulk operations: a permission of their own, deniable per role, all or nothing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, workspaces


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
    assert workspaces.role_by_key(rbac, world.ws, "admin").builtin
