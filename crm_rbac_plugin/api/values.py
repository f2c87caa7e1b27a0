"""Column values as JSON for the records API.

The host's serializer (``@rbac.field_serializer``) sees each value first; it
returns a JSON-able value, or ``NotImplemented`` to leave the value to the
rules below, which cover the types SQLAlchemy columns load:

- ``None``, ``bool``, ``int``, ``str``: as they are; a ``float`` too, but NaN
  and the infinities (which JSON cannot hold) become ``"NaN"``,
  ``"Infinity"`` and ``"-Infinity"``;
- ``Decimal``: a string, so that no precision is lost to a JSON float
  (``"1000.50"``);
- an ``Enum`` member: its value when that is a string, finite number or
  boolean, else its name (a ``None`` value too: it would read as NULL);
- ``UUID``: its canonical string;
- ``datetime``, ``date``, ``time``: ISO 8601 (``isoformat()``);
  ``timedelta``: its length in seconds, a number;
- ``bytes`` (``LargeBinary``): standard base64 with padding;
- ``dict``, ``list``, ``tuple`` (JSON and ARRAY columns): their items by these
  same rules, keys as strings.

Any other type is written as ``str(value)`` with a warning in the log, once
per field and response: the member may see the field, and a page that
answers with the value's text beats a 500 for the whole list. A host that
wants another form registers a serializer.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import logging
import math
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

logger = logging.getLogger(__name__)

#: A host's serializer: ``func(value)`` returns a JSON-able value or ``NotImplemented``.
Serializer = Callable[[Any], Any]


class Encoder:
    """Turn one response's column values into JSON values.

    ``hook`` is the host's serializer (or None). ``warned`` keeps the fields
    already logged as falling back to ``str``, so a page of a hundred records
    logs each field once.
    """

    def __init__(self, hook: Serializer | None, resource: str) -> None:
        self.hook = hook
        self.resource = resource
        self.warned: set[str] = set()

    def field(self, name: str, value: Any) -> Any:
        """Return ``value`` of field ``name`` as a JSON value."""
        if self.hook is not None:
            hooked = self.hook(value)
            if hooked is not NotImplemented:
                value = hooked
        return self.value(name, value)

    def value(self, name: str, value: Any) -> Any:
        """Apply the default rules (see the module's docstring) to ``value``."""
        if value is None or (isinstance(value, (bool, str, int)) and not isinstance(value, enum.Enum)):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else _float_text(value)
        simple = _simple(value)
        if simple is not NotImplemented:
            return simple
        if isinstance(value, dict):
            return {str(k): self.value(name, v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(name, v) for v in value]
        if name not in self.warned:
            self.warned.add(name)
            logger.warning("records API: %s.%s holds a %s, written as str(); register "
                           "@rbac.field_serializer to choose its JSON form",
                           self.resource, name, type(value).__qualname__)
        return str(value)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def _simple(value: Any) -> Any:
    """The JSON form of a scalar type the rules name, or ``NotImplemented``."""
    if isinstance(value, enum.Enum):
        inner = value.value
        if isinstance(inner, (str, bool, int)):
            return inner
        if isinstance(inner, float) and math.isfinite(inner):
            return inner
        return value.name
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return NotImplemented
