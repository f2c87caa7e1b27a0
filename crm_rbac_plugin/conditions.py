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
never     False                       false
========  ==========================  ================================

Text is ordered by code point on both sides: ``str`` comparison in Python, ``COLLATE "C"`` on
PostgreSQL and ``COLLATE BINARY`` on SQLite in SQL (:class:`CodePointOrder`), whatever the collation.

Values are checked against the column when a condition is saved
(:func:`validate`): a value the column cannot hold (NaN, an infinity, an
integer past the column's range, more decimals than a Numeric's scale, text
longer than the column) would make the SQL fail for every reader, or compare
differently in Python and in SQL. A condition read back from the database goes
through :func:`stored`, which fails closed for that one rule (``never`` for an
allow, no condition for a deny) instead of failing the reader's request.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.visitors import InternalTraversal

from .errors import InvalidCondition

OPERATORS: tuple[str, ...] = ("eq", "ne", "in", "lt", "gt", "is_null")

#: A validated clause: (field, op, value). Hashable so rules can be cached.
Clause = tuple[str, str, Any]

#: The clause a stored allow rule's condition becomes when it no longer
#: validates (a value out of range, a dropped column...): it holds for no
#: record, in Python and in SQL alike, so the rule grants nothing.
NEVER: Clause = ("", "never", None)

#: The most values an ``in`` clause takes (each is a bound parameter of every filtered query).
IN_LIMIT = 1000

#: Bounds of the integer column types, the narrowest backend's (PostgreSQL).
_INT_BOUNDS: tuple[tuple[type[sa.types.TypeEngine[Any]], int], ...] = (
    (sa.SmallInteger, 2**15 - 1), (sa.BigInteger, 2**63 - 1), (sa.Integer, 2**31 - 1))
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]{1,40}")
_DECIMAL_TEXT = re.compile(r"[+-]?[0-9]{1,40}(\.[0-9]{1,40})?")
_DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _refuse(field: str, reason: str) -> InvalidCondition:
    return InvalidCondition(f"condition on {field!r}: {reason}")


def _to_int(value: Any, col_type: Any, field: str) -> int:
    """An integer the column can hold: JSON integers, integral floats, digit strings."""
    if isinstance(value, bool):
        raise _refuse(field, f"{value!r} is not a whole number")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        value = int(value)
    if not isinstance(value, int):
        raise _refuse(field, f"{value!r} is not a whole number")
    bound = next(b for kind, b in _INT_BOUNDS if isinstance(col_type, kind))
    if not -bound - 1 <= value <= bound:
        raise _refuse(field, f"{value} is out of range for this field "
                             f"({-bound - 1} to {bound})")
    return value


