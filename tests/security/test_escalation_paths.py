"""Escalation through the side doors of role management: one's own roles reached
indirectly, copies, visibility caps, teams, departments and segregation of duties.

Each case is a change a non-Owner could make that would give themselves, or a
member they act on, more than they hold; each is refused (403) and writes
nothing, while an Owner may make it.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, team, workspaces
from crm_rbac_plugin.errors import PermissionDenied
from crm_rbac_plugin.roles import field_rules
from crm_rbac_plugin.team import departments, lifecycle
from tests.rbac_helpers import (
    access_of,
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.test_settings_ui import matrix_values, role


def role_editor(world: SimpleNamespace, who: str) -> Any:
    """Let ``who`` edit roles and members (not manage them: not a privileged role)."""
    r = rbac.models.Role(workspace=world.ws, name=f"Role editor {who}")
    for action in ("view", "create", "edit", "delete"):
        workspaces.add_grant(rbac, r, "roles", action, "all")
    for action in ("view", "edit"):
        workspaces.add_grant(rbac, r, "members", action, "all")
    workspaces.assign_role(rbac, world.members[who], r)
    db.session.commit()
    return r


def refused(call: Any, *args: Any, **kwargs: Any) -> str:
    """Run a service call that must be refused (403); return its message, rolled back."""
    with pytest.raises(PermissionDenied) as caught:
        call(*args, **kwargs)
    db.session.rollback()
    return caught.value.message


def test_nobody_but_an_owner_changes_a_role_reaching_them(world: SimpleNamespace) -> None:
    """Editing, conditioning or deleting a role one holds (directly, through the
    department, or as a parent of a held role) would lift a deny on oneself."""
    role_editor(world, "viewer")
    deny = custom_role(world, "No deals", [("deals", "view", "all")], effect="deny")
    parent_deny = custom_role(world, "No leads", [("leads", "view", "all")], effect="deny")
    child = custom_role(world, "Child of No leads", parent=parent_deny)
    workspaces.assign_role(rbac, world.members["viewer"], deny)
    workspaces.assign_role(rbac, world.members["viewer"], child)
    support = world.departments["support"]
    dept_deny = custom_role(world, "No clients", [("clients", "view", "all")], effect="deny")
    db.session.add(rbac.models.DepartmentRole(workspace_id=world.ws.id, department=support,
                                              role=dept_deny))
    db.session.commit()
    viewer = access_of(world.members["viewer"])
    for held in (deny, parent_deny, dept_deny):
        assert "you cannot change your own roles" in refused(
            roles.update_role, rbac, viewer, held, grants=[])
        assert "you cannot change your own roles" in refused(
            roles.set_role_condition, rbac, viewer, held, {"networks": ["10.0.0.0/8"]})
        assert "you cannot change your own roles" in refused(
            roles.delete_role, rbac, viewer, held)
    [row] = roles.department_roles(rbac, support)
    assert "you belong to Support" in refused(
        roles.remove_department_role, rbac, viewer, row)
    # A role that does not reach them they still edit; the Owner edits any.
    other = custom_role(world, "Other", [("tasks", "view", "own")])
    db.session.commit()
    roles.update_role(rbac, viewer, other, grants=[])
    roles.update_role(rbac, access_of(world.members["owner"]), deny, grants=[])
    db.session.rollback()


def test_a_copy_keeps_its_sources_inherited_field_rules(world: SimpleNamespace,
                                                        login: Any) -> None:
    parent = custom_role(world, "Deals, no amounts", [("deals", "view", "all")])
    field_rules.set_field_rules(rbac, parent, {"deals": {"amount": "hidden"}})
    child = custom_role(world, "Child", [("leads", "view", "own")], parent=parent)
    db.session.commit()
    owner = access_of(world.members["owner"])
    copy = roles.clone_role(rbac, owner, child, "Copy of child")
    db.session.commit()
    assert {(r.resource, r.field, r.mode) for r in copy.field_rules} == {
        ("deals", "amount", "hidden")}
    client = login(world.users["owner"], world.ws)
    form = matrix_values(client, f"/settings/roles/new?clone={child.id}")
    assert form["field__deals__amount"] == "hidden"


def test_lifting_a_visibility_cap_needs_what_it_gives(world: SimpleNamespace) -> None:
    """A Manager who caps a member may narrow further, but lifts the cap only as far as
    their own access reaches: the member's Viewer role sees every deal, the Manager only
    their team's."""
    junior = world.members["junior_rep"]
    workspaces.assign_role(rbac, junior, role(world, "viewer"))
    db.session.add(rbac.models.ManagerAssignment(manager_id=world.members["manager"].id,
                                                 member_id=junior.id))
    owner = access_of(world.members["owner"])
    departments.set_visibility(rbac, owner, junior, "own")
    db.session.commit()
    manager = access_of(world.members["manager"])
    for wider in ("department", "all", None):
        assert "widen their visibility" in refused(
            departments.set_visibility, rbac, manager, junior, wider)
    assert junior.visibility == "own"
    departments.set_visibility(rbac, owner, junior, None)
    departments.set_visibility(rbac, manager, junior, "department")  # narrowing is theirs
    db.session.rollback()


