"""What a condition builder shows of a model's columns: each field's label, kind of
value, choices and the operators that make sense for it.

The validation and evaluation of conditions live in :mod:`.conditions`; this
module only describes columns for pages and forms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .conditions import OPERATORS

#: The operators a builder offers per kind of field: ``lt``/``gt`` only where values have
#: an order a reader expects, never on a closed list of choices or on yes/no.
KIND_OPERATORS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("integer", "decimal", "number", "date", "datetime", "text"), OPERATORS),
    "choice": ("eq", "ne", "in", "is_null"),
    "boolean": ("eq", "is_null"),
}


@dataclass(frozen=True)
class FieldInfo:
    """A column as a condition builder shows it (``kind``: a key of :data:`KIND_OPERATORS`)."""

    name: str
    label: str
    kind: str
    choices: tuple[str, ...] = ()
    scale: int | None = None
    length: int | None = None
    timezone: bool = False

    @property
    def operators(self) -> tuple[str, ...]:
        return KIND_OPERATORS[self.kind]


def field_label(column: Any) -> str:
    """Return a column's label for people: ``info={"label": ...}``, else its name in words.

    ``close_date`` reads "Close date" and ``client_id`` "Client ID".
    """
    label = getattr(column, "info", {}).get("label")
    if isinstance(label, str) and label:
        return label
    key = str(column.key)
    words = (key[:-3] + " ID") if key.endswith("_id") else key
    return words.replace("_", " ").strip().capitalize().replace(" id", " ID")


def field_kind(column: Any) -> str | None:
    """Return the kind of value a condition on ``column`` takes, in :func:`_coerce`'s order
    (None: conditions cannot use the column)."""
    col_type = column.type
    if isinstance(col_type, sa.Boolean):
        return "boolean"
    if isinstance(col_type, sa.Integer):
        return "integer"
    if isinstance(col_type, sa.Float) or (isinstance(col_type, sa.Numeric)
                                          and not col_type.asdecimal):
        return "number"
    if isinstance(col_type, sa.Numeric):
        return "decimal"
    if isinstance(col_type, (sa.CHAR, sa.NCHAR)):
        return None
    if isinstance(col_type, sa.String):
        return "choice" if field_choices(column) else "text"
    if isinstance(col_type, sa.DateTime):
        return "datetime"
    if isinstance(col_type, sa.Date):
        return "date"
    return None


def field_choices(column: Any) -> tuple[str, ...]:
    """The closed list of values of a text column: its ``Enum`` values or ``info["choices"]``."""
    enums = getattr(column.type, "enums", None)
    if isinstance(column.type, sa.Enum) and enums:
        return tuple(enums)
    declared = getattr(column, "info", {}).get("choices")
    if isinstance(declared, (list, tuple)) and all(isinstance(v, str) for v in declared):
        return tuple(declared)
    return ()


def describe_field(column: Any) -> FieldInfo | None:
    """Return ``column`` as a builder shows it, or None if conditions cannot use it."""
    kind = field_kind(column)
    if kind is None:
        return None
    col_type = column.type
    return FieldInfo(
        name=str(column.key), label=field_label(column), kind=kind,
        choices=field_choices(column) if kind == "choice" else (),
        scale=getattr(col_type, "scale", None) if kind == "decimal" else None,
        length=getattr(col_type, "length", None) if kind in ("text", "choice") else None,
        timezone=bool(getattr(col_type, "timezone", False)) if kind == "datetime" else False)


def builder_fields(model: type, exclude: Iterable[str | None] = ()) -> dict[str, FieldInfo]:
    """The columns of ``model`` a builder offers, by name: not the primary key nor
    ``exclude`` (the workspace column means nothing inside one workspace)."""
    skipped = set(exclude)
    out: dict[str, FieldInfo] = {}
    for column in sa.inspect(model).columns:
        if column.primary_key or column.key in skipped:
            continue
        info = describe_field(column)
        if info is not None:
            out[info.name] = info
    return out
