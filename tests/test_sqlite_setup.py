"""The demo's SQLite connections: foreign keys on, a write-ahead log, and readers that do
not wait for a writer (``crm_app.extensions.SQLITE_PRAGMAS``)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from crm_app.extensions import db
from tests.conftest import make_app


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