def test_a_team_grows_only_by_what_the_actor_holds(world: SimpleNamespace) -> None:
    """Putting a member in a Manager's team lets the Manager's roles reach their records."""
    role_editor(world, "viewer")
    viewer = access_of(world.members["viewer"])
    manager, owner_m = world.members["manager"], world.members["owner"]
    assert "Only an Owner" in refused(departments.assign_to_manager, rbac, viewer, manager,
                                      owner_m)
    assert "widen Manager's team" in refused(
        departments.assign_to_manager, rbac, viewer, manager, world.members["member2"])
    departments.assign_to_manager(rbac, access_of(owner_m), manager, world.members["member2"])
    db.session.rollback()


def test_departments_are_shaped_by_whoever_manages_every_member(world: SimpleNamespace) -> None:
    manager = access_of(world.members["manager"])
    support = world.departments["support"]
    assert "every member" in refused(departments.create_department, rbac, manager, "Mine")
    assert "every member" in refused(departments.rename_department, rbac, manager, support,
                                     "Renamed")
    empty = departments.create_department(rbac, access_of(world.members["owner"]), "Empty")
    db.session.commit()
    assert "every member" in refused(departments.delete_department, rbac, manager, empty)


def test_an_admin_through_a_department_is_protected_as_an_admin(world: SimpleNamespace) -> None:
    support = world.departments["support"]
    db.session.add(rbac.models.DepartmentRole(workspace_id=world.ws.id, department=support,
                                              role=role(world, "admin")))
    db.session.commit()
    admin = access_of(world.members["admin"])
    success = world.members["client_success"]
    assert "Only an Owner" in refused(lifecycle.deactivate, rbac, admin, success)
    assert "Only an Owner" in refused(departments.set_visibility, rbac, admin, success, "own")
    assert "Only an Owner" in refused(departments.set_department, rbac, admin, success, None)


@pytest.fixture
def duties(world: SimpleNamespace) -> SimpleNamespace:
    """Finance and Member declared in conflict; finance holds Finance."""
    owner = access_of(world.members["owner"])
    roles.add_conflict(rbac, owner, role(world, "finance"), role(world, "member"))
    db.session.commit()
    return SimpleNamespace(owner=owner, finance=role(world, "finance"),
                           member=role(world, "member"))


def test_segregation_of_duties_sees_inherited_roles(world: SimpleNamespace,
                                                    duties: SimpleNamespace) -> None:
    heir = custom_role(world, "Member plus", parent=duties.member)
    db.session.commit()
    assert "segregation of duties" in refused(
        roles.assign_role, rbac, duties.owner, world.members["finance"], heir)
    plain = custom_role(world, "Plain", [("leads", "view", "own")])
    db.session.commit()
    roles.assign_role(rbac, duties.owner, world.members["finance"], plain)
    db.session.commit()
    assert "segregation of duties" in refused(
        roles.update_role, rbac, duties.owner, plain, parent=duties.member)


def test_segregation_of_duties_sees_department_roles(world: SimpleNamespace,
                                                     duties: SimpleNamespace) -> None:
    support = world.departments["support"]
    roles.give_department_role(rbac, duties.owner, support, duties.finance)
    db.session.commit()
    assert "segregation of duties" in refused(
        roles.assign_role, rbac, duties.owner, world.members["viewer"], duties.member)
    # Declaring a pair someone already holds through a department is refused too.
    owner = duties.owner
    roles.assign_role(rbac, owner, world.members["viewer"], role(world, "junior_rep"))
    db.session.commit()
    with pytest.raises(Exception, match="already hold both"):
        roles.add_conflict(rbac, owner, duties.finance, role(world, "junior_rep"))
    db.session.rollback()


def test_the_pages_refuse_the_same(app: Flask, world: SimpleNamespace, login: Any,
                                   duties: SimpleNamespace) -> None:
    heir = custom_role(world, "Member plus", parent=duties.member)
    db.session.commit()
    owner = login(world.users["owner"], world.ws)
    response = owner.post(f"/settings/members/{world.members['finance'].id}/roles",
                          data={"role_id": str(heir.id)})
    assert response.status_code == 403
    assert "segregation of duties" in response.text
    db.session.expire_all()
    assert heir.id not in {mr.role_id for mr in world.members["finance"].member_roles}
    assert team is not None
