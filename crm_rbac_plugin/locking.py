"""Taking rows one transaction at a time, the same way on PostgreSQL and SQLite.

A decision that reads a row, judges it and then writes (an approval counting
the votes, a reviewer deciding an item, the reminder marking a period sent)
must not run twice on one state. ``SELECT ... FOR UPDATE`` does that on
PostgreSQL only: SQLite has no row locks, and its reads run outside the
database's write lock, so two transactions read the same state and both
act on it. :func:`write_lock` writes the rows unchanged instead: PostgreSQL
locks each of them, SQLite takes its write lock; a concurrent transaction
waits there, then reads what this one committed.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

__all__ = ["write_lock"]


def write_lock(session: Session, model: Any, *where: Any) -> None:
    """Lock the rows of ``model`` that ``where`` selects until the transaction ends.

    Each row's primary key is written as it is, in the session's
    transaction, past the ORM (no object changes, no flush). Read the rows
    after this call, with ``populate_existing`` for objects already loaded.
    """
    table = sa.inspect(model).local_table
    key = next(iter(table.primary_key.columns))
    session.connection().execute(sa.update(table).where(*where).values({key.name: key}))
