"""The rules that keep roles safe, each with its refusal (and nothing written)."""

from __future__ import annotations

import datetime as dt
import threading
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, roles, workspaces
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.models import utcnow
from tests.test_settings_ui import give_role_admin


def role(world: SimpleNamespace, key: str) -> Any:
    return workspaces.role_by_key(rbac, world.ws, key)


def actor(world: SimpleNamespace, who: str) -> Any:
    return rbac.access_for(world.members[who])


def specs(*items: Any, scopes: dict[str, str] | None = None) -> list[roles.GrantSpec]:
    return roles.parse_grants(rbac, list(items), scopes)


def role_count() -> int:
    return int(db.session.scalar(sa.select(sa.func.count(rbac.models.Role.id))))


ESCALATION = [
    # actor, grants of the new role, expected outcome
    ("owner", ["leads.view", "leads.delete"], None, "allowed"),
    ("admin", ["leads.view", "leads.export", "deals.manage"], None, "allowed"),
    ("manager", ["leads.view"], None, "refused"),            # no roles.create at all
    ("manager+", ["leads.view"], {"leads": "all"}, "refused"),  # team < all
    ("manager+", ["leads.view", "leads.edit"], {"leads": "team"}, "allowed"),
    ("manager+", ["leads.view"], {"leads": "own"}, "allowed"),
    ("manager+", ["leads.manage"], {"leads": "own"}, "refused"),  # manager lacks manage
    ("manager+", ["roles.manage"], None, "allowed"),           # holds it through Role admin
    ("viewer+", ["leads.view"], {"leads": "all"}, "allowed"),
    ("viewer+", ["leads.edit"], {"leads": "own"}, "refused"),
]


@pytest.mark.parametrize("who, perms, scopes, expected", ESCALATION)
def test_create_role_never_grants_more_than_the_actor_holds(
        world: SimpleNamespace, who: str, perms: list[str], scopes: dict[str, str] | None,
        expected: str) -> None:
    name = who.rstrip("+")
    if who.endswith("+"):
        give_role_admin(world, name)
    before = role_count()
    grants = specs(*perms, scopes=scopes)
    if expected == "allowed":
        created = roles.create_role(rbac, actor(world, name), name="Custom", grants=grants)
        db.session.commit()
        assert sorted(g.permission for g in created.grants) == sorted(perms)
        assert role_count() == before + 1
    else:
        with pytest.raises(PermissionDenied):
            roles.create_role(rbac, actor(world, name), name="Custom", grants=grants)
        db.session.rollback()
        assert role_count() == before


def test_condition_narrower_than_actor_is_allowed_wider_refused(world: SimpleNamespace) -> None:
    give_role_admin(world, "finance")
    closed = {"field": "stage", "op": "in", "value": ["won", "lost"]}
    fin = actor(world, "finance")
    narrower = specs({"resource": "deals", "action": "view",
                      "condition": [closed, {"field": "amount", "op": "gt", "value": 10}]})
    roles.create_role(rbac, fin, name="Big closed deals", grants=narrower)
    with pytest.raises(PermissionDenied):
        roles.create_role(rbac, fin, name="All deals", grants=specs("deals.view"))


def test_parent_inheritance_counts_towards_escalation(world: SimpleNamespace) -> None:
    give_role_admin(world, "manager")
    with pytest.raises(PermissionDenied, match="grants more than you hold"):
        roles.create_role(rbac, actor(world, "manager"), name="Child of admin",
                          parent=role(world, "admin"))


@pytest.mark.parametrize("who, target, key, expected", [
    ("owner", "member", "admin", "allowed"),
    ("owner", "member", "owner", "allowed"),
    ("admin", "member", "admin", "refused"),
    ("admin", "member", "owner", "refused"),
    ("admin", "member", "viewer", "allowed"),
    ("admin", "admin", "viewer", "refused"),      # own roles
    ("manager", "member", "viewer", "refused"),   # viewer sees all, manager only team
    ("manager+", "member", "viewer", "refused"),  # viewer sees all, manager only team
    ("manager+", "viewer", "junior_rep", "allowed"),
])
def test_assign_rules(world: SimpleNamespace, who: str, target: str, key: str,
                      expected: str) -> None:
    name = who.rstrip("+")
    if who.endswith("+"):
        give_role_admin(world, name)
    membership = world.members[target]
    before = len(membership.member_roles)
    if expected == "allowed":
        roles.assign_role(rbac, actor(world, name), membership, role(world, key))
        db.session.commit()
        assert len(membership.member_roles) == before + 1
    else:
        with pytest.raises(PermissionDenied):
            roles.assign_role(rbac, actor(world, name), membership, role(world, key))
        db.session.rollback()
        assert len(membership.member_roles) == before


