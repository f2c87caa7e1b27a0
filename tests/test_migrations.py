"""The Alembic history builds exactly the schema the models declare."""

from __future__ import annotations

from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from crm_app.extensions import db
from tests.conftest import make_app


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
            "rbac_certification_run", "rbac_workspace"} <= declared
    assert autoincrement_tables() == declared
    flask_migrate.downgrade(revision="0013_ids_never_reused")
    older = autoincrement_tables()
    assert "rbac_workspace" in older and "rbac_sharing_agreement" not in older
    flask_migrate.upgrade()
    assert autoincrement_tables() == declared
