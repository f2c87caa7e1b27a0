"""End a request's read-only transaction with COMMIT on PostgreSQL with psycopg 3.

psycopg 3 prepares a statement on the server once it has run it
``prepare_threshold`` times (5) on a connection, so PostgreSQL stops
planning it again. But it forgets every prepared statement at each
ROLLBACK (a rollback may undo the objects a statement refers to), and
Flask-SQLAlchemy ends every request by closing its session, which rolls
the transaction back. So on an unchanged web app PostgreSQL plans every
statement of every request: the benchmark's member lookup, for one,
spends more time being planned than being run.

A transaction that wrote nothing ends the same way with COMMIT as with
ROLLBACK, and COMMIT keeps the prepared statements. So after each request
(``teardown_request``, before Flask-SQLAlchemy closes the session) the
open transaction of ``db.session`` is committed when all of these hold:

* the request raised nothing;
* the session holds no pending change (``new``, ``dirty``, ``deleted``);
* PostgreSQL itself says the transaction wrote nothing:
  ``txid_current_if_assigned()`` is NULL until a transaction writes (an
  INSERT, UPDATE, DELETE or DDL, through the ORM, Core, raw SQL or a
  function), so no write is ever committed by this hook;
* the session has one database (no ``SQLALCHEMY_BINDS``), so the check
  covers every connection the commit would end.

Anything else is left as it was, for Flask-SQLAlchemy to roll back. The
commit keeps the session's objects as they are (``expire_on_commit`` off
for it), as the rollback-free end of a request did before. A failing check
or commit is rolled back and never changes the response. Turned off with
``RBAC_COMMIT_READ_ONLY = False``; other databases and drivers are left
alone (SQLite caches its statements per connection whatever ends a
transaction).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from sqlalchemy.exc import SQLAlchemyError

from .config import setting

#: NULL until the current transaction writes; PostgreSQL 10 and later.
_WROTE = sa.text("SELECT txid_current_if_assigned() IS NULL")
#: The query filter has nothing to add to it.
_BYPASS = {"rbac_bypass": True}


def init_app(app: Flask, db: Any) -> None:
    """Register the hook on ``app`` when ``RBAC_COMMIT_READ_ONLY`` is on."""
    if setting("RBAC_COMMIT_READ_ONLY", app) and not app.config.get("SQLALCHEMY_BINDS"):
        app.teardown_request(lambda exc: end_read_only(db, exc))


def end_read_only(db: Any, exc: BaseException | None) -> bool:
    """Commit ``db.session``'s transaction if it wrote nothing; True when it did."""
    if exc is not None or not db.session.registry.has():
        return False
    session = db.session()
    if not session.in_transaction() or session.new or session.dirty or session.deleted:
        return False
    bind = session.get_bind()
    if bind.dialect.name != "postgresql" or bind.dialect.driver != "psycopg":
        return False
    expire = session.expire_on_commit
    try:
        if session.execute(_WROTE, execution_options=_BYPASS).scalar() is not True:
            return False
        session.expire_on_commit = False
        session.commit()
        return True
    except SQLAlchemyError:
        current_app.logger.warning("RBAC_COMMIT_READ_ONLY: ending a read-only transaction "
                                   "failed; it is rolled back", exc_info=True)
        session.rollback()
        return False
    finally:
        session.expire_on_commit = expire
