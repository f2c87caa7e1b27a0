"""The role editor's condition builder: field / operator / value rows and stored conditions.

A matrix cell's condition is a list of rows, all of which must hold. Row ``n``
of the cell ``deals.view`` is the inputs ``cond__deals__view__<n>__field``,
``__op`` and ``__value``; "is one of" on a field with choices uses one checkbox
per choice, ``__pick__<k>``, whose value is the choice (distinct names, so
that a plain form post and a parser keeping one value per name agree). A row
whose field is "—" is no condition: that is how a row is removed without
JavaScript.

The rows read back into the JSON list the API takes and the grant stores
(``[{"field": "stage", "op": "in", "value": ["won", "lost"]}]``). Each row is
checked with :func:`..conditions.validate`, the service's own check, before
anything is saved, and a refusal comes back as a sentence naming the field
("Amount must be a number with at most 2 decimals."), never as the text of a
parser or of an exception.

Clauses the builder cannot show (a column it does not offer, a value outside
a field's choices, a stored condition that no longer validates) travel
unchanged, as JSON, in the cell's hidden ``cond__<resource>__<action>`` input
and are shown read-only; the ``__drop`` checkbox removes them. They are never
dropped silently: an allow whose condition vanished would widen the role.
The same input takes a JSON condition from a client that posts one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .. import conditions
from ..condition_fields import FieldInfo, builder_fields
from ..errors import InvalidCondition
from ..registry import Resource

#: The builder's operators: the stored ones, with ``is_null`` split in two.
BUILDER_OPS: dict[str, tuple[str, Any]] = {
    "eq": ("eq", None), "ne": ("ne", None), "in": ("in", None), "lt": ("lt", None),
    "gt": ("gt", None), "empty": ("is_null", True), "not_empty": ("is_null", False)}
_ORDER_WORDS = {"date": ("is before", "is after"), "datetime": ("is before", "is after"),
                "text": ("comes before (A–Z)", "comes after (A–Z)")}
#: Rows one cell may hold: a longer list is refused rather than read.
MAX_ROWS = 20
_ROW_KEY = re.compile(r"^(\d{1,3})__(field|op|value|pick__\d{1,3})$")
_NO_VALUE = ("empty", "not_empty")


def operator_label(op: str, kind: str | None = None) -> str:
    """A builder operator in words, for a field of ``kind`` (None: any field)."""
    if op in ("lt", "gt"):
        before, after = _ORDER_WORDS.get(kind or "", ("is less than", "is greater than"))
        return before if op == "lt" else after
    return {"eq": "is", "ne": "is not", "in": "is one of", "empty": "is empty",
            "not_empty": "is not empty"}[op]


def operators(info: FieldInfo | None) -> list[tuple[str, str]]:
    """The ``(key, words)`` operators a row offers for a field (every one when none is chosen)."""
    stored = info.operators if info is not None else conditions.OPERATORS
    return [(key, operator_label(key, info.kind if info else None))
            for key, (op, _) in BUILDER_OPS.items() if op in stored]


def fields_of(res: Resource) -> dict[str, FieldInfo]:
    """The fields a condition on ``res`` may test (none for a resource without a model)."""
    if res.model is None:
        return {}
    return builder_fields(res.model, exclude=(res.workspace_column,))


def field_json(fields: Mapping[str, FieldInfo]) -> dict[str, Any]:
    """The fields as conditions.js reads them: label, kind, operators, choices, input."""
    return {name: {"label": info.label, "kind": info.kind, "choices": list(info.choices),
                   "ops": operators(info), "input": input_attrs(info)}
            for name, info in fields.items()}


def input_attrs(info: FieldInfo | None) -> dict[str, str]:
    """The ``<input>`` attributes of a value typed for the field (text when unknown)."""
    if info is None:
        return {"type": "text"}
    if info.kind == "integer":
        return {"type": "number", "step": "1", "inputmode": "numeric"}
    if info.kind == "decimal":
        return {"type": "number", "inputmode": "decimal",
                "step": f"{10 ** -info.scale:.{info.scale}f}" if info.scale else "any"}
    if info.kind == "number":
        return {"type": "number", "step": "any", "inputmode": "decimal"}
    if info.kind == "date":
        return {"type": "date"}
    if info.kind == "datetime":
        return {"type": "datetime-local", "step": "1"}
    attrs = {"type": "text"}
    if info.length:
        attrs["maxlength"] = str(info.length)
    return attrs


@dataclass
class ClauseRow:
    """One row of the builder as shown: the field, the operator, the value(s), an error."""

    field: str = ""
    op: str = ""
    value: str = ""
    picks: tuple[str, ...] = ()
    error: str = ""


@dataclass
class CellCondition:
    """The builder rows of one cell, and the clauses it keeps as JSON (``raw``)."""

    rows: list[ClauseRow] = field(default_factory=list)
    raw: str = ""
    error: str = ""

    @property
    def raw_words(self) -> str:
        """The kept clauses in words ("stage in (won, lost)"), or as given when unreadable."""
        try:
            items = json.loads(self.raw)
            return conditions.describe(
                (i["field"], i["op"], tuple(i["value"]) if isinstance(i["value"], list)
                 else i["value"]) for i in items)
        except (ValueError, TypeError, KeyError):
            return self.raw

    @property
    def count(self) -> int:
        return len([r for r in self.rows if r.field]) + (1 if self.raw else 0)


# -- from a stored condition -------------------------------------------------------


def load(clauses: Any, fields: Mapping[str, FieldInfo]) -> CellCondition:
    """Rows for a stored condition; clauses the builder cannot show become ``raw``."""
    cell, raw = CellCondition(), []
    for clause in clauses or ():
        row = _row_of(clause, fields)
        if row is None:
            raw.append(clause)
        else:
            cell.rows.append(row)
    if raw:
        items = [{"field": f, "op": o, "value": list(v) if isinstance(v, tuple) else v}
                 for f, o, v in raw]
        cell.raw = json.dumps(items)
    return cell


def _row_of(clause: Any, fields: Mapping[str, FieldInfo]) -> ClauseRow | None:
    name, op, value = clause
    info = fields.get(name)
    if info is None or op not in info.operators:
        return None
    if op == "is_null":
        return ClauseRow(name, "empty" if value is not False else "not_empty")
    if op == "in":
        values = [_shown(v, info) for v in (value or ())]
        if info.kind == "choice":
            return ClauseRow(name, op, picks=tuple(values)) if set(values) <= set(
                info.choices) else None
        return None if any("," in v for v in values) else ClauseRow(name, op, ", ".join(values))
    shown = _shown(value, info)
    if info.kind == "choice" and shown not in info.choices:
        return None
    return ClauseRow(name, op, shown)


def _shown(value: Any, info: FieldInfo) -> str:
    """A stored value as its input shows it (an aware date and time in UTC, undecorated)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if info.kind == "datetime" and isinstance(value, str):
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
        return when.isoformat()
    return str(value)


