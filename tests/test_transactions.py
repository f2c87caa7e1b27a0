"""A request's read-only transaction ends with COMMIT on PostgreSQL (transactions.py).

The hook commits only what PostgreSQL says wrote nothing, so a write a view
leaves uncommitted (through a flush, Core or raw SQL) is still rolled back,
and psycopg keeps the prepared statements that a ROLLBACK makes it forget.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_rbac_plugin.transactions import end_read_only
from tests.conftest import app_with_tables, build_world

PREPARED = sa.text("SELECT count(*) FROM pg_prepared_statements")


def _ws_lead(w: SimpleNamespace, name: str) -> Lead:
    return Lead(workspace_id=w.ws.id, owner_id=w.users["owner"].id, name=name)


def test_a_read_only_transaction_is_committed_on_postgresql(app: Flask, world: SimpleNamespace,
                                                            backend: str) -> None:
    with app.test_request_context():
        db.session.execute(sa.select(Lead.id).execution_options(rbac_bypass=True)).all()
        committed = end_read_only(db, None)
        assert committed is (backend == "postgresql")
        if committed:
            assert not db.session().in_transaction()


@pytest.mark.parametrize("how", ["flush", "core", "raw"])
def test_a_write_left_uncommitted_is_never_committed(app: Flask, world: SimpleNamespace,
                                                     backend: str, how: str) -> None:
    with app.test_request_context():
        with db.session.no_autoflush, app.extensions["rbac"].rbac.system():
            if how == "flush":
                db.session.add(_ws_lead(world, "uncommitted"))
                db.session.flush()
            elif how == "core":
                db.session.execute(sa.update(Lead).values(name="uncommitted")
                                   .execution_options(rbac_bypass=True))
            else:
                db.session.connection().exec_driver_sql(
                    "UPDATE lead SET name = 'uncommitted'")
        assert end_read_only(db, None) is False
        db.session.rollback()
    with app.app_context():
        names = db.session.scalars(sa.select(Lead.name)
                                   .execution_options(rbac_bypass=True)).all()
    assert "uncommitted" not in names


def test_pending_changes_and_errors_are_left_alone(app: Flask, world: SimpleNamespace) -> None:
    with app.test_request_context():
        db.session.execute(sa.select(Lead.id).execution_options(rbac_bypass=True)).all()
        assert end_read_only(db, RuntimeError("the view failed")) is False
        lead = db.session.get(Lead, world.leads["member"].id, execution_options={
            "rbac_bypass": True})
        lead.name = "dirty"
        assert end_read_only(db, None) is False
        db.session.rollback()


@pytest.fixture
def pg_app(pg_url: str, request: pytest.FixtureRequest) -> Iterator[Flask]:
    with app_with_tables(pg_url, RBAC_COMMIT_READ_ONLY=request.param) as app:
        yield app


@pytest.mark.postgres
@pytest.mark.parametrize("pg_app", [True, False], indirect=True)
def test_prepared_statements_survive_read_requests(pg_app: Flask) -> None:
    w = build_world()
    client = pg_app.test_client(user=w.users["member"])
    with client.session_transaction() as sess:
        sess[pg_app.config["RBAC_SESSION_KEY"]] = w.ws.id
    for _ in range(8):  # psycopg prepares a statement at its fifth run
        assert client.get("/leads/").status_code == 200
    db.session.remove()
    with db.engine.connect() as conn:  # the pool hands back the requests' connection
        prepared = conn.execute(PREPARED).scalar()
    on = pg_app.config["RBAC_COMMIT_READ_ONLY"]
    assert (prepared > 0) is on, prepared
