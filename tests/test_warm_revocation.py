"""A change made through one worker is enforced by another worker whose caches are warm.

Two app objects on one database stand for two worker processes: each has its
own access cache and security-policy cache (``app.extensions["rbac"]``). The
member signs in on worker B through the real login form and makes requests
there until B holds their access; the change is then made and committed
through worker A's services. B's very next request must answer from the
change: a revoked session is signed out, a deactivated member is refused,
and a role taken away no longer opens its records. SQLite (one file) and
PostgreSQL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.roles import assignments
from crm_rbac_plugin.security import sessions
from crm_rbac_plugin.team import lifecycle
from tests.conftest import build_world, empty_tables, make_app
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_sessions import sign_in


@contextlib.contextmanager
def two_workers(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                ids_of: Callable[[SimpleNamespace], SimpleNamespace]) -> Iterator[SimpleNamespace]:
    """Worker A (world built, its app context open) and worker B on one database;
    ``ids_of(world)`` names the world's rows the test needs (``ids``)."""
    if backend == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
    else:
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    a, b = make_app(url), make_app(url)
    with a.app_context():
        db.create_all()
        ids = ids_of(build_world())
        try:
            yield SimpleNamespace(a=a, b=b, ids=ids)
        finally:
            db.session.rollback()
            db.session.remove()
            empty_tables()
            db.engine.dispose()
            with b.app_context():
                db.engine.dispose()


@pytest.fixture
def workers(backend: str, request: pytest.FixtureRequest,
            tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Worker A (world built, changes made here, its app context open) and worker B."""
    def ids_of(world: SimpleNamespace) -> SimpleNamespace:
        return SimpleNamespace(member=world.members["member"].id, owner=world.members["owner"].id,
                               own_lead=world.leads["member"].id,
                               other_lead=world.leads["member2"].id,
                               member_user=world.users["member"].id)
    with two_workers(backend, request, tmp_path, ids_of) as pair:
        yield pair


def _membership(membership_id: int) -> object:
    db.session.expire_all()
    return db.session.get(rbac.models.Membership, membership_id)


def _warm(app: Flask, ids: SimpleNamespace, url: str) -> FlaskClient:
    """A client of ``app`` signed in as the member, after requests that fill its caches."""
    client = sign_in(app, "member@example.test")
    for _ in range(3):
        assert client.get(url).status_code == 200
    cached = app.extensions["rbac"].cache._data  # the worker holds the member's access
    assert ids.member in cached
    return client


def test_a_session_revoked_on_one_worker_ends_on_the_others_next_request(
        workers: SimpleNamespace) -> None:
    ids = workers.ids
    client = _warm(workers.b, ids, f"/leads/{ids.own_lead}")
    S = rbac.models.AuthSession
    [row_id] = db.session.scalars(sa.select(S.id).where(S.user_id == ids.member_user))
    assert sessions.revoke(rbac, row_id, by=None, reason="signed_out")
    db.session.commit()
    response = client.get("/api/v1/records/leads")
    assert response.status_code == 401
    assert response.json["error"] == "session_ended" and response.json["reason"] == "revoked"
    assert client.get(f"/leads/{ids.own_lead}").status_code == 302  # signed out: to the login


def test_a_member_deactivated_on_one_worker_is_refused_by_the_other(
        workers: SimpleNamespace) -> None:
    ids = workers.ids
    client = _warm(workers.b, ids, f"/leads/{ids.own_lead}")
    lifecycle.deactivate(rbac, rbac.access_for(ids.owner), _membership(ids.member))
    db.session.commit()
    assert client.get("/leads/").status_code == 403
    assert client.get(f"/leads/{ids.own_lead}").status_code in (403, 404)
    assert client.get("/api/v1/records/leads").status_code == 403


def test_a_role_taken_away_on_one_worker_closes_its_records_on_the_other(
        workers: SimpleNamespace) -> None:
    ids = workers.ids
    M = rbac.models
    admin = workspaces.role_by_key(rbac, _membership(ids.member).workspace, "admin")
    granted = workspaces.assign_role(rbac, _membership(ids.member), admin)
    db.session.commit()
    client = _warm(workers.b, ids, f"/leads/{ids.other_lead}")  # the Admin sees every lead
    assignment = db.session.scalar(sa.select(M.MemberRole).where(M.MemberRole.id == granted.id))
    assignments.remove_role(rbac, rbac.access_for(ids.owner), assignment)
    db.session.commit()
    assert client.get(f"/leads/{ids.other_lead}").status_code == 404
    assert client.get(f"/leads/{ids.own_lead}").status_code == 200  # the Member role stays
