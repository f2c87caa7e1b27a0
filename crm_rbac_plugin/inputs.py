"""Guards against input that would otherwise reach the database as a 500.

* :class:`BoundedIntConverter`: Werkzeug's ``int`` converter accepts any
  length of digits; an id past the column's range then fails in the driver
  (``OverflowError`` on SQLite, a ``DataError`` on PostgreSQL, whose INTEGER
  stops at 2**31 - 1). This one matches only ids an INTEGER key can hold, so
  a larger one is a plain 404. A host opts in with ``app.url_map.converters["int"] = BoundedIntConverter``
  before registering its routes (the demo does).
* :data:`OUT_OF_RANGE`: the exceptions the plugin's blueprints answer with
  400 ("a number is out of range") for numbers that arrive in query strings
  or bodies.
* :func:`is_digits`: the test for an id or a count written in a request,
  ASCII digits only (``str.isdigit()`` also accepts "²", which ``int()``
  refuses, and other scripts' digits).
* :func:`check_text`: refuse strings a database cannot store (lone UTF-16
  surrogates, which JSON escapes can carry, and NUL, which PostgreSQL text
  refuses).
* :func:`refuse_unstorable_values`: the same refusal for every query and form
  value of every request, before any view reads them (the extension's
  ``before_request`` pass asks it), so no page form stores a NUL (a 500 on
  PostgreSQL, stored as given on SQLite).
* :func:`check_numbers` (a ``before_flush`` check): refuse a protected
  record whose ``Numeric`` value the column cannot hold exactly: more
  decimals than its scale, more digits than its precision, NaN or an
  infinity. SQLite stores ``1000.004`` in a ``Numeric(12, 2)`` column as
  given while the ORM reads back ``1000.00``, so SQL comparisons (the list
  filter, bulk statements) and Python ones (``can()``, the flush guard)
  would see different amounts. Refusing at the flush covers every writer at
  once: forms, the API, Flask-Admin, imports and scripts.
"""

from __future__ import annotations

import decimal
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Request
from werkzeug.routing import IntegerConverter

from .errors import ValidationError
from .policy import Decision
from .proxies import current_rbac, current_request
from .registry import Registry

#: The largest id an INTEGER primary key holds on every backend (the plugin's
#: keys are INTEGER; PostgreSQL's INTEGER is 32-bit).
MAX_ID = 2**31 - 1

#: Raised by drivers for numbers they cannot bind or store.
OUT_OF_RANGE: tuple[type[BaseException], ...] = (OverflowError, sa.exc.DataError)


