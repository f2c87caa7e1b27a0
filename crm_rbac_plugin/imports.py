"""CSV import: every row is checked as the importer would be checked creating it by hand.

An import is many ``create`` operations at once, so it is decided like one:
the member needs the resource's ``import`` action *and* ``create``, and every
row is judged by the same policy and field rules the flush guard applies.
Nothing here writes around the guard: :func:`commit` adds ordinary ORM
objects in the member's session and flushes them, so the guard checks each
row again (a preview that drifted from the guard cannot let a row through).

The steps, each a plain function the views, the CLI and the bench call:

* :func:`read_csv` decodes the upload (UTF-8, with or without a BOM) and
  parses it; a file that is not UTF-8, holds NUL bytes, is not CSV, is empty
  or has a blank or repeated header is refused as a whole with a message
  naming the line (:class:`.ValidationError` on the field ``file``).
* :func:`prepare` maps columns to fields and checks every row, collecting
  per-row errors: a value of the wrong type, a missing required field, an
  owner who is not a member, an owner the importer may not assign (without
  ``manage`` every row belongs to the importer), a value in a field hidden or
  read-only for them, and a row the policy refuses (a condition such as
  "only the north region"). Formula-looking text is neutralised with
  :mod:`.csvsafe`'s rule (a ``'`` in front) and counted, so a cell such as
  ``=HYPERLINK(...)`` is stored as inert text; a formula-looking email is
  refused (no address starts so), and a phone number holds only digits,
  spaces and ``+().-``, which spell no function call.
  A record cap of the importer's roles that the rows would pass together is
  reported on the plan (``Plan.refusal``), with what they own and what the
  import adds.
* :func:`commit` writes all the rows or none: one transaction, flushed in
  chunks of ``RBAC_IMPORT_CHUNK_ROWS`` (each chunk through the guard) with a
  progress callback after each, audited as ``records.imported`` with the row
  count, and rolled back on any error.

Threat model: the importer chooses every cell and the column mapping. A
mapping onto a field they may not write, an owner outside their reach or a
row outside their conditions is an error on that row; a row the checks here
missed is still refused by the guard, and the whole import with it.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import csvsafe, quotas
from .context import SYSTEM
from .errors import PermissionDenied, ValidationError
from .fields import fill_defaults
from .policy import Access

if TYPE_CHECKING:
    from .interface import RBACProtocol
    from .registry import Resource

__all__ = ["IMPORT", "CsvRow", "ImportField", "Plan", "RowError", "commit", "guess_mapping",
           "prepare", "read_csv"]

#: The action an import needs on the resource, besides ``create``.
IMPORT = "import"

#: Kinds of :class:`ImportField` and what a cell of each must hold.
KINDS = ("text", "email", "phone", "choice", "decimal", "date", "owner")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9()][0-9 ().\-]*$")
#: Owner cells that mean "no owner" (how the host's exports name an unowned record):
#: the row is the importer's, as with an empty cell.
NO_OWNER = frozenset({"unassigned"})

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ImportField:
    """A field a CSV column may fill: the model attribute, its label and its kind.

    ``kind`` is one of :data:`KINDS`; ``owner`` takes a member's email (or
    their name, where the caller's ``owners`` holds it) and fills the
    resource's owner column. ``headers`` are further column names the field
    is matched by before its name and label (a heading such as "Owner
    email", or the one the host's own export gives the field), so the host's
    CSV exports import back as they are. ``max_length`` bounds text,
    ``choices`` a choice (matched without regard to case), ``places`` and
    ``max_digits`` a decimal (as the column's ``Numeric(max_digits, places)``),
    and ``minimum`` and ``maximum`` its range, as the record's form bounds it
    (an import writes no value the form would refuse).
    """

    name: str
    label: str
    kind: str = "text"
    required: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()
    places: int = 2
    max_digits: int = 12
    minimum: decimal.Decimal | None = None
    maximum: decimal.Decimal | None = None
    headers: tuple[str, ...] = ()


@dataclass(frozen=True)
class RowError:
    """One refused cell or row: the file's line number, the field, and why."""

    line: int
    field: str
    message: str


@dataclass
class Plan:
    """A checked import: the values of the rows to create, or the reasons not to."""

    resource: str
    total: int
    rows: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    #: Lines with a formula-looking text cell that was neutralised.
    neutralised: list[int] = field(default_factory=list)
    #: Why the rows cannot all be created though each is fine (a record cap of the
    #: importer's roles, with its figures), or "".
    refusal: str = ""

    @property
    def ok(self) -> bool:
        return not self.errors and not self.refusal and self.total > 0


# -- reading the file ---------------------------------------------------------------------

class CsvRow(list[str]):
    """The cells of one CSV record, and the line of the file it begins on."""

    __slots__ = ("line",)

    def __init__(self, cells: Sequence[str], line: int) -> None:
        super().__init__(cells)
        self.line = line


def read_csv(data: bytes, *, max_rows: int, max_columns: int) -> tuple[list[str], list[CsvRow]]:
    """Return the header and the rows of a CSV upload, or refuse the file as a whole.

    The file must be UTF-8 (a BOM is allowed, as spreadsheets write one);
    the message of any refusal names the line, so the member can fix it.
    A line of more than ``max_columns`` cells is refused: an import fills a
    handful of fields, and every column is offered for each of them on the
    mapping page and parsed again at each step, so a file of a million
    narrow columns would make each page of the import huge and slow.
    Each row knows the line it begins on (:class:`CsvRow`), which a row's
    errors name: blank lines are skipped and a quoted cell may span lines,
    so it is not the row's position.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ValidationError(f"The file is not UTF-8 text (line {line}): save it as "
                              "\"CSV UTF-8\" and upload it again.", field="file") from None
    if "\x00" in text:
        raise ValidationError("The file holds NUL bytes: it is not a CSV text file.",
                              field="file")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[CsvRow] = []
    start = 1  # the line the next record begins on; a quoted cell may span lines
    try:
        for cells in reader:
            if len(cells) > max_columns:
                raise ValidationError(f"Line {start} has {len(cells):,} columns; at most "
                                      f"{max_columns:,} may be imported.", field="file")
            if any(cell.strip() for cell in cells):  # blank lines and ",,," rows are skipped
                rows.append(CsvRow(cells, start))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise ValidationError(f"The file is not valid CSV (line {reader.line_num}): {exc}.",
                              field="file") from None
    if not rows:
        raise ValidationError("The file is empty: the first line must name the columns.",
                              field="file")
    header = [cell.strip() for cell in rows[0]]
    _check_header(header)
    if len(rows) - 1 > max_rows:
        raise ValidationError(f"The file has {len(rows) - 1} rows; at most {max_rows} "
                              "may be imported at once.", field="file")
    return header, rows[1:]


def _check_header(header: list[str]) -> None:
    """Refuse a blank or repeated column name (the mapping could not tell them apart)."""
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            raise ValidationError(f"Column {position} of the first line has no name.",
                                  field="file")
        if name.lower() in seen:
            raise ValidationError(f"Column {name!r} appears twice in the first line.",
                                  field="file")
        seen.add(name.lower())


def guess_mapping(header: Sequence[str], fields: Sequence[ImportField]) -> dict[str, int]:
    """Map each field to the column named like one of its ``headers``, its name or its
    label, in that order (case ignored)."""
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    out = {}
    for f in fields:
        for key in (*(h.lower() for h in f.headers), f.name.lower(), f.label.lower()):
            if key in columns:
                out[f.name] = columns[key]
                break
    return out


# -- checking the rows --------------------------------------------------------------------

def importer(rbac: RBACProtocol, resource: str) -> Access:
    """Return the member importing into ``resource``, refusing one without ``import``
    and ``create`` (an import runs as a member, never in the system context)."""
    ctx = rbac.resolve_context()
    if ctx is SYSTEM or not isinstance(ctx, Access):
        raise PermissionDenied("An import runs as a member: use rbac.as_member().",
                               resource=resource, action=IMPORT)
    for action in (IMPORT, "create"):
        if not rbac.can(action, resource):
            rbac.signal_denied(ctx, action, resource, None, f"no {action} on {resource}")
            raise PermissionDenied(f"You may not {action} {resource}.",
                                   resource=resource, action=action)
    return ctx


def prepare(rbac: RBACProtocol, resource: str, fields: Sequence[ImportField],
            rows: Sequence[Sequence[str]], mapping: Mapping[str, int], *,
            owners: Mapping[str, Any], first_line: int = 2) -> Plan:
    """Check every row of an import into ``resource`` as the current member.

    ``mapping`` maps field names to column positions (unmapped fields keep
    their defaults); ``owners`` maps the lower-cased email of each member of
    the workspace (and, if the caller wants names matched, the lower-cased
    name no other member bears) to their user id. Without ``manage`` only the
    importer's own entries are looked at: any other owner cell gets the same
    "you may only import records you own" answer, member or not, so an
    import tells nobody who belongs to the workspace. An error names the line of its row: a
    :class:`CsvRow`'s own, else ``first_line`` plus the row's position.
    Returns a :class:`Plan` listing the values to create and the errors,
    and the refusal of a record cap the rows would pass together (what the
    member owns plus the rows, against the cap); nothing is written.
    """
    access = importer(rbac, resource)
    res = rbac.registry.get(resource)
    by_name = {f.name: f for f in fields}
    unknown = sorted(set(mapping) - set(by_name))
    if unknown:
        raise ValidationError(f"No field {unknown[0]!r} can be imported into {resource}.",
                              field=unknown[0])
    check = _RowCheck(rbac, access, res, owners, rbac.can("manage", resource))
    plan = Plan(resource, len(rows))
    for offset, row in enumerate(rows):
        line = row.line if isinstance(row, CsvRow) else first_line + offset
        values, errors, neutralised = check.row(line, row, mapping, by_name)
        if neutralised:
            plan.neutralised.append(line)
        if errors:
            plan.errors.extend(errors)
        else:
            plan.rows.append(values)
    refusal = quotas.batch_refusal(rbac, rbac.db.session, access, resource, len(plan.rows))
    plan.refusal = refusal.message if refusal is not None else ""
    return plan


class _RowCheck:
    """Converts and judges one row at a time for one importer (see :func:`prepare`)."""

    def __init__(self, rbac: RBACProtocol, access: Access, res: Resource,
                 owners: Mapping[str, Any], may_manage: bool) -> None:
        self.rbac, self.access, self.res = rbac, access, res
        self.may_manage = may_manage
        # Without manage a row may name only the importer: the others' entries
        # are not consulted, so no answer depends on who else is a member.
        self.owners = owners if may_manage else {
            key: uid for key, uid in owners.items() if uid == access.user_id}
        self.unwritable = access.unwritable(res.name)
        self.loader = rbac.parent_loader(rbac.db.session)

    def row(self, line: int, row: Sequence[str], mapping: Mapping[str, int],
            fields: Mapping[str, ImportField]) -> tuple[dict[str, Any], list[RowError], bool]:
        """Return the row's values, its errors and whether a cell was neutralised."""
        values: dict[str, Any] = {}
        errors: list[RowError] = []
        neutralised = False
        for name, f in fields.items():
            position = mapping.get(name)
            cell = row[position].strip() if position is not None and position < len(row) else ""
            if f.kind == "owner" and cell.lower() in NO_OWNER:
                cell = ""
            if not cell:
                if f.required:
                    errors.append(RowError(line, name, f"{f.label} is required."))
                continue
            if name in self.unwritable:
                errors.append(RowError(line, name, f"{f.label} is read-only for you."))
                continue
            if f.kind == "owner" and not self.may_manage and cell.lower() not in self.owners:
                errors.append(RowError(line, name, own_rows_only(f.label)))
                continue
            try:
                value, changed = convert(f, cell, self.owners)
            except ValueError as exc:
                errors.append(RowError(line, name, str(exc)))
                continue
            neutralised = neutralised or changed
            values[name] = value
        if not errors:
            errors = self._judge(line, values, fields)
        return values, errors, neutralised

    def _judge(self, line: int, values: dict[str, Any],
               fields: Mapping[str, ImportField]) -> list[RowError]:
        """Fill the workspace and owner, then ask the policy as the guard will."""
        res, access = self.res, self.access
        owner_col = res.owner_column
        if owner_col is not None:
            owner = values.get(owner_col)
            if owner is None:
                values[owner_col] = access.user_id
            elif owner != access.user_id and not self.may_manage:
                label = fields[owner_col].label if owner_col in fields else owner_col
                return [RowError(line, owner_col, own_rows_only(label))]
        if res.workspace_column is not None:
            values[res.workspace_column] = access.workspace_id
        filled = sorted(k for k in self.unwritable if values.get(k) is not None)
        if filled:  # the owner filled in for them, in a column read-only for them
            return [RowError(line, filled[0], f"{filled[0]} is read-only for you.")]
        record = res.model(**values)  # type: ignore[misc]
        fill_defaults(record)  # an omitted column is judged as the value it is stored with
        for action in (IMPORT, "create"):
            decision = self.rbac.decide(access, action, res.name, record, self.loader)
            if not decision:
                return [RowError(line, "", f"You may not {action} this row: "
                                 f"{decision.reason}.")]
        return []


def own_rows_only(label: str) -> str:
    """The refusal of an owner cell naming anyone but the importer, who lacks ``manage``."""
    return f"{label}: you may only import records you own (assigning others needs manage)."


def convert(f: ImportField, cell: str, owners: Mapping[str, Any]) -> tuple[Any, bool]:
    """Return the value of a non-empty ``cell`` for field ``f`` and whether it was
    neutralised; raise ``ValueError`` with a message naming the field."""
    if f.kind == "owner":
        user_id = owners.get(cell.lower())
        if user_id is None:
            raise ValueError(f"{f.label}: {cell!r} is not a member of this workspace.")
        return user_id, False
    if f.kind == "choice":
        for choice in f.choices:
            if cell.lower() == choice.lower():
                return choice, False
        raise ValueError(f"{f.label}: {cell!r} is not one of {', '.join(f.choices)}.")
    if f.kind == "decimal":
        return _decimal(f, cell), False
    if f.kind == "date":
        try:
            return dt.date.fromisoformat(cell), False
        except ValueError:
            raise ValueError(f"{f.label}: {cell!r} is not a date (YYYY-MM-DD).") from None
    if f.kind == "email" and (not _EMAIL.match(cell) or csvsafe.is_dangerous(cell)):
        # A ``'`` in front would leave no address, so a formula-looking one is refused.
        raise ValueError(f"{f.label}: {cell!r} is not an email address.")
    if f.kind == "phone" and cell.startswith("'") and _PHONE.match(cell[1:]):
        # The prefix csvsafe puts before "+1 555 ..." in every export: a phone
        # number spells no formula, so the number is stored without it.
        cell = cell[1:]
    if f.kind == "phone" and not _PHONE.match(cell):
        raise ValueError(f"{f.label}: {cell!r} is not a phone number.")
    text = cell if f.kind != "text" else csvsafe.safe_cell(cell)
    if f.max_length is not None and len(text) > f.max_length:
        raise ValueError(f"{f.label}: longer than {f.max_length} characters.")
    return text, text != cell


def _decimal(f: ImportField, cell: str) -> decimal.Decimal:
    """A finite decimal with at most ``f.places`` places that fits ``f.max_digits``."""
    try:
        value = decimal.Decimal(cell)
    except decimal.InvalidOperation:
        raise ValueError(f"{f.label}: {cell!r} is not a number.") from None
    if not value.is_finite():
        raise ValueError(f"{f.label}: {cell!r} is not a number.")
    # The size first: quantizing a value of more digits than the context's
    # precision (1e30 to cents) is itself an error.
    if abs(value) >= decimal.Decimal(10) ** (f.max_digits - f.places):
        raise ValueError(f"{f.label}: {cell!r} is too large.")
    if value != value.quantize(decimal.Decimal(1).scaleb(-f.places)):
        raise ValueError(f"{f.label}: at most {f.places} decimal places.")
    if f.minimum is not None and value < f.minimum:
        raise ValueError(f"{f.label}: {cell!r} is below {f.minimum}.")
    if f.maximum is not None and value > f.maximum:
        raise ValueError(f"{f.label}: {cell!r} is above {f.maximum}.")
    return value


# -- writing ------------------------------------------------------------------------------

def commit(rbac: RBACProtocol, plan: Plan, *, target: str = "", chunk_rows: int | None = None,
           progress: Progress | None = None) -> int:
    """Create every row of ``plan`` in one transaction, or none; return the row count.

    Rows are ORM objects added to the member's session and flushed chunk by
    chunk, so the flush guard and field rules check each one; ``progress``
    is called with (rows written, total) after each chunk. The import is
    audited (``records.imported``, with the row count) and committed; any
    error rolls everything back and is raised again.
    """
    access = importer(rbac, plan.resource)
    if plan.errors or not plan.total:
        raise ValidationError(f"{len(plan.errors)} error(s) in the file; nothing was imported."
                              if plan.errors else "The file has no rows to import.",
                              field="file")
    session = rbac.db.session
    # Before the first chunk: a cap found at a later chunk's flush would count the
    # earlier chunks as records the member owns, and not name what the import adds.
    refusal = quotas.batch_refusal(rbac, session, access, plan.resource, len(plan.rows))
    if refusal is not None:
        raise refusal
    model: Any = rbac.registry.get(plan.resource).model
    chunk = chunk_rows or int(rbac.config("RBAC_IMPORT_CHUNK_ROWS"))
    total = len(plan.rows)
    try:
        for start in range(0, total, chunk):
            session.add_all([model(**values) for values in plan.rows[start:start + chunk]])
            session.flush()
            if progress is not None:
                progress(min(start + chunk, total), total)
        rbac.audit("records.imported", resource=plan.resource,
                   target=target or f"{total} {plan.resource}", rows=total,
                   neutralised=len(plan.neutralised))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return total