def _to_decimal(value: Any, col_type: Any, field: str) -> decimal.Decimal:
    """A finite decimal within the column's precision, with no more decimals than its scale:
    a value the column cannot hold exactly would compare differently in Python and in SQL."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, decimal.Decimal)):
        raise _refuse(field, f"{value!r} is not a number")
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise _refuse(field, f"{value!r} is not a number")
    number = decimal.Decimal(str(value) if isinstance(value, float) else value)
    if not number.is_finite():
        raise _refuse(field, f"{value!r} is not a finite number")
    scale, precision = col_type.scale, col_type.precision
    if scale is None:
        return number
    # Checked before quantizing, which fails past 100 digits (1e200): a 400, not a 500.
    digits = (precision if precision is not None else 99) - scale
    if number and number.adjusted() >= digits:
        raise _refuse(field, f"{value!r} is out of range for this field "
                             f"(at most {digits} digits before the point)")
    rounded = number.quantize(decimal.Decimal(1).scaleb(-scale), context=decimal.Context(prec=100))
    if number != rounded:
        raise _refuse(field, f"{value!r} has more decimals than the field holds "
                             f"(at most {scale})")
    return rounded


def _to_float(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, decimal.Decimal)):
        raise _refuse(field, f"{value!r} is not a number")
    if isinstance(value, str) and not _DECIMAL_TEXT.fullmatch(value):
        raise _refuse(field, f"{value!r} is not a number")
    try:
        number = float(value)
    except OverflowError:
        raise _refuse(field, f"{value!r} is out of range for this field") from None
    if not math.isfinite(number):
        raise _refuse(field, f"{value!r} is not a finite number")
    return number


def _to_text(value: Any, col_type: Any, field: str) -> str:
    """A string the column can hold and every backend can bind (no NUL, no lone surrogate)."""
    if not isinstance(value, str):
        raise _refuse(field, f"{value!r} is not text")
    if "\x00" in value:
        raise _refuse(field, "the text contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _refuse(field, "the text is not valid Unicode (a lone surrogate)") from None
    length = getattr(col_type, "length", None)
    if length is not None and len(value) > length:
        raise _refuse(field, f"the text is longer than the field holds ({length} characters)")
    enums = getattr(col_type, "enums", None)
    if isinstance(col_type, sa.Enum) and enums and value not in enums:
        raise _refuse(field, f"{value!r} is not one of {', '.join(enums)}")
    if isinstance(col_type, sa.Enum):
        _remember_enum(col_type)
    return value


def _to_date(value: Any, field: str) -> dt.date:
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or not _DATE_TEXT.fullmatch(value):
        raise _refuse(field, f"{value!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _refuse(field, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _to_datetime(value: Any, col_type: Any, field: str) -> dt.datetime:
    """A date and time whose time zone matches the column's (aware or naive).

    Python cannot order an aware value against a naive one, so a mismatch is
    refused here rather than failing when a record is checked.
    """
    if isinstance(value, str) and _DATE_TEXT.fullmatch(value[:10]):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            pass
    if not isinstance(value, dt.datetime):
        raise _refuse(field, f"{value!r} is not a date and time (YYYY-MM-DDTHH:MM:SS)")
    if (value.tzinfo is not None) != bool(getattr(col_type, "timezone", False)):
        raise _refuse(field, "the date and time must be given "
                             + ("with" if getattr(col_type, "timezone", False) else "without")
                             + " a time zone")
    # In UTC: a backend that keeps no zone (SQLite) stores and compares the wall clock.
    return value.astimezone(dt.UTC) if value.tzinfo is not None else value


def _coerce(value: Any, column: Any, field: str) -> Any:
    """Convert a JSON value to what ``column`` holds, or refuse it (InvalidCondition)."""
    if value is None:
        raise _refuse(field, "value must not be null (use is_null)")
    col_type = column.type
    if isinstance(col_type, sa.Boolean):
        if not isinstance(value, bool):
            raise _refuse(field, f"{value!r} is not true or false")
        return value
    if isinstance(col_type, sa.Integer):
        return _to_int(value, col_type, field)
    if isinstance(col_type, sa.Float) or (isinstance(col_type, sa.Numeric)
                                          and not col_type.asdecimal):
        return _to_float(value, field)
    if isinstance(col_type, sa.Numeric):
        return _to_decimal(value, col_type, field)
    if isinstance(col_type, (sa.CHAR, sa.NCHAR)):  # PostgreSQL pads them and ignores the blanks
        raise _refuse(field, "conditions on fixed-width text (CHAR) are not supported")
    if isinstance(col_type, sa.String):
        return _to_text(value, col_type, field)
    if isinstance(col_type, sa.DateTime):
        return _to_datetime(value, col_type, field)
    if isinstance(col_type, sa.Date):
        return _to_date(value, field)
    raise _refuse(field, "conditions on this field are not supported")


def is_empty(raw: Any) -> bool:
    """Whether ``raw`` is no condition: null, "" or []; ``0``, false or {} is checked (refused)."""
    return raw is None or (isinstance(raw, (str, list, tuple)) and not raw)


def validate(model: type, raw: Iterable[Mapping[str, Any]] | None) -> tuple[Clause, ...]:
    """Check clauses against ``model``'s columns and return them normalised.

    Every value must be one the column can hold: the right type, finite,
    within the column's integer range, precision and scale, length and time
    zone. Such a value binds on every backend and compares the same way in
    Python and in SQL. Raises :class:`InvalidCondition` naming the offending
    field or operator.
    """
    if is_empty(raw):
        return ()
    if isinstance(raw, Mapping):
        raw = [raw]
    if not isinstance(raw, (list, tuple)):
        raise InvalidCondition("a condition is a list of objects with field, op and value")
    columns = sa.inspect(model).columns
    return tuple(_clause(model, columns, item) for item in raw)


def _clause(model: type, columns: Any, item: Any) -> Clause:
    if not isinstance(item, Mapping):
        raise InvalidCondition("each condition must be an object with field, op and value")
    unknown = set(item) - {"field", "op", "value"}
    if unknown:
        raise InvalidCondition(f"unknown condition keys: {', '.join(sorted(map(str, unknown)))}")
    field, op = item.get("field"), item.get("op", "eq")
    if not isinstance(field, str) or field not in columns:
        raise InvalidCondition(f"unknown field {field!r} for {model.__name__}")
    if not isinstance(op, str) or op not in OPERATORS:
        raise InvalidCondition(f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}")
    column = columns[field]
    value = item.get("value")
    if op == "is_null":
        if not isinstance(value, bool):
            value = True if value is None else value
        if not isinstance(value, bool):
            raise _refuse(field, "is_null takes true or false")
        return (field, op, value)
    if op in ("lt", "gt") and isinstance(column.type, (sa.Enum, sa.Boolean)):
        raise _refuse(field, "a yes/no or enumerated field has no order to compare with lt or gt")
    if op == "in":
        if not isinstance(value, list) or not value:
            raise _refuse(field, "'in' takes a non-empty list")
        if len(value) > IN_LIMIT:  # every item is a bound parameter of each filtered query
            raise _refuse(field, f"'in' takes at most {IN_LIMIT} values")
        return (field, op, tuple(dict.fromkeys(_coerce(v, column, field) for v in value)))
    return (field, op, _coerce(value, column, field))


def stored(model: type, raw: Any, *, deny: bool = False) -> tuple[Clause, ...]:
    """Read a condition as stored, failing closed for this rule only.

    A stored condition that no longer validates (written past the service,
    a dropped column, a tighter rule) must neither break the reader's pages
    nor widen their access. An allow rule's condition becomes :data:`NEVER`
    (the rule grants nothing); a deny rule's condition is dropped, so the
    deny applies to every record in its scope: a deny that cannot say which
    records it spares spares none.
    """
    try:
        return validate(model, raw)
    except InvalidCondition:
        return () if deny else (NEVER,)


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
    """Evaluate clauses against a loaded record (all must hold).

    Text is ordered by code point, as :func:`to_sql` orders it.
    """
    for field, op, expected in clauses:
        if op == "never":
            return False
        v = _comparable(getattr(record, field))
        if isinstance(v, dt.datetime) and v.tzinfo is None and op != "is_null":
            expected = _naive_utc(expected)  # read back without its zone (SQLite)
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


#: Each Python enum's members as the columns validated against store them (their
#: names, or what the column's ``values_callable`` gives).
_ENUM_TEXT: dict[type, dict[Any, str]] = {}


def _remember_enum(col_type: Any) -> None:
    cls = getattr(col_type, "enum_class", None)
    if cls is not None and cls not in _ENUM_TEXT:
        members = list(cls)
        stored = (col_type.values_callable(cls) if col_type.values_callable
                  else [m.name for m in members])
        _ENUM_TEXT[cls] = dict(zip(members, stored, strict=True))


def _comparable(value: Any) -> Any:
    """``value`` as its column stores it: an enum member as the text the column holds.

    Read from what validation learnt of the enum, not from the record's class: the
    policy also judges a record's stored state, a plain namespace.
    """
    if not isinstance(value, enum.Enum):
        return value
    return _ENUM_TEXT.get(type(value), {}).get(value, value.name)


def _naive_utc(expected: Any) -> Any:
    if isinstance(expected, tuple):
        return tuple(_naive_utc(x) for x in expected)
    if isinstance(expected, dt.datetime) and expected.tzinfo is not None:
        return expected.astimezone(dt.UTC).replace(tzinfo=None)
    return expected


class CodePointOrder(ColumnElement[Any]):
    """A text expression that compares in code point order on every backend.

    Python orders ``str`` by code point; a database orders text by the
    column's collation, which on an ICU or libc locale puts "Mango" after
    "apple". PostgreSQL's ``"C"`` collation and SQLite's ``BINARY`` compare
    UTF-8 bytes, which is code point order, so ``lt``/``gt`` on text give the
    same answer in :func:`matches` and in :func:`to_sql`. Other dialects get
    the bare expression.
    """

    inherit_cache = True
    _traverse_internals = [("expr", InternalTraversal.dp_clauseelement)]

    def __init__(self, expr: Any) -> None:
        self.expr = expr.__clause_element__() if hasattr(expr, "__clause_element__") else expr
        self.type = self.expr.type


@compiles(CodePointOrder)
def _code_point_default(element: CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.expr, **kw)


@compiles(CodePointOrder, "postgresql")
def _code_point_postgresql(element: CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f'({compiler.process(element.expr, **kw)} COLLATE "C")'


@compiles(CodePointOrder, "sqlite")
def _code_point_sqlite(element: CodePointOrder, compiler: SQLCompiler, **kw: Any) -> str:
    return f"({compiler.process(element.expr, **kw)} COLLATE BINARY)"


def _ordered(col: Any) -> Any:
    """``col`` as ordering comparisons must see it (code point order for text)."""
    element = col.__clause_element__() if hasattr(col, "__clause_element__") else col
    return CodePointOrder(element) if isinstance(element.type, sa.String) else col


def _exact(col: Any) -> Any:
    """``col`` as equality must see it: text with a collation of its own (SQLite's
    ``NOCASE``, a case-insensitive ICU collation) compares by code point, as Python does."""
    element = col.__clause_element__() if hasattr(col, "__clause_element__") else col
    collated = isinstance(element.type, sa.String) and element.type.collation
    return CodePointOrder(element) if collated else col


def to_sql(model: Any, clauses: Iterable[Clause]) -> sa.ColumnElement[bool]:
    """Return the SQL form of clauses for ``model`` (a class or an alias)."""
    parts: list[sa.ColumnElement[bool]] = []
    for field, op, expected in clauses:
        if op == "never":
            return sa.false()
        col = getattr(model, field)
        if op == "eq":
            parts.append(sa.and_(col.is_not(None), _exact(col) == expected))
        elif op == "ne":
            parts.append(sa.or_(col.is_(None), _exact(col) != expected))
        elif op == "in":
            parts.append(sa.and_(col.is_not(None), _exact(col).in_(list(expected))))
        elif op == "lt":
            parts.append(sa.and_(col.is_not(None), _ordered(col) < expected))
        elif op == "gt":
            parts.append(sa.and_(col.is_not(None), _ordered(col) > expected))
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
        if op == "never":
            parts.append("(a condition that cannot be evaluated: matches no record)")
        elif op == "is_null":
            parts.append(f"{field} is {'empty' if value else 'set'}")
        elif op == "in":
            parts.append(f"{field} in ({', '.join(map(str, value))})")
        else:
            parts.append(f"{field} {words[op]} {value}")
    return " and ".join(parts)