def test_last_owner_cannot_be_removed(world: SimpleNamespace) -> None:
    owner = world.members["owner"]
    roles.assign_role(rbac, actor(world, "owner"), owner, role(world, "admin"))
    db.session.commit()
    owner_mr = next(mr for mr in owner.member_roles if mr.role.is_owner)
    with pytest.raises(PermissionDenied, match="at least one active Owner"):
        roles.remove_role(rbac, actor(world, "owner"), owner_mr)
    db.session.rollback()
    assert roles.active_owner_count(rbac, world.ws.id) == 1
    # With a second Owner, the first may step down.
    roles.assign_role(rbac, actor(world, "owner"), world.members["admin"], role(world, "owner"))
    db.session.commit()
    roles.remove_role(rbac, actor(world, "owner"), owner_mr)
    db.session.commit()
    assert roles.active_owner_count(rbac, world.ws.id) == 1


def test_every_member_keeps_a_role(world: SimpleNamespace) -> None:
    mr = world.members["viewer"].member_roles[0]
    with pytest.raises(ValidationError, match="at least one role"):
        roles.remove_role(rbac, actor(world, "owner"), mr)


def test_owner_and_admin_roles_cannot_be_edited_or_deleted(world: SimpleNamespace) -> None:
    for key in ("owner", "admin"):
        with pytest.raises(PermissionDenied):
            roles.update_role(rbac, actor(world, "owner"), role(world, key), grants=[])
        with pytest.raises(PermissionDenied):
            roles.delete_role(rbac, actor(world, "owner"), role(world, key))
    db.session.rollback()
    assert len(role(world, "admin").grants) > 0


def test_a_role_wider_than_the_actor_cannot_be_touched(world: SimpleNamespace) -> None:
    give_role_admin(world, "manager")
    with pytest.raises(PermissionDenied, match="wider than you"):
        roles.update_role(rbac, actor(world, "manager"), role(world, "viewer"), grants=[])


def test_delete_role_held_alone_needs_a_target(world: SimpleNamespace) -> None:
    junior = role(world, "junior_rep")
    with pytest.raises(ValidationError, match="hold only this role"):
        roles.delete_role(rbac, actor(world, "owner"), junior)
    db.session.rollback()
    assert db.session.get(rbac.models.Role, junior.id) is not None
    roles.delete_role(rbac, actor(world, "owner"), junior, move_to=role(world, "viewer"))
    db.session.commit()
    assert [mr.role.key for mr in world.members["junior_rep"].member_roles] == ["viewer"]
    assert db.session.get(rbac.models.Role, junior.id) is None


def test_segregation_of_duties(world: SimpleNamespace) -> None:
    finance, junior = role(world, "finance"), role(world, "junior_rep")
    roles.add_conflict(rbac, actor(world, "owner"), finance, junior)
    db.session.commit()
    with pytest.raises(PermissionDenied, match="segregation of duties"):
        roles.assign_role(rbac, actor(world, "owner"), world.members["finance"], junior)
    db.session.rollback()
    assert [mr.role.key for mr in world.members["finance"].member_roles] == ["finance"]
    # A conflict that members already violate cannot be declared.
    roles.assign_role(rbac, actor(world, "owner"), world.members["viewer"], role(world, "member"))
    db.session.commit()
    with pytest.raises(ValidationError, match="already hold both"):
        roles.add_conflict(rbac, actor(world, "owner"), role(world, "viewer"),
                           role(world, "member"))


def test_temporary_assignment_rules(world: SimpleNamespace) -> None:
    now = utcnow()
    owner = actor(world, "owner")
    target = world.members["viewer"]
    with pytest.raises(ValidationError, match="in the past"):
        roles.assign_role(rbac, owner, target, role(world, "finance"),
                          expires_at=now - dt.timedelta(days=1))
    with pytest.raises(ValidationError, match="cannot be time-limited"):
        roles.assign_role(rbac, owner, target, role(world, "owner"),
                          expires_at=now + dt.timedelta(days=1))
    with pytest.raises(ValidationError, match="end after it starts"):
        roles.assign_role(rbac, owner, target, role(world, "finance"),
                          starts_at=now + dt.timedelta(days=2), expires_at=now + dt.timedelta(days=1))
    roles.assign_role(rbac, owner, target, role(world, "member"),
                      expires_at=now + dt.timedelta(days=7))
    db.session.commit()
    assert rbac.can("leads.create", access=rbac.access_for(target))


