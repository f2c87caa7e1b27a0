"""Quotas: seats per plan and record caps per role, on SQLite and PostgreSQL.

Seats count active plus pending members; an invitation and a reactivation
each take one, and a refusal is a 409 naming the limit on the pages, in the
CLI and at the data layer (a plain flush). Caps count the records a member
owns; the most permissive of their roles decides, the Owner is never capped.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Client, Lead, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import quotas, roles, team, workspaces
from crm_rbac_plugin.errors import PermissionDenied, QuotaExceeded, ValidationError
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import access_of, custom_role, give_role
from tests.test_decorators import sql_log
from tests.test_settings_ui import role

ACTIVE_AND_PENDING = 10  # the world's Acme workspace: the Owner and nine members


def limit_seats(app: Flask, seats: int | None) -> None:
    app.config["RBAC_PLAN_SEATS"] = {"enterprise": seats}


def seats_taken(world: SimpleNamespace) -> int:
    db.session.expire_all()
    return quotas.seat_usage(rbac, world.ws).used


# -- seats -------------------------------------------------------------------------------------


def test_seat_usage_counts_active_and_pending(app: Flask, world: SimpleNamespace) -> None:
    limit_seats(app, 20)
    usage = quotas.seat_usage(rbac, world.ws)
    assert (usage.used, usage.limit, usage.free) == (ACTIVE_AND_PENDING, 20, 10)
    team.invite(rbac, access_of(world.members["owner"]), "new@example.test",
                [role(world, "member")], send=False)
    db.session.commit()
    assert seats_taken(world) == ACTIVE_AND_PENDING + 1


def test_invitation_past_the_last_seat_is_a_409_naming_the_limit(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    limit_seats(app, ACTIVE_AND_PENDING + 1)
    owner = login(world.users["owner"], world.ws)
    r = owner.post("/settings/members/invite",
                   data={"email": "one@example.test", "roles": [role(world, "member").id]})
    assert r.status_code == 302, r.text
    r = owner.post("/settings/members/invite",
                   data={"email": "two@example.test", "roles": [role(world, "member").id]})
    assert r.status_code == 409
    assert "allows 11 seat(s)" in r.text and "11 are taken" in r.text
    assert seats_taken(world) == ACTIVE_AND_PENDING + 1
    assert db.session.scalar(sa.select(User.id).where(User.email == "two@example.test")) is None


def test_no_limit_for_a_plan_without_one(app: Flask, world: SimpleNamespace) -> None:
    limit_seats(app, None)
    for i in range(3):
        team.invite(rbac, access_of(world.members["owner"]), f"x{i}@example.test",
                    [role(world, "member")], send=False)
    db.session.commit()
    assert quotas.seat_usage(rbac, world.ws).limit is None


def test_reactivation_takes_a_seat(app: Flask, world: SimpleNamespace) -> None:
    owner = access_of(world.members["owner"])
    team.deactivate(rbac, owner, world.members["viewer"])
    db.session.commit()
    limit_seats(app, ACTIVE_AND_PENDING)
    # The freed seat goes to an invitation ...
    team.invite(rbac, owner, "late@example.test", [role(world, "member")], send=False)
    db.session.commit()
    # ... so the deactivated member cannot come back.
    viewer = db.session.get(rbac.models.Membership, world.members["viewer"].id)
    with pytest.raises(QuotaExceeded, match="allows 10 seat") as refused:
        team.reactivate(rbac, owner, viewer)
    db.session.rollback()
    assert refused.value.limit == "seats" and refused.value.status == 409
    assert db.session.get(rbac.models.Membership, world.members["viewer"].id).status == "inactive"


def test_seats_bind_the_system_context_and_plain_flushes(app: Flask, world: SimpleNamespace) -> None:
    limit_seats(app, ACTIVE_AND_PENDING)
    user = User(email="direct@example.test", name="Direct")
    db.session.add(user)
    db.session.flush()
    with rbac.system(), pytest.raises(QuotaExceeded):
        workspaces.add_member(rbac, world.ws, user, ["viewer"])
    db.session.rollback()
    assert seats_taken(world) == ACTIVE_AND_PENDING


def test_cli_invite_past_the_last_seat_fails_naming_the_limit(app: Flask, world: SimpleNamespace) -> None:
    limit_seats(app, ACTIVE_AND_PENDING)
    result = app.test_cli_runner().invoke(args=["rbac", "members", "invite", "--workspace", "acme",
                                                "--email", "cli@example.test", "--role", "member"])
    assert result.exit_code == 1
    assert "allows 10 seat(s)" in result.output
    assert seats_taken(world) == ACTIVE_AND_PENDING


def test_plan_page_shows_the_seats(app: Flask, world: SimpleNamespace, login: Any) -> None:
    limit_seats(app, 25)
    r = login(world.users["owner"], world.ws).get("/settings/plan")
    assert r.status_code == 200
    assert "Seats" in r.text and "10 of 25" in r.text


# -- record caps per role -------------------------------------------------------------------------


def rep_role(world: SimpleNamespace, cap: int | None) -> Any:
    """A custom role creating its own clients, capped at ``cap`` by the Owner."""
    r = custom_role(world, "Capped rep", [("clients", a, "own") for a in ("view", "create", "edit")])
    db.session.commit()
    quotas.set_cap(rbac, access_of(world.members["owner"]), r, "clients", cap)
    db.session.commit()
    return r


def create_client(membership: Any, name: str) -> None:
    with rbac.as_member(membership):
        db.session.add(Client(name=name))
        db.session.flush()


def test_a_capped_member_creates_up_to_the_cap_then_gets_a_409(app: Flask, world: SimpleNamespace) -> None:
    member = world.members["viewer"]
    give_role(member, rep_role(world, 2))
    db.session.commit()
    create_client(member, "first")
    create_client(member, "second")
    db.session.commit()
    with pytest.raises(QuotaExceeded) as refused:
        create_client(member, "third")
    db.session.rollback()
    assert refused.value.limit == "clients.max_records"
    assert "at most 2 clients" in refused.value.message
    with rbac.system():  # a trusted read: the rolled-back client is nowhere
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Client)
                                 .where(Client.name == "third")) == 0


def test_the_cap_is_a_409_on_the_demo_form(app: Flask, world: SimpleNamespace, login: Any) -> None:
    member = world.members["viewer"]
    give_role(member, rep_role(world, 0))
    db.session.commit()
    r = login(world.users["viewer"], world.ws).post("/clients/new", data={"name": "Over"})
    assert r.status_code == 409
    assert "at most 0 clients" in r.text


def test_an_uncapped_role_that_allows_create_lifts_the_cap(app: Flask, world: SimpleNamespace) -> None:
    member = world.members["viewer"]
    give_role(member, rep_role(world, 0))
    other = custom_role(world, "Free rep", [("clients", "create", "own"), ("clients", "view", "own")])
    give_role(member, other)
    db.session.commit()
    assert quotas.member_cap(rbac, db.session, member.id, "clients") is None
    create_client(member, "allowed")
    db.session.commit()


def _never_today() -> dict[str, list[str]]:
    """A condition that does not hold today (the world's workspace runs on UTC)."""
    days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    return {"weekdays": [days[(utcnow().weekday() + 3) % 7]]}


def test_a_department_role_caps_and_lifts_caps_as_an_assigned_one_does(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """A role given by the member's department counts like one given to them, while in force."""
    owner, support = access_of(world.members["owner"]), world.departments["support"]
    capped = rep_role(world, 0)
    roles.give_department_role(rbac, owner, support, capped)
    db.session.commit()
    viewer = login(world.users["viewer"], world.ws)
    over = viewer.post("/clients/new", data={"name": "Over"})
    assert over.status_code == 409 and "at most 0 clients" in over.text

    # An uncapped role lifts the cap when the department gives it in force, not outside it.
    free = custom_role(world, "Free rep", [("clients", "create", "own"),
                                           ("clients", "view", "own")])
    db.session.commit()
    row = roles.give_department_role(rbac, owner, support, free, condition=_never_today())
    db.session.commit()
    assert viewer.post("/clients/new", data={"name": "Still over"}).status_code == 409
    roles.remove_department_role(rbac, owner, row)
    roles.give_department_role(rbac, owner, support, free)
    db.session.commit()
    assert viewer.post("/clients/new", data={"name": "Allowed"}).status_code == 302


def test_an_uncapped_department_role_lifts_an_assigned_cap(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    give_role(world.members["viewer"], rep_role(world, 0))
    free = custom_role(world, "Free rep", [("clients", "create", "own"),
                                           ("clients", "view", "own")])
    db.session.commit()
    roles.give_department_role(rbac, access_of(world.members["owner"]),
                               world.departments["support"], free)
    db.session.commit()
    viewer = login(world.users["viewer"], world.ws)
    assert viewer.post("/clients/new", data={"name": "Allowed"}).status_code == 302


def test_the_highest_cap_applies_and_other_resources_are_free(app: Flask, world: SimpleNamespace) -> None:
    member = world.members["viewer"]
    give_role(member, rep_role(world, 1))
    wider = custom_role(world, "Wider rep", [("clients", "create", "own"), ("leads", "create", "own"),
                                             ("leads", "view", "own"), ("clients", "view", "own")])
    db.session.commit()
    quotas.set_cap(rbac, access_of(world.members["owner"]), wider, "clients", 3)
    give_role(member, wider)
    db.session.commit()
    assert quotas.member_cap(rbac, db.session, member.id, "clients") == 3
    with rbac.as_member(member):
        db.session.add(Lead(name="not capped"))
        db.session.flush()
    db.session.commit()


def test_the_owner_is_never_capped(app: Flask, world: SimpleNamespace) -> None:
    owner = world.members["owner"]
    rep_role(world, 0)
    assert quotas.member_cap(rbac, db.session, owner.id, "clients") is None
    create_client(owner, "owner's")
    db.session.commit()


@pytest.mark.parametrize(("key", "resource", "cap", "error"), [
    ("admin", "clients", 5, PermissionDenied),  # Admin keeps full access
    (None, "nothing", 5, ValidationError),
    (None, "members", 5, ValidationError),
    (None, "clients", -1, ValidationError),
    (None, "clients", "5", ValidationError),
    (None, "clients", True, ValidationError),
    (None, "clients", 2**31, ValidationError),
])
def test_bad_caps_are_refused(app: Flask, world: SimpleNamespace, key: str | None, resource: str,
                              cap: Any, error: type[Exception]) -> None:
    target = role(world, key) if key else custom_role(world, "Target", [("clients", "view", "own")])
    db.session.commit()
    with pytest.raises(error):
        quotas.set_cap(rbac, access_of(world.members["owner"]), target, resource, cap)
    db.session.rollback()
    assert rbac.models.RoleQuota.query.count() == 0


def test_only_roles_managers_set_caps(app: Flask, world: SimpleNamespace) -> None:
    target = custom_role(world, "Target", [("clients", "view", "own")])
    db.session.commit()
    with pytest.raises(PermissionDenied):
        quotas.set_cap(rbac, access_of(world.members["manager"]), target, "clients", 5)


def test_removing_a_cap(app: Flask, world: SimpleNamespace) -> None:
    r = rep_role(world, 4)
    assert [(c.resource, c.max_records) for c in quotas.caps_of(r)] == [("clients", 4)]
    quotas.set_cap(rbac, access_of(world.members["owner"]), r, "clients", None)
    db.session.commit()
    assert quotas.caps_of(r) == []


def test_a_create_in_a_workspace_without_caps_reads_no_caps_twice(app: Flask,
                                                                  world: SimpleNamespace) -> None:
    """The member's Access keeps which resources the workspace caps: none here, so a
    create after the first reads no cap and counts nothing."""
    member = world.members["viewer"]
    give_role(member, rep_role(world, None))
    db.session.commit()
    create_client(member, "first")
    db.session.commit()
    with sql_log() as seen:
        create_client(member, "second")
    db.session.commit()
    assert [s for s in seen if "rbac_role_quota" in s or "count(" in s.lower()] == []
    assert len([s for s in seen if s.lstrip().upper().startswith("INSERT INTO CLIENT")]) == 1


def test_a_cap_set_between_two_requests_binds_the_second(app: Flask, world: SimpleNamespace,
                                                         login: Any) -> None:
    """A cap moves the workspace's policy version, so no worker keeps "nothing is capped"."""
    member = world.members["viewer"]
    capped = rep_role(world, None)
    give_role(member, capped)
    db.session.commit()
    client = login(world.users["viewer"], world.ws)
    assert client.post("/clients/new", data={"name": "First"}).status_code == 302
    version = db.session.get(rbac.models.Workspace, world.ws.id).policy_version
    quotas.set_cap(rbac, access_of(world.members["owner"]), capped, "clients", 1)
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(rbac.models.Workspace, world.ws.id).policy_version > version
    over = client.post("/clients/new", data={"name": "Second"})
    assert over.status_code == 409 and "at most 1 clients" in over.text
    quotas.set_cap(rbac, access_of(world.members["owner"]), capped, "clients", None)
    db.session.commit()
    assert client.post("/clients/new", data={"name": "Third"}).status_code == 302


def test_a_cap_set_in_the_members_transaction_binds_its_later_creates(
        app: Flask, world: SimpleNamespace) -> None:
    """The Access in force kept "nothing is capped"; a cap flushed in the same transaction
    still binds the next create (the transaction changed the workspace's policy)."""
    member = world.members["viewer"]
    capped = rep_role(world, None)
    give_role(member, capped)
    db.session.commit()
    with rbac.as_member(member):
        db.session.add(Client(name="first"))
        db.session.flush()
        db.session.add(rbac.models.RoleQuota(role=capped, resource="clients", max_records=1))
        db.session.flush()
        db.session.add(Client(name="second"))
        with pytest.raises(QuotaExceeded):
            db.session.flush()
    db.session.rollback()
