"""Record conditions: a small declarative filter, never evaluated code.

A condition is a list of clauses ``{"field": ..., "op": ..., "value": ...}``
that must all hold. Each clause has a Python form (for ``can()`` on a loaded
record) and an SQL form (for the query filter). Both treat NULL the same way,
so that a clause is always plainly true or false, never SQL's unknown: this
keeps ``NOT`` (used for denies) and the Python evaluation in agreement.

========  ==========================  ================================
op        Python                      SQL
========  ==========================  ================================
eq        v is not None and v == x    col IS NOT NULL AND col = x
ne        v is None or v != x         col IS NULL OR col <> x
in        v is not None and v in xs   col IS NOT NULL AND col IN (xs)
lt / gt   v is not None and v < x     col IS NOT NULL AND col < x
is_null   (v is None) == x            col IS NULL / col IS NOT NULL
========  ==========================  ================================
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from .errors import InvalidCondition

OPERATORS: tuple[str, ...] = ("eq", "ne", "in", "lt", "gt", "is_null")

#: A validated clause: (field, op, value). Hashable so rules can be cached.
Clause = tuple[str, str, Any]


def _coerce(value: Any, python_type: type | None, field: str) -> Any:
    """Convert a JSON value to the column's Python type, or refuse it."""
    if value is None:
        raise InvalidCondition(f"condition on {field!r}: value must not be null (use is_null)")
    if python_type is None or isinstance(value, python_type) and not isinstance(value, bool):
        return value
    try:
        if python_type is bool:
            if isinstance(value, bool):
                return value
            raise ValueError
        if python_type is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if python_type in (float, decimal.Decimal):
            if isinstance(value, bool):
                raise ValueError
            return python_type(str(value)) if python_type is decimal.Decimal else float(value)
        if python_type is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if python_type is dt.date:
            return dt.date.fromisoformat(str(value))
        if python_type is dt.datetime:
            return dt.datetime.fromisoformat(str(value))
    except (TypeError, ValueError, decimal.InvalidOperation):
        raise InvalidCondition(
            f"condition on {field!r}: {value!r} is not a valid {python_type.__name__}") from None
    return value


def _python_type(column: Any) -> type | None:
    try:
        return column.type.python_type  # type: ignore[no-any-return]
    except (NotImplementedError, AttributeError):
        return None


def validate(model: type, raw: Iterable[Mapping[str, Any]] | None) -> tuple[Clause, ...]:
    """Check clauses against ``model``'s columns and return them normalised.

    Raises :class:`InvalidCondition` naming the offending field or operator.
    """
    if not raw:
        return ()
    if isinstance(raw, Mapping):
        raw = [raw]
    columns = sa.inspect(model).columns
    out: list[Clause] = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise InvalidCondition("each condition must be an object with field, op and value")
        unknown = set(item) - {"field", "op", "value"}
        if unknown:
            raise InvalidCondition(f"unknown condition keys: {', '.join(sorted(unknown))}")
        field, op = item.get("field"), item.get("op", "eq")
        if not isinstance(field, str) or field not in columns:
            raise InvalidCondition(f"unknown field {field!r} for {model.__name__}")
        if op not in OPERATORS:
            raise InvalidCondition(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
        ptype = _python_type(columns[field])
        value = item.get("value")
        if op == "is_null":
            if not isinstance(value, bool):
                value = True if value is None else value
            if not isinstance(value, bool):
                raise InvalidCondition(f"condition on {field!r}: is_null takes true or false")
        elif op == "in":
            if not isinstance(value, list) or not value:
                raise InvalidCondition(f"condition on {field!r}: 'in' takes a non-empty list")
            value = tuple(_coerce(v, ptype, field) for v in value)
        else:
            value = _coerce(value, ptype, field)
        out.append((field, op, value))
    return tuple(out)


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return value


def to_json(clauses: Iterable[Clause]) -> list[dict[str, Any]]:
    """Return clauses in their stored JSON form."""
    out = []
    for field, op, value in clauses:
        # The items of an ``in`` list need the same conversion as a single
        # value: a date or Decimal left inside the list made the grant
        # impossible to store (TypeError from the JSON column at flush).
        if isinstance(value, tuple):
            value = [_json_value(v) for v in value]
        else:
            value = _json_value(value)
        out.append({"field": field, "op": op, "value": value})
    return out


def matches(record: Any, clauses: Iterable[Clause]) -> bool:
    """Evaluate clauses against a loaded record (all must hold)."""
    for field, op, expected in clauses:
        v = getattr(record, field)
        if op == "eq":
            ok = v is not None and v == expected
        elif op == "ne":
            ok = v is None or v != expected
        elif op == "in":
            ok = v is not None and v in expected
        elif op == "lt":
            ok = v is not None and v < expected
        elif op == "gt":
            ok = v is not None and v > expected
        else:  # is_null
            ok = (v is None) == expected
        if not ok:
            return False
    return True


def to_sql(model: Any, clauses: Iterable[Clause]) -> sa.ColumnElement[bool]:
    """Return the SQL form of clauses for ``model`` (a class or an alias)."""
    parts: list[sa.ColumnElement[bool]] = []
    for field, op, expected in clauses:
        col = getattr(model, field)
        if op == "eq":
            parts.append(sa.and_(col.is_not(None), col == expected))
        elif op == "ne":
            parts.append(sa.or_(col.is_(None), col != expected))
        elif op == "in":
            parts.append(sa.and_(col.is_not(None), col.in_(list(expected))))
        elif op == "lt":
            parts.append(sa.and_(col.is_not(None), col < expected))
        elif op == "gt":
            parts.append(sa.and_(col.is_not(None), col > expected))
        else:
            parts.append(col.is_(None) if expected else col.is_not(None))
    if not parts:
        return sa.true()
    return parts[0] if len(parts) == 1 else sa.and_(*parts)


def describe(clauses: Iterable[Clause]) -> str:
    """Return clauses as readable text, e.g. ``stage in (won, lost)``."""
    words = {"eq": "=", "ne": "≠", "in": "in", "lt": "<", "gt": ">"}
    parts = []
    for field, op, value in clauses:
        if op == "is_null":
            parts.append(f"{field} is {'empty' if value else 'set'}")
        elif op == "in":
            parts.append(f"{field} in ({', '.join(map(str, value))})")
        else:
            parts.append(f"{field} {words[op]} {value}")
    return " and ".join(parts)