def typed_key(column_type: Any, value: Any) -> Any:
    """``value`` as a primary key of ``column_type`` holds it, or None when no record
    can have it (not of the key's type, or an integer past what the column stores).

    URL converters may have typed it already (``<uuid:id>``); a text id from a
    form or a JSON body is converted.
    """
    try:
        python_type = column_type.python_type
    except NotImplementedError:  # a custom type: the database judges the value
        return value
    if not isinstance(value, python_type):
        try:
            value = python_type(value)
        except (TypeError, ValueError, ArithmeticError):
            return None
    if isinstance(value, int) and not isinstance(value, bool):
        largest = 2**63 - 1 if isinstance(column_type, sa.BigInteger) else MAX_ID
        if not 0 <= value <= largest:
            return None
    return value


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` that matches only non-negative ids up to :data:`MAX_ID`."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


OUT_OF_RANGE_MESSAGE = "A value in the request is out of range or cannot be stored."


def is_digits(text: str) -> bool:
    """Whether ``text`` is a non-empty run of the ASCII digits 0-9.

    ``str.isdigit()`` is also true of superscripts ("²"), which ``int()``
    refuses with a ``ValueError``, and of other scripts' digits (fullwidth
    "１"), which ``int()`` reads as a number nobody typed: ids, pages and
    counts in a request are ASCII.
    """
    return text.isascii() and text.isdigit()


def whole_number(args: Any, name: str, default: int, low: int, high: int) -> int:
    """The ASCII whole number ``args[name]`` within ``low..high``, ``default`` when absent.

    Anything else (a sign, blanks, another script's digits, a number out of
    range) is a :class:`ValidationError` naming ``name``: a page or a count
    is read as typed or refused, never guessed.
    """
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    if not (isinstance(raw, str) and is_digits(raw) and len(raw) <= 10 and low <= int(raw) <= high):
        raise ValidationError(f"{name} must be a whole number from {low} to {high}", field=name)
    return int(raw)


def _out_of_range_page(exc: Exception) -> Any:
    rbac = current_rbac
    rbac.db.session.rollback()
    return rbac.refusal(Decision(False, OUT_OF_RANGE_MESSAGE), 400)


def refuse_out_of_range(bp: Blueprint) -> None:
    """Answer :data:`OUT_OF_RANGE` errors in ``bp``'s pages with the refusal page (400)."""
    for exc in OUT_OF_RANGE:
        bp.register_error_handler(exc, _out_of_range_page)



def refuse_unstorable_text(bp: Blueprint) -> None:
    """Answer ``bp``'s requests carrying a value :func:`check_text` refuses with a 400 page.

    The extension's ``before_request`` pass asks :func:`refuse_unstorable_values`
    for every request of the app already; this is for a blueprint of another
    app that does not use the extension's pass.
    """
    bp.before_request(refuse_unstorable_values)


#: Methods that change nothing; any other is a write.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Methods that change state and carry a body (a form, JSON).
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def refuse_unstorable_values(req: Request | None = None) -> Any:
    """The 400 refusal page (or JSON) for a query or form value :func:`check_text`
    refuses, naming the field ("name contains a NUL character"); None otherwise.
    ``req``: the request, when the caller holds it (the extension's pass does).

    One check for every field of every form and filter of every page, the
    host's and Flask-Admin's included: PostgreSQL refuses a NUL in text (a
    500), SQLite stores it.
    """
    # A URL carries a NUL as %00 (its query is decoded with replacement characters,
    # so no lone surrogate comes from it): the query is parsed only when one is there,
    # since every request passes here.
    req = req if req is not None else current_request()
    query = req.query_string
    sources = [req.args] if b"%00" in query or b"\x00" in query else []
    if req.method in UNSAFE_METHODS:
        sources.append(req.form)
    for values in sources:
        for field, value in values.items(multi=True):
            try:
                check_text(value, field)
            except ValidationError as exc:
                return current_rbac.refusal(Decision(False, exc.message, field=exc.field), 400)
    return None


def check_text(value: Any, field: str = "body") -> None:
    """Refuse (ValidationError) any string in ``value`` that UTF-8 cannot encode or
    that holds a NUL, naming where it is: ``field``, or inside a JSON body its
    path (``name``, ``field_rules.deals``, ``permissions[0]``)."""
    stack: list[tuple[str, Any]] = [(field, value)]
    while stack:
        name, item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError(f"{name} contains text that is not valid Unicode "
                                      "(a lone surrogate)", field=name) from None
            if "\x00" in item:
                raise ValidationError(f"{name} contains a NUL character", field=name)
        elif isinstance(item, dict):
            for key, child in item.items():
                # The key goes on top, so it is checked before its path names anything.
                stack.append((str(key) if item is value else f"{name}.{key}", child))
                stack.append((f"a key of {name}", key))
        elif isinstance(item, list):
            stack.extend((f"{name}[{i}]", child) for i, child in enumerate(item))


def numeric_problem(value: Any, column_type: Any) -> str | None:
    """Why ``column_type`` (a ``Numeric``) cannot hold ``value`` exactly, or None if it can."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = decimal.Decimal(str(value) if isinstance(value, float) else value)
    except (TypeError, ValueError, decimal.InvalidOperation):
        return "is not a number"
    if not number.is_finite():
        return "must be a finite number"
    scale, precision = column_type.scale, column_type.precision
    if scale is None:
        return None
    whole = None if precision is None else precision - scale
    # Judged by its digits and exponent first: quantizing 1e400 to cents needs more
    # digits than any context holds (InvalidOperation).
    if whole is not None and number and number.adjusted() >= whole:
        return f"takes at most {whole} digits before the decimal point"
    exact = decimal.Context(prec=100)
    try:
        if number != number.quantize(decimal.Decimal(1).scaleb(-scale), context=exact):
            return f"takes at most {scale} decimals"
    except decimal.InvalidOperation:
        return f"takes at most {scale} decimals" if number.adjusted() < 0 else "is too large"
    if whole is not None and abs(number) >= decimal.Decimal(10) ** whole:
        return f"takes at most {whole} digits before the decimal point"
    return None


def _exact_numerics(model: type) -> list[tuple[str, Any]]:
    """The (attribute, type) of ``model``'s Numeric columns that hold decimals."""
    out = []
    for attr in sa.inspect(model).column_attrs:
        col_type = attr.columns[0].type
        if (isinstance(col_type, sa.Numeric) and not isinstance(col_type, sa.Float)
                and col_type.scale is not None):
            out.append((attr.key, col_type))
    return out


def check_numbers(registry: Registry, session: Any) -> None:
    """Refuse (ValidationError naming the field) a new or changed protected record
    holding a number its Numeric column cannot store exactly (see the module notes)."""
    for obj in (*session.new, *session.dirty):
        if registry.for_model(type(obj)) is None:
            continue
        values = sa.inspect(obj).dict
        for key, col_type in _exact_numerics(type(obj)):
            problem = numeric_problem(values.get(key), col_type)
            if problem is not None:
                raise ValidationError(f"{key} {problem}.", field=key)


def check_update_numbers(registry: Registry, model: Any, statement: Any, params: Any) -> None:
    """Refuse an ORM bulk UPDATE of a protected model that sets a Numeric column
    to a literal it cannot store exactly, as :func:`check_numbers` refuses a flush.

    Only literal values are checked: an SQL expression's result is the database's.
    """
    if model is None or registry.for_model(model) is None:
        return
    numerics = dict(_exact_numerics(model))
    if not numerics:
        return
    values: list[tuple[str, Any]] = []
    for col, value in (getattr(statement, "_values", None) or {}).items():
        if isinstance(value, sa.BindParameter):
            values.append((getattr(col, "key", str(col)), value.effective_value))
    if isinstance(params, dict):
        values.extend(params.items())
    for key, value in values:
        if key in numerics:
            problem = numeric_problem(value, numerics[key])
            if problem is not None:
                raise ValidationError(f"{key} {problem}.", field=key)


def check_unique_name(session: Any, model: Any, workspace_id: int, name: str,
                      exclude_id: int | None, noun: str) -> None:
    """Refuse (400 on ``name``) a name that another ``model`` row of the workspace
    holds, compared case-insensitively: two "Sales" roles could not be told apart."""
    clash = session.scalar(sa.select(model.id).where(
        model.workspace_id == workspace_id, sa.func.lower(model.name) == name.lower(),
        model.id != (exclude_id or -1)))
    if clash is not None:
        raise ValidationError(f"a {noun} named {name!r} already exists", field="name")

