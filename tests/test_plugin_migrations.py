"""The plugin's ``rbac`` Alembic branch, as a host includes it, and its constraint names.

A small host (``tests/migrhost``: its own ``db`` with its own naming
convention, users keyed by a UUID string, a history that creates only the
user table) adds the branch with ``migrate.configure(include_branch)``,
upgrades its own branch and then ``rbac@head``, and ends with the plugin's
tables exactly as :func:`~crm_rbac_plugin.models.define_models` declares
them, on SQLite (batch mode) and PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from crm_app.extensions import db as demo_db
from tests.migrhost import create_app
from tests.migrhost import db as host_db

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_TABLES = sorted(t.name for t in host_db.metadata.sorted_tables if t.name.startswith("rbac_"))
PREFIXES = {sa.PrimaryKeyConstraint: "pk_", sa.ForeignKeyConstraint: "fk_",
            sa.UniqueConstraint: "uq_", sa.CheckConstraint: "ck_", sa.Index: "ix_"}
#: Unique constraints of the plugin's tables that do not include ``workspace_id``:
UNIQUE_WITHOUT_WORKSPACE = {
    # The workspace itself: its slug names it in URLs, across all workspaces.
    "uq_rbac_workspace_slug",
    # A token is looked up by its hash alone, before its workspace is known.
    "uq_rbac_api_token_token_hash",
    # Rows of a parent that lies in one workspace (a role, an agreement): the
    # parent's key already scopes them.
    "uq_rbac_grant_role_id",
    "uq_rbac_field_rule_role_id",
    "uq_rbac_role_quota_role_id",
    "uq_rbac_sharing_permission_agreement_id",
    # Account protection belongs to the account, not to a workspace: one TOTP
    # credential per user, a session found by its cookie's hash, a throttle
    # count found by its key (a hashed address or an IP) before any sign-in.
    "uq_rbac_mfa_credential_user_id",
    "uq_rbac_session_sid_hash",
    # A member's notifications and channels: the membership lies in one workspace.
    "uq_rbac_notification_membership_id",
    "uq_rbac_notification_preference_membership_id",
    "uq_rbac_sign_in_throttle_key",
    # Approvals: a decision lies in its request's workspace; a download link
    # is found by its token's hash alone, then checked against its requester.
    "uq_rbac_approval_decision_request_id",
    "uq_rbac_approval_request_download_hash",
    # The addresses a member signed in from: the membership lies in one workspace.
    "uq_rbac_alert_seen_address_membership_id",
    # An attachment's storage key is generated at random and names its bytes
    # in the storage, which knows no workspace.
    "uq_rbac_attachment_storage_key",
    # A profile picture belongs to the account (one per user), not to a workspace.
    "uq_rbac_profile_picture_user_id",
}


@pytest.fixture
def host(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Flask]:
    """The host app on an empty database, with its migrations directory in ``tmp_path``."""
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    for name in ("env.py", "alembic.ini", "script.py.mako"):
        shutil.copy(ROOT / "migrations" / name, migrations / name)
    shutil.copytree(ROOT / "tests" / "migrhost" / "versions", migrations / "versions")
    url = (str(request.getfixturevalue("pg_url")) if backend == "postgresql"
           else f"sqlite:///{tmp_path / 'host.db'}")
    app = create_app(url, str(migrations))
    with app.app_context():
        yield app
        leftover = sa.MetaData()
        leftover.reflect(host_db.engine)
        leftover.drop_all(host_db.engine)
        host_db.engine.dispose()


def schema_diff() -> list[object]:
    with host_db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, host_db.metadata))


def test_host_upgrades_its_branch_then_rbac(host: Flask) -> None:
    flask_migrate.upgrade(revision="host@head")
    flask_migrate.upgrade(revision="rbac@head")
    assert schema_diff() == []
    if host_db.engine.dialect.name == "sqlite":
        declared = {t.name for t in host_db.metadata.sorted_tables
                    if t.dialect_kwargs.get("sqlite_autoincrement")}
        assert "rbac_approval_request" in declared
        assert autoincrement_tables(host_db.engine) == declared
    # Autogenerate (batch mode on SQLite) finds nothing to add on the host's branch.
    flask_migrate.migrate(message="nothing to add", head="host@head")
    [script] = Path(host.extensions["migrate"].directory, "versions").glob("*_nothing_to_add.py")
    assert "op." not in script.read_text()
    flask_migrate.downgrade(revision="rbac@base")
    assert set(sa.inspect(host_db.engine).get_table_names()) == {"account", "alembic_version"}


def test_rbac_branch_stops_before_the_user_table_exists(
        host: Flask, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):  # Flask-Migrate logs the error, then exits
        flask_migrate.upgrade(revision="rbac@head")
    assert "upgrade your own migrations first" in capfd.readouterr().err
    assert not set(PLUGIN_TABLES) & set(sa.inspect(host_db.engine).get_table_names())


@pytest.mark.parametrize("table", PLUGIN_TABLES)
def test_every_constraint_and_index_has_the_plugins_name(table: str) -> None:
    """Names follow the plugin's rule whatever the host's naming convention."""
    host_table = host_db.metadata.tables[table]
    items = [*host_table.constraints, *host_table.indexes]
    assert items
    for item in items:
        assert isinstance(item.name, str)
        assert item.name.startswith(PREFIXES[type(item)] + table), item.name
        assert len(item.name) <= 63
    # The same names as in the demo app, whose convention differs and whose user table is "user".
    demo_table = demo_db.metadata.tables[table]
    assert ({str(i.name).replace("_account", "_user") for i in items}
            == {i.name for i in [*demo_table.constraints, *demo_table.indexes]})


def test_unique_constraints_are_per_workspace() -> None:
    uniques = [c for table in PLUGIN_TABLES
               for c in host_db.metadata.tables[table].constraints
               if isinstance(c, sa.UniqueConstraint)]
    uniques += [i for table in PLUGIN_TABLES
                for i in host_db.metadata.tables[table].indexes if i.unique]
    assert uniques
    without = {c.name for c in uniques if "workspace_id" not in c.columns}
    assert without == UNIQUE_WITHOUT_WORKSPACE


def autoincrement_tables(engine: sa.Engine) -> set[str]:
    """The SQLite tables declared ``AUTOINCREMENT`` (their ids are never given again)."""
    with engine.connect() as conn:
        return {name for name, sql in conn.execute(sa.text(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table'")) if "AUTOINCREMENT" in sql}
