"""explain() names what decided, and the ``flask rbac`` commands wrap it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import UnknownResource, workspaces


def _explain(world: SimpleNamespace, who: str, permission: str, record: object = None):  # type: ignore[no-untyped-def]
    return rbac.explain(permission, record=record, access=rbac.access_for(world.members[who]))


def test_explain_names_role_grant_scope_and_condition(world: SimpleNamespace) -> None:
    decision = _explain(world, "finance", "deals.view", world.deals["member-won"])
    assert decision.allowed
    assert decision.rule is not None and decision.rule.role == "Finance"
    assert "stage in (won, lost)" in decision.reason
    assert any("roles: Finance" in step for step in decision.steps)
    refused = _explain(world, "finance", "deals.view", world.deals["member-new"])
    assert not refused.allowed
    assert "outside every granted scope or condition" in refused.reason


def test_explain_owner_plan_deny_and_no_grant(world: SimpleNamespace) -> None:
    assert "owner" in _explain(world, "owner", "leads.delete").reason
    assert _explain(world, "junior_rep", "leads.delete").reason == "delete on leads: no role grants it"

    role = rbac.models.Role(workspace=world.ws, name="No export")
    workspaces.add_grant(rbac, role, "leads", "view", "all")
    workspaces.add_grant(rbac, role, "leads", "export", "all", effect="deny")
    workspaces.assign_role(rbac, world.members["manager"], role)
    db.session.commit()
    denied = _explain(world, "manager", "leads.export")
    assert not denied.allowed and "explicit deny" in denied.reason and "No export" in denied.reason

    world.ws.plan = "free"
    db.session.commit()
    gated = _explain(world, "admin", "deals.view")
    assert not gated.allowed and "plan does not include" in gated.reason


def test_explain_unknown_names_raise(world: SimpleNamespace) -> None:
    with pytest.raises(UnknownResource):
        _explain(world, "admin", "spaceships.view")
    with pytest.raises(UnknownResource):
        _explain(world, "admin", "leads.launch")


def test_cli_explain(app: Flask, world: SimpleNamespace) -> None:
    runner = app.test_cli_runner()
    lead = world.leads["member"]
    result = runner.invoke(args=["rbac", "explain", "--user", "member@example.test",
                                 "--workspace", "acme", "--record", str(lead.id), "leads.edit"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ALLOWED")
    assert "allow own (role 'Member'" in result.output
    result = runner.invoke(args=["rbac", "explain", "--user", "junior_rep@example.test",
                                 "--workspace", "acme", "--record", str(lead.id), "leads.view"])
    assert result.output.startswith("DENIED")


@pytest.mark.parametrize("args, message", [
    (["--user", "nobody@example.test", "--workspace", "acme", "leads.view"], "not a member"),
    (["--user", "member@example.test", "--workspace", "acme", "ghosts.view"], "unknown resource"),
    (["--user", "member@example.test", "--workspace", "acme", "--record", "99999", "leads.view"],
     "no leads record"),
])
def test_cli_explain_errors(app: Flask, world: SimpleNamespace, args: list[str],
                            message: str) -> None:
    result = app.test_cli_runner().invoke(args=["rbac", "explain", *args])
    assert result.exit_code != 0
    assert message in result.output


def test_cli_roles_and_resources(app: Flask, world: SimpleNamespace) -> None:
    runner = app.test_cli_runner()
    roles = runner.invoke(args=["rbac", "roles", "--workspace", "acme"])
    assert roles.exit_code == 0
    assert "Owner (owner)" in roles.output
    assert "allow deals.view [all] where" in roles.output
    assert runner.invoke(args=["rbac", "roles", "--workspace", "nope"]).exit_code != 0
    resources = runner.invoke(args=["rbac", "resources"])
    assert "leads" in resources.output and "Lead" in resources.output
