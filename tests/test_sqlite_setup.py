"""The demo's SQLite connections: foreign keys on, a write-ahead log, readers that do
not wait for a writer (``crm_app.extensions.SQLITE_PRAGMAS``), and writers that wait
for a long write (an import) rather than fail (``SQLITE_BUSY_TIMEOUT``)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import sqlalchemy as sa

from crm_app.extensions import SQLITE_BUSY_TIMEOUT, db
from crm_app.models import Lead
from tests.conftest import app_with_tables, build_world, make_app


def _pragmas() -> tuple[object, ...]:
    connection = db.session.connection()
    return tuple(connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                 for name in ("foreign_keys", "journal_mode", "synchronous"))


def test_a_database_file_runs_with_a_write_ahead_log(tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'crm.db'}")
    with app.app_context():
        db.create_all()
        assert _pragmas() == (1, "wal", 1)  # synchronous 1: NORMAL
        db.session.remove()
        db.engine.dispose()


def test_an_in_memory_database_keeps_foreign_keys_and_its_own_journal() -> None:
    app = make_app("sqlite://")
    with app.app_context():
        assert _pragmas() == (1, "memory", 1)


def test_a_writer_commits_while_a_reader_is_reading(tmp_path: Path) -> None:
    """Two workers on one file: while one is inside a read, the other commits at once and
    the reader keeps its snapshot (a rollback journal would make the commit wait for
    the reader, then fail with "database is locked")."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    writer, reader = make_app(url), make_app(url)
    with writer.app_context():
        db.create_all()
        db.session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        db.session.execute(sa.text("INSERT INTO t VALUES (1)"))
        db.session.commit()
    with reader.app_context():
        engine = sa.create_engine(url)
        with engine.connect() as reading:
            reading.exec_driver_sql("BEGIN")
            assert reading.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
            with writer.app_context():
                quick = sa.create_engine(url, connect_args={"timeout": 0.2})
                with quick.begin() as writing:
                    writing.exec_driver_sql("INSERT INTO t VALUES (2)")
                quick.dispose()
            assert reading.exec_driver_sql("SELECT x FROM t").scalars().all() == [1]
            reading.exec_driver_sql("COMMIT")
            assert reading.exec_driver_sql("SELECT count(*) FROM t").scalar() == 2
        engine.dispose()
    for app in (writer, reader):
        with app.app_context():
            db.engine.dispose()


def test_a_connection_waits_for_the_write_lock_longer_than_pysqlites_default(
        tmp_path: Path) -> None:
    app = make_app(f"sqlite:///{tmp_path / 'crm.db'}")
    with app.app_context():
        timeout = db.session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar()
        assert timeout == SQLITE_BUSY_TIMEOUT * 1000 > 5000
        db.session.remove()
        db.engine.dispose()
    own = make_app(f"sqlite:///{tmp_path / 'crm.db'}",
                   SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"timeout": 0.5}})
    with own.app_context():  # a host's own timeout is kept
        assert db.session.connection().exec_driver_sql("PRAGMA busy_timeout").scalar() == 500
        db.session.remove()
        db.engine.dispose()


def test_a_form_posted_during_a_long_write_waits_for_it_instead_of_failing(
        tmp_path: Path) -> None:
    """Another worker holds the write lock for 12 s (as an import of 100,000 rows does),
    longer than two of pysqlite's 5 s waits (the request writes its session row, then
    the lead): the member's create waits, then succeeds."""
    path = tmp_path / "crm.db"
    with app_with_tables(f"sqlite:///{path}") as app:
        w = build_world()
        member = app.test_client(user=w.users["member"])
        with member.session_transaction() as sess:
            sess[app.config["RBAC_SESSION_KEY"]] = w.ws.id
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        holder.execute("BEGIN IMMEDIATE")
        release = threading.Timer(12, holder.execute, ("COMMIT",))
        release.start()
        start = time.monotonic()
        try:
            response = member.post("/leads/new", data={"name": "During", "status": "new",
                                                       "source": ""})
        finally:
            release.join()
            holder.close()
        assert time.monotonic() - start > 11
        assert response.status_code == 302, response.get_data(as_text=True)[:300]
        assert db.session.scalar(sa.select(Lead.id).where(Lead.name == "During")
                                 .execution_options(rbac_bypass=True)) is not None
