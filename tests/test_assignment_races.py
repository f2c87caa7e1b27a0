"""Two role changes of one member at the same moment keep the member's invariants.

On PostgreSQL, and on SQLite in a database file (two connections, one write
lock). The Owner and an Admin, each through the API on a thread and a
connection of their own, change one member's roles together; the member's
row is locked before either reads what the member holds, so the second sees
the first: a segregation-of-duties pair is never held, and the member keeps
a role.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, workspaces
from tests.rbac_helpers import (
    access_of,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.security.test_concurrency import race, token
from tests.test_settings_ui import role

ROUNDS = 3

#: On SQLite, a database file of the module's own (see ``database_url``).
pytestmark = pytest.mark.sqlite_file


def held_role_ids(membership_id: int) -> set[int]:
    MR = rbac.models.MemberRole
    db.session.expire_all()
    return set(db.session.scalars(sa.select(MR.role_id).where(MR.membership_id == membership_id)))


def test_two_assignments_at_once_never_join_a_conflicting_pair(
        app: Flask, world: SimpleNamespace) -> None:
    owner_access = access_of(world.members["owner"])
    finance, member = role(world, "finance"), role(world, "member")
    roles.add_conflict(rbac, owner_access, finance, member)
    db.session.commit()
    viewer = world.members["viewer"].id
    pair = (finance.id, member.id)
    owner, admin = token(app, world, "owner"), token(app, world, "admin")
    for _ in range(ROUNDS):
        statuses, errors = race(
            lambda: owner.post(f"/members/{viewer}/roles", {"role_id": pair[0]}),
            lambda: admin.post(f"/members/{viewer}/roles", {"role_id": pair[1]}))
        assert not errors, errors
        assert sorted(statuses) == [201, 403], statuses
        held = held_role_ids(viewer)
        assert len(held & set(pair)) == 1, held
        MR = rbac.models.MemberRole
        db.session.execute(sa.delete(MR).where(MR.membership_id == viewer,
                                               MR.role_id.in_(pair)))
        db.session.commit()


def test_two_removals_at_once_leave_the_member_a_role(app: Flask,
                                                       world: SimpleNamespace) -> None:
    target = world.members["member2"]
    target_id = target.id
    owner, admin = token(app, world, "owner"), token(app, world, "admin")
    MR = rbac.models.MemberRole
    for _ in range(ROUNDS):
        workspaces.assign_role(rbac, target, role(world, "finance"))
        db.session.commit()
        rows = list(db.session.scalars(sa.select(MR.id).where(MR.membership_id == target.id)))
        assert len(rows) == 2
        statuses, errors = race(
            lambda: owner.delete(f"/members/{target_id}/roles/{rows[0]}"),
            lambda: admin.delete(f"/members/{target_id}/roles/{rows[1]}"))
        assert not errors, errors
        assert sorted(statuses) == [204, 409], statuses
        assert len(held_role_ids(target.id)) == 1
        if role(world, "member").id not in held_role_ids(target.id):
            db.session.execute(sa.delete(MR).where(MR.membership_id == target.id))
            workspaces.assign_role(rbac, target, role(world, "member"))
        else:
            db.session.execute(sa.delete(MR).where(MR.membership_id == target.id,
                                                   MR.role_id == role(world, "finance").id))
        db.session.commit()
