"""Extension objects of the demo CRM, created unbound (app-factory pattern)."""

from __future__ import annotations

from typing import Any

from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()
csrf = CSRFProtect()
mail = Mail()
migrate = Migrate()


#: What every SQLite connection runs first. Foreign keys: enforced (and their ON
#: DELETE rules applied) as on PostgreSQL. The write-ahead log: readers do not
#: wait for a writer (several gunicorn workers on one file), and a commit appends
#: each page it changed to the log once instead of copying the page to a
#: rollback journal created and deleted at every transaction; with it,
#: ``synchronous=NORMAL`` syncs the disk at checkpoints, not at every commit, and
#: a crash or power loss may lose the last transactions but never corrupts the
#: file. An in-memory database keeps its own journal (the pragma answers
#: ``memory``). The log needs shared memory: a database file on a network
#: filesystem is not supported.
SQLITE_PRAGMAS = ("foreign_keys=ON", "journal_mode=WAL", "synchronous=NORMAL")


#: Seconds an SQLite connection waits for another's write lock before "database is
#: locked". SQLite has one writer at a time, and an import holds the lock for its
#: whole transaction (all rows or none: about ten seconds for 100,000 rows); with
#: pysqlite's default of 5 s, every other member's write (a form, a session's
#: last-seen time) failed with a 500 meanwhile. They wait for it instead.
SQLITE_BUSY_TIMEOUT = 60


def engine_options(uri: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """The engine options for ``uri``: an SQLite database waits
    :data:`SQLITE_BUSY_TIMEOUT` for the write lock unless ``options`` set a timeout."""
    options = dict(options or {})
    if uri.startswith("sqlite"):
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT,
                                   **options.get("connect_args", {})}
    return options


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """Set :data:`SQLITE_PRAGMAS` on each new SQLite connection."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        for pragma in SQLITE_PRAGMAS:
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()
