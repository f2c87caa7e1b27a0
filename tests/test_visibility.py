"""Per-member visibility levels (All / Department / Own) cap the roles' scopes."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, team
from crm_rbac_plugin.errors import ValidationError


def visible(world: SimpleNamespace, who: str, action: str = "view") -> set[str]:
    """Lead tags ``who`` may ``action``; the check and the filter must agree."""
    access = rbac.access_for(world.members[who])
    by_check = {tag for tag, lead in world.leads.items()
                if rbac.can(action, "leads", lead, access=access)}
    with rbac.as_member(access):
        ids = set(db.session.scalars(sa.select(Lead.id).execution_options(rbac_action=action)))
    by_filter = {tag for tag, lead in world.leads.items() if lead.id in ids}
    assert by_check == by_filter, (who, action)
    return by_check


def set_level(world: SimpleNamespace, who: str, level: str | None) -> None:
    team.set_visibility(rbac, rbac.access_for(world.members["owner"]), world.members[who], level)
    db.session.commit()


@pytest.mark.parametrize("who, level, expected", [
    ("viewer", None, {"member", "member2", "manager", "junior_rep", "unowned"}),
    ("viewer", "own", {"unowned"}),
    ("viewer", "department", {"unowned"}),          # nobody in Support owns a lead
    ("admin", "own", {"unowned"}),
    ("admin", "all", {"member", "member2", "manager", "junior_rep", "unowned"}),
    # A manager capped to own still sees the members assigned to them.
    ("manager", "own", {"manager", "member", "unowned"}),
    ("manager", "department", {"manager", "member", "unowned"}),  # team scope is narrower
    ("owner", "own", {"member", "member2", "manager", "junior_rep", "unowned"}),
])
def test_visibility_caps_scopes_in_check_and_filter(world: SimpleNamespace, who: str,
                                                    level: str | None,
                                                    expected: set[str]) -> None:
    if who != "owner" or level is None:
        set_level(world, who, level)
    else:
        world.members["owner"].visibility = level  # even set directly, Owners see all
        db.session.commit()
    assert visible(world, who) == expected


def test_department_level_for_an_all_scope_role(world: SimpleNamespace) -> None:
    # Admin moved to Sales with the department level: Sales members' leads.
    world.members["admin"].department = world.departments["sales"]
    db.session.commit()
    set_level(world, "admin", "department")
    assert visible(world, "admin") == {"member", "member2", "manager", "junior_rep", "unowned"}
    assert visible(world, "admin", "edit") == {"member", "member2", "manager", "junior_rep"}
    world.members["junior_rep"].department = world.departments["support"]
    db.session.commit()
    assert visible(world, "admin", "edit") == {"member", "member2", "manager"}


def test_denies_are_not_capped(world: SimpleNamespace) -> None:
    access = rbac.access_for(world.members["viewer"])
    from crm_rbac_plugin.policy import Rule
    assert access.scopes_for(Rule("deny", "all")) == ("all",)


@pytest.mark.parametrize("actor, target, level, error", [
    ("member", "member", "all", PermissionDenied),     # no members.edit
    ("admin", "admin", "all", PermissionDenied),       # own visibility
    ("admin", "owner", "own", PermissionDenied),       # only an Owner changes an Owner
    ("owner", "viewer", "galaxy", ValidationError),
])
def test_visibility_changes_are_refused(world: SimpleNamespace, actor: str, target: str,
                                        level: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        team.set_visibility(rbac, rbac.access_for(world.members[actor]),
                            world.members[target], level)
    db.session.rollback()
    assert world.members[target].visibility is None


def test_visibility_from_the_member_page(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    membership = world.members["viewer"]
    page = client.get(f"/settings/members/{membership.id}")
    assert 'name="visibility"' in page.text
    response = client.post(f"/settings/members/{membership.id}/department",
                           data={"department_id": membership.department_id, "visibility": "own"})
    assert response.status_code == 302
    db.session.expire_all()
    assert membership.visibility == "own"
    viewer = login(world.users["viewer"], world.ws)
    assert "Lead of member2" not in viewer.get("/leads/").text
