"""Where the seeds differ: the decisions of README "Where the seeds differ", on SQLite and PostgreSQL.

- Admin: a role with a deny is refused (409) when it would narrow an Admin,
  whichever of the two is given second.
- Manager: the built-in Manager invites into their own department, gives
  roles no wider than their own (never Owner or Admin), deactivates the
  members assigned to them; ``002``'s stricter variant is one edit of the
  role (its members grants but view removed), after which all three are 403.
- Higher roles over lower: an explicit deny wins over every allow, the
  Owner is never denied.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, team
from crm_rbac_plugin.errors import PermissionDenied, RuleConflict
from tests.rbac_helpers import access_of, custom_role, give_role
from tests.test_settings_ui import role


def deny_role(world: SimpleNamespace) -> Any:
    r = custom_role(world, "No deal exports", [("deals", "export", "all")], effect="deny")
    db.session.commit()
    return r


# -- Admin ------------------------------------------------------------------------------------


def test_a_deny_role_is_refused_for_an_admin(world: SimpleNamespace, login: Any) -> None:
    no_exports = deny_role(world)
    owner = access_of(world.members["owner"])
    with pytest.raises(RuleConflict, match="Admins always have full access") as refused:
        roles.assign_role(rbac, owner, world.members["admin"], no_exports)
    db.session.rollback()
    assert refused.value.status == 409 and "deals.export" in refused.value.message
    # The page answers 409 with the message, and nothing is assigned.
    r = login(world.users["owner"], world.ws).post(
        f"/settings/members/{world.members['admin'].id}/roles", data={"role_id": no_exports.id})
    assert r.status_code == 409 and "Admins always have full access" in r.text
    db.session.expire_all()
    assert no_exports.id not in {mr.role_id for mr in world.members["admin"].member_roles}


def test_admin_is_refused_for_a_member_holding_a_deny(world: SimpleNamespace) -> None:
    no_exports = deny_role(world)
    owner = access_of(world.members["owner"])
    roles.assign_role(rbac, owner, world.members["viewer"], no_exports)
    db.session.commit()
    with pytest.raises(RuleConflict, match="No deal exports denies deals.export"):
        roles.assign_role(rbac, owner, world.members["viewer"], role(world, "admin"))
    db.session.rollback()


def test_a_role_without_a_deny_is_given_to_an_admin(world: SimpleNamespace) -> None:
    roles.assign_role(rbac, access_of(world.members["owner"]), world.members["admin"],
                      role(world, "viewer"))
    db.session.commit()


# -- Manager ----------------------------------------------------------------------------------


def invite(client: Any, world: SimpleNamespace, email: str, key: str, dept: str | None) -> Any:
    data = {"email": email, "roles": [role(world, key).id]}
    if dept:
        data["department_id"] = world.departments[dept].id
    return client.post("/settings/members/invite", data=data)


def test_the_manager_invites_into_their_own_department_only(world: SimpleNamespace,
                                                           login: Any) -> None:
    manager = login(world.users["manager"], world.ws)
    assert invite(manager, world, "rep@example.test", "member", "sales").status_code == 302
    assert invite(manager, world, "sup@example.test", "member", "support").status_code == 403
    assert invite(manager, world, "nod@example.test", "member", None).status_code == 403
    # Never a role wider than their own, nor a privileged one.
    assert invite(manager, world, "wide@example.test", "viewer", "sales").status_code == 403
    assert invite(manager, world, "adm@example.test", "admin", "sales").status_code == 403


def test_the_manager_assigns_narrower_roles_to_their_team_only(world: SimpleNamespace) -> None:
    manager = access_of(world.members["manager"])
    roles.assign_role(rbac, manager, world.members["member"], role(world, "junior_rep"))
    db.session.commit()
    with pytest.raises(PermissionDenied, match="members assigned to you"):
        roles.assign_role(rbac, manager, world.members["member2"], role(world, "junior_rep"))
    db.session.rollback()
    with pytest.raises(PermissionDenied, match="grants more than you hold"):
        roles.assign_role(rbac, manager, world.members["member"], role(world, "viewer"))
    db.session.rollback()
    with pytest.raises(PermissionDenied, match="Only an Owner"):
        roles.assign_role(rbac, manager, world.members["member"], role(world, "admin"))
    db.session.rollback()


def test_the_manager_deactivates_their_team_only(world: SimpleNamespace) -> None:
    manager = access_of(world.members["manager"])
    with pytest.raises(PermissionDenied):
        team.deactivate(rbac, manager, world.members["member2"])
    db.session.rollback()
    team.deactivate(rbac, manager, world.members["member"])
    db.session.commit()
    assert world.members["member"].status == "inactive"
    team.reactivate(rbac, manager, world.members["member"])
    db.session.commit()


def test_the_stricter_variant_is_one_edit_of_the_manager_role(world: SimpleNamespace,
                                                              login: Any) -> None:
    """``002``: only Owners and Admins manage members. One edit: drop members.create and .edit."""
    manager_role = role(world, "manager")
    kept = [s for s in roles.specs_of(manager_role)
            if not (s.resource == "members" and s.action in ("create", "edit"))]
    roles.update_role(rbac, access_of(world.members["owner"]), manager_role, name="Manager",
                      description=manager_role.description, grants=kept)
    db.session.commit()
    manager = access_of(world.members["manager"])
    with pytest.raises(PermissionDenied):
        team.deactivate(rbac, manager, world.members["member"])
    db.session.rollback()
    with pytest.raises(PermissionDenied):
        roles.assign_role(rbac, manager, world.members["member"], role(world, "junior_rep"))
    db.session.rollback()
    client = login(world.users["manager"], world.ws)
    assert invite(client, world, "rep@example.test", "member", "sales").status_code == 403


# -- higher roles over lower ones -------------------------------------------------------------


def test_an_explicit_deny_wins_over_a_higher_role(world: SimpleNamespace) -> None:
    no_exports = deny_role(world)
    give_role(world.members["manager"], no_exports)
    db.session.commit()
    assert not rbac.can("deals.export", access=rbac.access_for(world.members["manager"]))
    assert rbac.can("deals.view", access=rbac.access_for(world.members["manager"]))


def test_the_owner_is_never_denied(world: SimpleNamespace) -> None:
    no_exports = deny_role(world)
    give_role(world.members["owner"], no_exports)
    db.session.commit()
    assert rbac.can("deals.export", access=rbac.access_for(world.members["owner"]))