def test_clone_compare_and_roles_granting(world: SimpleNamespace) -> None:
    owner = actor(world, "owner")
    clone = roles.clone_role(rbac, owner, role(world, "finance"), "Finance EU")
    db.session.commit()
    assert roles.matrix(rbac, clone).keys() == roles.matrix(rbac, role(world, "finance")).keys()
    with pytest.raises(ValidationError):
        roles.clone_role(rbac, owner, role(world, "owner"), "Owner 2")
    rows = roles.compare(rbac, [role(world, "viewer"), role(world, "finance")], "deals")
    by_perm = {r["permission"]: r for r in rows}
    assert by_perm["deals.view"]["cells"] == ["all", "all where stage in (won, lost)"]
    assert by_perm["deals.view"]["differs"]
    assert all("deals" in p for p in by_perm)
    granting = [r.name for r in roles.roles_granting(rbac, world.ws.id, "deals.export")]
    assert granting == ["Owner", "Admin", "Manager", "Finance", "Sales", "Finance EU"]


def test_preview_lists_gains_and_losses_and_changes_nothing(world: SimpleNamespace) -> None:
    member_role = role(world, "member")
    version = world.ws.policy_version
    new = [s for s in roles.specs_of(member_role) if s.action != "delete"]
    new += specs("leads.export", scopes={"leads": "own"})
    changes = roles.preview(rbac, member_role,
                            lambda: roles.update_role(rbac, actor(world, "owner"), member_role,
                                                      grants=new))
    by_member = {c["member"]: c for c in changes}
    assert set(by_member) == {"Member", "Member2"}
    assert "leads.export [own]" in by_member["Member"]["gained"]
    assert "deals.delete [own]" in by_member["Member"]["lost"]
    db.session.expire_all()
    assert any(g.action == "delete" for g in role(world, "member").grants)
    assert world.ws.policy_version == version


def test_bad_grant_input_is_a_validation_error(world: SimpleNamespace) -> None:
    for bad, field in [
        (["spaceships.view"], "permissions[0]"),
        ([{"resource": "leads", "action": "view", "scope": "galaxy"}], "permissions[0].scope"),
        ([{"resource": "deals", "action": "view",
           "condition": [{"field": "nope", "op": "eq", "value": 1}]}], "permissions[0].condition"),
        ([{"resource": "deals", "action": "view",
           "condition": [{"field": "stage", "op": "like", "value": "x"}]}],
         "permissions[0].condition"),
        (["leads.view", "leads.view"], "permissions[1]"),
        ("leads.view", "permissions"),
    ]:
        with pytest.raises(ValidationError) as info:
            roles.parse_grants(rbac, bad)  # type: ignore[arg-type]
        assert info.value.field == field


@pytest.mark.parametrize("backend", ["postgresql"], indirect=True)
def test_concurrent_owners_demoting_each_other_keep_one_owner(app: Flask,
                                                              world: SimpleNamespace) -> None:
    """Two Owners remove each other's Owner role at the same moment, repeatedly."""
    m = rbac.models
    owner_role, admin_role = role(world, "owner"), role(world, "admin")
    ids = {"owner": world.members["owner"].id, "admin": world.members["admin"].id}
    # Both also hold Admin, so losing Owner never leaves them without a role.
    db.session.add(m.MemberRole(membership_id=ids["owner"], role_id=admin_role.id))
    db.session.commit()

    def owner_assignment(membership_id: int) -> Any:
        return db.session.scalar(sa.select(m.MemberRole).where(
            m.MemberRole.membership_id == membership_id, m.MemberRole.role_id == owner_role.id))

    for _ in range(5):
        for mid in ids.values():
            if owner_assignment(mid) is None:
                db.session.add(m.MemberRole(membership_id=mid, role_id=owner_role.id))
        db.session.commit()
        assert roles.active_owner_count(rbac, world.ws.id) == 2
        barrier = threading.Barrier(2)
        outcomes: list[str] = []

        def demote(actor_key: str, victim_key: str) -> None:
            with app.app_context():
                actor_access = rbac.access_for(ids[actor_key])
                mr = owner_assignment(ids[victim_key])
                mr.membership.member_roles  # noqa: B018  load before racing
                barrier.wait()
                try:
                    roles.remove_role(rbac, actor_access, mr)
                    db.session.commit()
                    outcomes.append("removed")
                except PermissionDenied:
                    db.session.rollback()
                    outcomes.append("refused")
                finally:
                    db.session.remove()

        threads = [threading.Thread(target=demote, args=("owner", "admin")),
                   threading.Thread(target=demote, args=("admin", "owner"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        db.session.expire_all()
        assert roles.active_owner_count(rbac, world.ws.id) == 1, outcomes
        assert sorted(outcomes) == ["refused", "removed"]
