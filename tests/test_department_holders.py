"""A role held through a department counts as held wherever holders are shown or
changed: the role's users, its deletion, the access review, the counts and the
notifications its members get."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import queries, roles
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.oversight import review
from tests.rbac_helpers import (
    access_of,
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.test_settings_ui import role


def given_to_support(world: SimpleNamespace, name: str = "Support desk") -> Any:
    owner = access_of(world.members["owner"])
    desk = custom_role(world, name, [("leads", "view", "own")])
    db.session.commit()
    roles.give_department_role(rbac, owner, world.departments["support"], desk)
    db.session.commit()
    return desk


def test_the_roles_pages_list_department_holders(world: SimpleNamespace, login: Any) -> None:
    desk = given_to_support(world)
    assert queries.member_counts(rbac, world.ws.id)[desk.id] == 2  # viewer, client success
    client = login(world.users["owner"], world.ws)
    users = client.get(f"/settings/roles/{desk.id}/users")
    assert users.status_code == 200
    assert "Through the department Support" in users.text
    assert "Nobody holds this role" not in users.text
    for key in ("viewer", "client_success"):
        assert world.members[key].display_name in users.text
    delete = client.get(f"/settings/roles/{desk.id}/delete")
    assert "No member holds" not in delete.text
    assert "2 members hold it" in delete.text and "Support gives it" in delete.text
    unused = review.access_review(rbac, world.ws.id)["unused_roles"]
    assert desk.id not in {r.id for r in unused}


def test_deleting_a_department_role_moves_the_department(world: SimpleNamespace) -> None:
    desk = given_to_support(world)
    other = custom_role(world, "Other desk", [("leads", "view", "own")])
    db.session.commit()
    roles.delete_role(rbac, access_of(world.members["owner"]), desk, move_to=other)
    db.session.commit()
    DR = rbac.models.DepartmentRole
    given = set(db.session.scalars(sa.select(DR.role_id).where(
        DR.department_id == world.departments["support"].id)))
    assert given == {other.id}


def test_an_admin_through_a_department_is_in_the_review(world: SimpleNamespace) -> None:
    roles.give_department_role(rbac, access_of(world.members["owner"]),
                               world.departments["support"], role(world, "admin"))
    db.session.commit()
    listed = {p["membership"].id for p in review.access_review(rbac, world.ws.id)["privileged"]}
    assert {world.members["viewer"].id, world.members["client_success"].id} <= listed


def test_department_members_are_told_of_the_role(world: SimpleNamespace) -> None:
    desk = given_to_support(world)
    N = rbac.models.Notification
    told = set(db.session.scalars(sa.select(N.membership_id).where(
        N.event == "role.assigned", N.summary.contains(desk.name))))
    assert told == {world.members["viewer"].id, world.members["client_success"].id}
    [row] = roles.department_roles(rbac, world.departments["support"])
    roles.remove_department_role(rbac, access_of(world.members["owner"]), row)
    db.session.commit()
    removed = set(db.session.scalars(sa.select(N.membership_id).where(
        N.event == "role.removed", N.summary.contains(desk.name))))
    assert removed == told


def test_the_member_access_page_names_the_department(world: SimpleNamespace, login: Any) -> None:
    desk = given_to_support(world)
    client = login(world.users["owner"], world.ws)
    page = client.get(f"/settings/members/{world.members['viewer'].id}/access")
    assert page.status_code == 200
    assert f"{desk.name} (via department Support)" in page.text
    assert f"{desk.name} (inherited)" not in page.text


def test_a_temporary_role_is_never_given_to_a_department(world: SimpleNamespace) -> None:
    """The Guest ends by itself after 30 days (``RBAC_ROLE_DEFAULT_EXPIRY_DAYS``); a
    department's role has no end, so it is given member by member."""
    with pytest.raises(ValidationError) as refused:
        roles.give_department_role(rbac, access_of(world.members["owner"]),
                                   world.departments["support"], role(world, "guest"))
    assert refused.value.field == "role_id"
    db.session.rollback()
