"""``003``: Finance & Accounting "View billing"; the Owner has "full control including
billing". The plan page opens to ``billing.view`` (read-only) and only an Owner changes
the plan."""

from __future__ import annotations

import importlib
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

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


def test_the_migration_gives_existing_roles_billing_view(world: SimpleNamespace,
                                                         login: Any) -> None:
    """A workspace made before the billing resource: its Admin and Finance & Accounting
    roles had no billing grant (skipped as unregistered); ``rbac_0019`` gives it."""
    migration = importlib.import_module(
        "crm_rbac_plugin.migrations.versions.rbac_0019_billing_view")
    _finance(world)
    G, W = rbac.models.Grant, rbac.models.Workspace
    connection = db.session.connection()
    connection.execute(sa.delete(G).where(G.resource == "billing"))
    connection.execute(sa.update(W).values(policy_version=W.policy_version + 1))
    db.session.commit()
    assert login(world.users["member"], world.ws).get("/settings/plan").status_code == 403
    connection = db.session.connection()
    with Operations.context(MigrationContext.configure(connection)):
        migration.upgrade()
        migration.upgrade()  # twice: no second grant
    connection.execute(sa.update(W).values(policy_version=W.policy_version + 1))
    db.session.commit()
    assert login(world.users["member"], world.ws).get("/settings/plan").status_code == 200
    assert login(world.users["admin"], world.ws).get("/settings/plan").status_code == 200
    kept = db.session.scalars(sa.select(G.role_id).where(G.resource == "billing")).all()
    assert len(kept) == len(set(kept))
