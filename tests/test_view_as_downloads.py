"""Downloads while viewing as another member.

Viewing as is for reading: an Owner who views as another Owner and downloads the
whole-workspace export is the one the audit trail names, and an approved export's
single-use file stays the requester's to take, not the viewer's.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from tests.rbac_helpers import approved_leads_export


def _view_as(client: Any, membership_id: int) -> None:
    started = client.post("/settings/view-as", data={"membership_id": str(membership_id),
                                                     "next": "/"})
    assert started.status_code == 302
    assert "rbac-view-as-banner" in client.get("/leads/").text


def test_the_workspace_export_names_the_real_owner(world: SimpleNamespace, login: Any) -> None:
    second = world.members["admin"]
    workspaces.assign_role(rbac, second, workspaces.role_by_key(rbac, world.ws, "owner"))
    db.session.commit()
    owner = login(world.users["owner"], world.ws)
    _view_as(owner, second.id)
    assert owner.get("/settings/lifecycle/export").status_code == 200
    A = rbac.models.AuditEvent
    event = db.session.scalars(sa.select(A).where(A.action == "workspace.exported")
                               .order_by(A.id.desc())).first()
    assert event is not None
    assert (event.actor_membership_id, event.actor_user_id) == (
        world.members["owner"].id, world.users["owner"].id)


def test_an_approved_file_is_not_taken_while_viewing_as_its_requester(
        world: SimpleNamespace, login: Any) -> None:
    manager, req = approved_leads_export(world, login)
    owner = login(world.users["owner"], world.ws)
    _view_as(owner, world.members["manager"].id)
    assert owner.post(f"/settings/approvals/{req.id}/download").status_code in (403, 404)
    db.session.expire_all()
    assert db.session.get(type(req), req.id).download_used_at is None
    # The requester still has it.
    assert manager.post(f"/settings/approvals/{req.id}/download").status_code == 200