# -- from a submitted form ---------------------------------------------------------


def read(data: Mapping[str, Any], prefix: str, fields: Mapping[str, FieldInfo]) -> CellCondition:
    """The rows and kept JSON submitted for the cell whose inputs start with ``prefix``.

    ``prefix`` is the cell's hidden input name (``cond__deals__view``).
    """
    found: dict[int, dict[str, str]] = {}
    start = prefix + "__"
    for key in data:
        match = _ROW_KEY.match(key[len(start):]) if key.startswith(start) else None
        if match:
            found.setdefault(int(match.group(1)), {})[match.group(2)] = str(data[key] or "")
    cell = CellCondition()
    for index in sorted(found):
        parts = found[index]
        picks = tuple(v for k, v in sorted(parts.items(), key=_pick_order)
                      if k.startswith("pick__") and v)
        cell.rows.append(ClauseRow(parts.get("field", "").strip(), parts.get("op", "").strip(),
                                   parts.get("value", "").strip(), picks))
    if not data.get(start + "drop"):
        cell.raw = str(data.get(prefix) or "").strip()
    return cell


def _pick_order(item: tuple[str, str]) -> int:
    """Checked choices in the order of the field's choices (``pick__<k>``)."""
    key = item[0]
    return int(key[6:]) if key.startswith("pick__") else -1


