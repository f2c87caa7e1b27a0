"""``003``: Finance & Accounting "View billing"; the Owner has "full control including
billing". The plan page opens to ``billing.view`` (read-only) and only an Owner changes
the plan."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from tests.rbac_helpers import remove_roles
from tests.test_settings_ui import role


def _finance(world: SimpleNamespace) -> Any:
    member = world.members["member"]
    remove_roles(member)
    rbac_role = role(world, "finance_accounting")
    from crm_rbac_plugin import workspaces
    workspaces.assign_role(rbac, member, rbac_role)
    db.session.commit()
    return member


def test_finance_and_accounting_reads_the_plan(world: SimpleNamespace, login: Any) -> None:
    _finance(world)
    client = login(world.users["member"], world.ws)
    page = client.get("/settings/plan")
    assert page.status_code == 200
    assert world.ws.plan in page.text
    assert 'id="change-plan"' not in page.text  # no form to change it
    assert 'href="/settings/plan"' in client.get("/settings/profile").text  # its tab
    refused = client.post("/settings/plan", data={"plan": "starter", "reason": "cheaper"})
    assert refused.status_code == 403
    db.session.expire_all()
    assert db.session.get(rbac.models.Workspace, world.ws.id).plan == world.ws.plan


def test_only_holders_of_billing_view_read_it(world: SimpleNamespace, login: Any) -> None:
    assert login(world.users["member"], world.ws).get("/settings/plan").status_code == 403
    assert login(world.users["viewer"], world.ws).get("/settings/plan").status_code == 403
    admin = login(world.users["admin"], world.ws)
    assert admin.get("/settings/plan").status_code == 200
    assert admin.post("/settings/plan", data={"plan": "starter",
                                               "reason": "cheaper"}).status_code == 403
    owner = login(world.users["owner"], world.ws)
    assert 'id="change-plan"' in owner.get("/settings/plan").text
