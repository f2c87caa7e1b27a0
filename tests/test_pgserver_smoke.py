"""Smoke test for tests/pgserver.py: start a throwaway PostgreSQL, create a DB, query it."""

import os

import pytest
import sqlalchemy as sa

from tests.pgserver import PostgresServer, pg_available, pg_disabled

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.mark.postgres
def test_throwaway_postgres_server_roundtrip():
    if pg_disabled():  # explicit opt-out
        pytest.skip("PostgreSQL disabled by RBAC_TEST_NO_PG=1")
    if not pg_available():
        reason = "PostgreSQL server binaries (/usr/lib/postgresql/*/bin) or 'postgres' OS user missing"
        if IN_CI:  # .ci/run installs postgresql-15: a missing server is a failure there
            pytest.fail(f"PostgreSQL unavailable in CI: {reason}")
        pytest.skip(reason)

    with PostgresServer() as pg:
        assert pg.url.startswith("postgresql+psycopg://")
        url = pg.create_database("rbac_smoke")
        assert url.endswith("/rbac_smoke")
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                assert conn.execute(sa.text("select 1")).scalar_one() == 1
                assert conn.execute(sa.text("select current_database()")).scalar_one() == "rbac_smoke"
                version = conn.execute(sa.text("show server_version_num")).scalar_one()
                if not os.environ.get("RBAC_TEST_PG_URL"):
                    assert int(version) // 10000 >= 15
        finally:
            engine.dispose()
        datadir = pg.datadir  # None when using an external RBAC_TEST_PG_URL server
        if not os.environ.get("RBAC_TEST_PG_URL"):
            assert datadir and os.path.isdir(datadir)
    # stopped and its temp dir removed
    assert pg.datadir is None
    assert datadir is None or not os.path.exists(datadir)