def to_condition(cell: CellCondition, res: Resource, fields: Mapping[str, FieldInfo],
                 where: str) -> list[dict[str, Any]] | None:
    """The cell's condition as the JSON list a grant stores, or None after marking errors.

    ``where`` names the cell in messages ("Deals: view"). Rows without a
    field are no condition. Each row is checked alone, so every bad row gets
    its own message.
    """
    out: list[dict[str, Any]] = []
    ok = True
    if cell.raw:
        kept = _kept(cell.raw, res)
        if kept is None:
            cell.error = (f"{where}: this condition cannot be read or does not fit the fields "
                          "of this resource; tick “Remove” to drop it.")
            ok = False
        else:
            out.extend(kept)
    chosen = [row for row in cell.rows if row.field]
    if len(chosen) > MAX_ROWS:
        cell.error = f"{where}: at most {MAX_ROWS} conditions per action."
        return None
    for row in chosen:
        clause = _clause(row, res, fields)
        if clause is None:
            ok = False
        else:
            out.append(clause)
    return out if ok else None


def _kept(raw: str, res: Resource) -> list[dict[str, Any]] | None:
    """The kept JSON clauses, or None when they do not parse or validate."""
    try:
        items = json.loads(raw)
        return conditions.to_json(conditions.validate(res.model, items)) if items else []  # type: ignore[arg-type]
    except (ValueError, TypeError, InvalidCondition):
        return None


def _clause(row: ClauseRow, res: Resource, fields: Mapping[str, FieldInfo],
            ) -> dict[str, Any] | None:
    """One row as a stored clause, or None with ``row.error`` set."""
    info = fields.get(row.field)
    if info is None:
        row.error = "Choose a field from the list."
        return None
    if not row.op:
        row.error = f"Choose an operator for {info.label}."
        return None
    if row.op not in BUILDER_OPS or BUILDER_OPS[row.op][0] not in info.operators:
        row.error = f"Choose an operator that applies to {info.label}."
        return None
    op, fixed = BUILDER_OPS[row.op]
    if row.op in _NO_VALUE:
        return {"field": info.name, "op": op, "value": fixed}
    value = _values(row, info) if op == "in" else _value(row.value, info)
    if value is None or value == []:
        row.error = _missing(info, op)
        return None
    clause = {"field": info.name, "op": op, "value": value}
    outside = [v for v in (value if op == "in" else [value])
               if info.kind == "choice" and v not in info.choices]
    try:
        if outside:
            raise InvalidCondition("not a choice")
        conditions.validate(res.model, [clause])  # type: ignore[arg-type]
    except InvalidCondition:
        row.error = invalid_value(info)
        return None
    return clause


def _values(row: ClauseRow, info: FieldInfo) -> list[Any]:
    texts = list(row.picks) or [v.strip() for v in row.value.split(",")]
    return [v for v in (_value(t, info) for t in texts) if v is not None]


def _value(text: str, info: FieldInfo) -> Any:
    """A typed input's text as the JSON value a clause holds (None when empty)."""
    if not text:
        return None
    if info.kind == "boolean":
        return {"true": True, "false": False}.get(text, text)
    if info.kind == "datetime" and info.timezone:
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            return text
        return (when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when).isoformat()
    return text


def _missing(info: FieldInfo, op: str) -> str:
    if op == "in":
        return (f"Choose at least one value for {info.label}." if info.kind == "choice" else
                f"Enter at least one value for {info.label}, separated by commas.")
    if info.kind in ("choice", "boolean"):
        return f"Choose a value for {info.label}."
    return f"Enter a value for {info.label}."


def invalid_value(info: FieldInfo) -> str:
    """Why a value does not fit the field, in words that name it."""
    label = info.label
    if info.kind == "integer":
        return f"{label} must be a whole number within the field's range."
    if info.kind == "decimal":
        places = f" with at most {info.scale} decimals" if info.scale is not None else ""
        return f"{label} must be a number{places}, within the field's range."
    if info.kind == "number":
        return f"{label} must be a number."
    if info.kind == "date":
        return f"{label} must be a date."
    if info.kind == "datetime":
        return f"{label} must be a date and time."
    if info.kind == "choice":
        return f"{label} must be one of: {', '.join(info.choices)}."
    if info.kind == "boolean":
        return f"Choose yes or no for {label}."
    limit = f" of at most {info.length} characters" if info.length else ""
    return f"{label} must be plain text{limit}."
