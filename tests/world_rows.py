"""The rows :func:`tests.conftest.build_world` writes, kept to be written back.

Building the world through the services costs 0.1-0.4 s, and about 2,600
tests ask for it. The first build in a process, on an empty database, is
read back table by table (:func:`take`); each later test whose app has the
same configuration gets the same rows written straight into its empty tables
(:func:`restore`), with the same ids, the same sequence positions and its
timestamps moved forward by the time since the build, so that a row is as
old as it would be had the world just been built. The objects of the
world's namespace are then loaded by primary key, in the state
``build_world`` leaves them in: committed and expired.

A database that is not empty when the world is asked for (a fixture wrote
first) gets a real build, and so does an app configured differently; nothing
is ever restored over rows it did not take.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac

#: Where a namespace object lives: its model and primary key.
Ref = tuple[type, Any]


@dataclass
class WorldRows:
    """One build of the world: rows by table, sequence positions, and the namespace by key."""

    tables: list[tuple[sa.Table, list[dict[str, Any]]]]
    sequences: list[tuple[str, int]]
    taken_at: float
    namespace: dict[str, Ref | dict[str, Ref]]


#: Builds kept in this process, by :func:`key`.
_kept: dict[tuple[Any, ...], WorldRows] = {}


def key(app: Flask) -> tuple[Any, ...]:
    """What a build depends on besides the code: the backend, the app's own settings and
    the extension's hooks and resources (a test may register more)."""
    settings = tuple(sorted((k, repr(v)) for k, v in app.config.items()
                            if k.startswith(("RBAC_", "CRM_"))))
    return (db.engine.dialect.name, settings, repr(vars(rbac.hooks)),
            tuple(r.name for r in rbac.registry))


def kept(app: Flask) -> WorldRows | None:
    return _kept.get(key(app))


def holding_rows(conn: sa.Connection) -> list[bool]:
    """For each of the app's tables (``db.metadata.sorted_tables``), whether it holds a
    row: one statement."""
    return list(conn.execute(sa.select(*(sa.exists(sa.select(sa.literal(1)).select_from(t))
                                         for t in db.metadata.sorted_tables))).one())


def is_empty() -> bool:
    """Whether every table of the app is empty."""
    with db.engine.connect() as conn:
        return not any(holding_rows(conn))


def take(app: Flask, world: SimpleNamespace) -> None:
    """Keep the rows of a world just built on an empty database."""
    namespace: dict[str, Ref | dict[str, Ref]] = {}
    for name, value in vars(world).items():
        if isinstance(value, dict):
            namespace[name] = {k: _ref(v) for k, v in value.items()}
        else:
            namespace[name] = _ref(value)
    with db.engine.connect() as conn:
        tables = [(t, [dict(r._mapping) for r in conn.execute(sa.select(t))])
                  for t in db.metadata.sorted_tables]
        sequences = _sequences(conn)
    _kept[key(app)] = WorldRows([(t, rows) for t, rows in tables if rows], sequences,
                                time.time(), namespace)


def restore(rows: WorldRows) -> SimpleNamespace:
    """Write ``rows`` into the app's empty tables and load the world's objects."""
    delta = dt.timedelta(seconds=time.time() - rows.taken_at)
    days = dt.timedelta(days=(dt.date.today() - dt.date.fromtimestamp(rows.taken_at)).days)
    postgres = db.engine.dialect.name == "postgresql"
    with db.engine.begin() as conn:
        # The rows were consistent when taken; the order of the tables is
        # not enough when two reference each other.
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica" if postgres
                             else "PRAGMA defer_foreign_keys = ON")
        for table, data in rows.tables:
            conn.execute(table.insert(), [_moved(table, row, delta, days) for row in data])
        _set_sequences(conn, rows.sequences)
    with rbac.system():
        # One statement per model fills the identity map, and get() then finds each
        # object there; ``loaded`` keeps them alive until then (the map holds them weakly).
        by_model: dict[type, list[Any]] = {}
        for refs in rows.namespace.values():
            for model, pk in (refs.values() if isinstance(refs, dict) else [refs]):
                by_model.setdefault(model, []).append(pk)
        loaded = [db.session.scalars(sa.select(model).where(
            sa.inspect(model).primary_key[0].in_(pks))).all() for model, pks in by_model.items()]
        world = SimpleNamespace(**{
            name: ({k: db.session.get(*ref) for k, ref in refs.items()} if isinstance(refs, dict)
                   else db.session.get(*refs))
            for name, refs in rows.namespace.items()})
        del loaded
        db.session.commit()  # expired, as build_world's last commit leaves them
    return world


def _ref(obj: Any) -> Ref:
    """The model and primary key of ``obj`` (read from its identity: no query)."""
    (pk,) = sa.inspect(obj).identity
    return type(obj), pk


def _moved(table: sa.Table, row: dict[str, Any], delta: dt.timedelta,
           days: dt.timedelta) -> dict[str, Any]:
    out = dict(row)
    for column in _time_columns(table):
        value = out.get(column)
        if isinstance(value, dt.datetime):
            out[column] = value + delta
        elif isinstance(value, dt.date) and days:
            out[column] = value + days
    return out


_time_columns_of: dict[sa.Table, tuple[str, ...]] = {}


def _time_columns(table: sa.Table) -> tuple[str, ...]:
    found = _time_columns_of.get(table)
    if found is None:
        found = _time_columns_of[table] = tuple(
            c.name for c in table.c if _python_type(c.type) in (dt.datetime, dt.date))
    return found


def _python_type(type_: Any) -> Any:
    try:
        return type_.python_type
    except NotImplementedError:
        return None


def _sequences(conn: sa.Connection) -> list[tuple[str, int]]:
    if conn.dialect.name == "postgresql":
        return [(name, int(value)) for name, value in conn.execute(sa.text(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename), last_value "
            "FROM pg_sequences WHERE last_value IS NOT NULL"))]
    has = conn.execute(sa.text(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")).first()
    if has is None:
        return []
    return [(name, int(seq)) for name, seq in conn.execute(
        sa.text("SELECT name, seq FROM sqlite_sequence"))]


def _set_sequences(conn: sa.Connection, sequences: list[tuple[str, int]]) -> None:
    if not sequences:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT setval(s.name, s.value) FROM unnest(CAST(:names AS text[]), "
                             "CAST(:values AS bigint[])) AS s(name, value)"),
                     {"names": [n for n, _ in sequences], "values": [v for _, v in sequences]})
        return
    conn.execute(sa.text("DELETE FROM sqlite_sequence"))
    conn.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
                 [{"name": n, "seq": s} for n, s in sequences])
