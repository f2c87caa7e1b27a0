"""Two invitations racing for the last seat: exactly one wins (PostgreSQL, and SQLite
in a database file).

Each round leaves one seat free; the Owner and the Admin (two clients, one
thread each, two database connections) invite two new addresses at the same
moment. The quota check writes the workspace row before it counts, so the
second transaction waits for the first to commit, counts its member, and is
refused with a 409: the workspace never holds more seats than its plan
allows. The same holds for a member's two creates racing for the last
record of their cap (the membership row is written first).
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Client
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import quotas
from tests.rbac_helpers import access_of, custom_role, give_role
from tests.security.test_concurrency import race
from tests.test_settings_ui import role

ROUNDS = int(os.environ.get("RBAC_RACE_ROUNDS", "5"))


#: On SQLite, a database file of the module's own (see ``database_url``).
pytestmark = pytest.mark.sqlite_file


def seats_used(world: SimpleNamespace) -> int:
    db.session.expire_all()
    return quotas.seat_usage(rbac, world.ws).used


def test_two_invitations_for_the_last_seat(app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    admin = login(world.users["admin"], world.ws)
    member_role = role(world, "member").id
    for n in range(ROUNDS):
        used = seats_used(world)
        app.config["RBAC_PLAN_SEATS"] = {"enterprise": used + 1}
        statuses, errors = race(
            lambda: owner.post("/settings/members/invite",
                               data={"email": f"a{n}@example.test", "roles": [member_role]}),
            lambda: admin.post("/settings/members/invite",
                               data={"email": f"b{n}@example.test", "roles": [member_role]}))
        assert not errors, errors
        assert sorted(statuses) == [302, 409]
        assert seats_used(world) == used + 1


def test_two_creates_for_the_last_record_of_a_cap(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    rep = custom_role(world, "Capped rep", [("clients", a, "own") for a in ("view", "create")])
    give_role(world.members["viewer"], rep)
    db.session.commit()
    first, second = login(world.users["viewer"], world.ws), login(world.users["viewer"], world.ws)
    owned = sa.select(sa.func.count()).select_from(Client).where(
        Client.owner_id == world.users["viewer"].id)
    for n in range(ROUNDS):
        # One place left under the cap, two creates at once.
        quotas.set_cap(rbac, access_of(world.members["owner"]), rep, "clients", n + 1)
        db.session.commit()
        statuses, errors = race(lambda: first.post("/clients/new", data={"name": f"a{n}"}),
                                lambda: second.post("/clients/new", data={"name": f"b{n}"}))
        assert not errors, errors
        assert sorted(statuses) == [302, 409]
        db.session.expire_all()
        with rbac.system():
            assert db.session.scalar(owned) == n + 1
