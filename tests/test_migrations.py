"""The Alembic history builds exactly the schema the models declare."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crm_app.accounting.models import Invoice
from crm_app.campaigns.models import Campaign
from crm_app.extensions import db
from crm_app.models import Client, Deal, Lead, Note, Task
from crm_app.rbac_setup import rbac
from tests.conftest import make_app

#: The CRM's records, named by id in the audit trail and in URLs.
CRM_MODELS = (Client, Lead, Deal, Task, Note, Invoice, Campaign)
CRM_TABLES = {model.__tablename__ for model in CRM_MODELS}


@pytest.fixture
def empty_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'migrations.db'}"


def test_upgrade_matches_models_and_downgrades(empty_url: str) -> None:
    app = make_app(empty_url)
    with app.app_context():
        flask_migrate.upgrade()
        with db.engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, db.metadata)
        assert diff == []
        check_never_reused_ids()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert {t.name for t in db.metadata.sorted_tables} <= tables
        flask_migrate.downgrade(revision="base")
        assert set(sa.inspect(db.engine).get_table_names()) <= {"alembic_version"}
        db.engine.dispose()


def autoincrement_tables() -> set[str]:
    """The SQLite tables declared ``AUTOINCREMENT`` (their ids are never given again)."""
    with db.engine.connect() as conn:
        return {name for name, sql in conn.execute(sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'")) if "AUTOINCREMENT" in sql}


def check_never_reused_ids() -> None:
    """On SQLite the history declares ``AUTOINCREMENT`` exactly where the models do
    (``NEVER_REUSED``), and the last step of it downgrades and upgrades again."""
    if db.engine.dialect.name != "sqlite":
        return
    declared = {t.name for t in db.metadata.sorted_tables
                if t.dialect_kwargs.get("sqlite_autoincrement")}
    assert {"rbac_sharing_agreement", "rbac_invitation", "rbac_approval_request", "rbac_alert",
            "rbac_certification_run", "rbac_workspace", *CRM_TABLES} <= declared
    assert autoincrement_tables() == declared
    flask_migrate.downgrade(revision="0013_ids_never_reused")
    older = autoincrement_tables()
    assert "rbac_workspace" in older and "rbac_sharing_agreement" not in older
    flask_migrate.upgrade()
    assert autoincrement_tables() == declared


@pytest.mark.parametrize("model", CRM_MODELS, ids=lambda model: model.__name__)
def test_a_deleted_newest_record_never_gives_its_id_to_the_next(world: SimpleNamespace,
                                                                 model: type) -> None:
    """The trail's "a file on clients #467" keeps naming that client once it is deleted:
    the next client gets a new id (SQLite: ``AUTOINCREMENT``; PostgreSQL: a sequence)."""
    def create() -> Any:
        record: Any = model(workspace_id=world.ws.id, **{model.__rbac_label__: "Newest"})
        db.session.add(record)
        db.session.commit()
        return record

    with rbac.system():
        newest = create()
        deleted_id = newest.id
        db.session.delete(newest)
        db.session.commit()
        assert create().id > deleted_id
