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
* :func:`check_text`: refuse strings a database cannot store (lone UTF-16
  surrogates, which JSON escapes can carry, and NUL, which PostgreSQL text
  refuses).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app
from werkzeug.routing import IntegerConverter

from .errors import ValidationError

#: The largest id an INTEGER primary key holds on every backend (the plugin's
#: keys are INTEGER; PostgreSQL's INTEGER is 32-bit).
MAX_ID = 2**31 - 1

#: Raised by drivers for numbers they cannot bind or store.
OUT_OF_RANGE: tuple[type[BaseException], ...] = (OverflowError, sa.exc.DataError)


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` that matches only non-negative ids up to :data:`MAX_ID`."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


OUT_OF_RANGE_MESSAGE = "A value in the request is out of range or cannot be stored."


def _out_of_range_page(exc: Exception) -> Any:
    from .policy import Decision

    rbac = current_app.extensions["rbac"].rbac
    rbac.db.session.rollback()
    return rbac.refusal(Decision(False, OUT_OF_RANGE_MESSAGE), 400)


def refuse_out_of_range(bp: Blueprint) -> None:
    """Answer :data:`OUT_OF_RANGE` errors in ``bp``'s pages with the refusal page (400)."""
    for exc in OUT_OF_RANGE:
        bp.register_error_handler(exc, _out_of_range_page)



def check_text(value: Any, field: str = "body") -> None:
    """Refuse (ValidationError) any string in ``value`` that UTF-8 cannot encode."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError(f"{field} contains text that is not valid Unicode "
                                      "(a lone surrogate)", field=field) from None
            if "\x00" in item:
                raise ValidationError(f"{field} contains a NUL character", field=field)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
