"""The table that drives the generic CRUD views: one entry per CRM resource.

Each entry names the RBAC resource, its model and form, and the columns the
list, detail page and CSV export show. Adding a resource to the demo is one
more entry here (plus its ``rbac.register_resource`` call); no view code.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..models import (
    DEAL_STAGES,
    LEAD_STATUSES,
    REGIONS,
    TASK_STATUSES,
    Client,
    Deal,
    Lead,
    Note,
    Task,
)
from ..rbac_setup import rbac
from .forms import ClientForm, DealForm, LeadForm, NoteForm, RecordForm, TaskForm


@dataclass(frozen=True)
class Column:
    """One displayed attribute of a record.

    ``kind`` selects the rendering (the ``cell`` macro of templates/_macros.html)
    and the CSV value: ``title`` (link to the record), ``name`` (the same link, named
    by the record's label: see :meth:`CrudConfig.listed`), ``text``, ``label`` (a
    code shown capitalised), ``longtext``, ``badge``, ``money``, ``date``,
    ``datetime``, ``email``, ``owner``, ``link`` (another record, named by
    :func:`linked`). Owner and link are relationships, read through the
    ``<key>_id`` column, so they are not sortable.
    """

    key: str
    label: str
    kind: str = "text"
    #: For a title: another attribute shown under it in lists (e.g. the email).
    sub: str | None = None
    #: For a link: the resource of the linked record (its pages are ``<link>.detail``).
    link: str | None = None

    @property
    def sortable(self) -> bool:
        return self.kind not in ("owner", "link", "longtext")


@dataclass(frozen=True)
class Facet:
    """A filter of the list by one column's value (status, stage ...)."""

    key: str
    label: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class CrudConfig:
    """Everything the generic views need to know about one resource."""

    name: str                       # RBAC resource name and URL prefix
    model: type
    form: type[RecordForm]
    label: str                      # plural, for navigation and headings
    singular: str
    columns: tuple[Column, ...]     # list columns; the first is the title
    details: tuple[Column, ...]     # extra fields on the detail page
    search: tuple[str, ...]         # columns the search box looks in
    facet: Facet | None = None
    icon: str = ""                  # key of an icon in templates/_icons.html
    #: Child resources listed on the detail page, with their column pointing here.
    children: tuple[tuple[str, str], ...] = ()
    eager: tuple[str, ...] = ("owner",)
    default_sort: str = "created_at"

    @property
    def export_columns(self) -> tuple[Column, ...]:
        """CSV columns: the id, then the list and detail columns (no duplicates)."""
        seen: dict[str, Column] = {"id": Column("id", "ID")}
        for col in (*self.columns, *self.details, Column("created_at", "Created", "datetime")):
            seen.setdefault(col.key, col)
        return tuple(seen.values())

    def sort_column(self, key: str) -> Column | None:
        """The sortable column named ``key``, if any (protects ORDER BY from input)."""
        for col in self.shown((*self.columns, Column("created_at", "Created", "datetime"),
                               Column("id", "ID"))):
            if col.key == key and col.sortable:
                return col
        return None

    # -- field-level security: what the current member may see ---------------

    def hidden(self) -> frozenset[str]:
        """Fields of this resource hidden from the current member."""
        return rbac.hidden_fields(self.name)

    @staticmethod
    def field_of(col: Column) -> str:
        """The model column behind a displayed column (a relationship by its ``_id`` column)."""
        return f"{col.key}_id" if col.kind in ("owner", "link") else col.key

    def shown(self, columns: tuple[Column, ...]) -> tuple[Column, ...]:
        """``columns`` without those the member may not see (and without hidden subs)."""
        hidden = self.hidden()
        return tuple(replace(c, sub=None) if c.sub in hidden else c
                     for c in columns if self.field_of(c) not in hidden)

    def listed(self) -> tuple[Column, ...]:
        """The list columns the member sees, for the lists and a client's child tables.

        The title column carries the link to the record: when its field is
        hidden, a ``name`` column takes its place, naming the row by its label
        ("Deal #12", see ``rbac.label``) and linking it all the same, so that
        every row of a list still opens its record.
        """
        title, rest = self.columns[0], self.shown(self.columns)
        if title.kind == "title" and self.field_of(title) in self.hidden():
            return (Column("id", title.label, "name"), *rest)
        return rest

    def visible_default_sort(self) -> str:
        """The default sort column, or ``id`` when it is hidden from the member."""
        return "id" if self.default_sort in self.hidden() else self.default_sort

    def newest_first(self) -> tuple[Any, ...]:
        """ORDER BY terms listing the newest records first, by visible columns only."""
        model: Any = self.model
        key = self.visible_default_sort()
        return (model.id.desc(),) if key == "id" else (getattr(model, key).desc(),
                                                        model.id.desc())

    def searchable(self) -> tuple[str, ...]:
        """Search columns the member may see: searching a hidden one would reveal it."""
        hidden = self.hidden()
        return tuple(c for c in self.search if c not in hidden)

    def visible_facet(self) -> Facet | None:
        return self.facet if self.facet and self.facet.key not in self.hidden() else None


#: How pages and exports name a linked record that is hidden from the member.
RESTRICTED = "Restricted"


def linked(record: Any, key: str) -> tuple[Any, str]:
    """The record that ``record.<key>`` links to, and how pages and exports name it.

    The relationship loads through the query filter, so it is None both when
    there is no link and when the linked record is hidden from the member;
    the ``<key>_id`` column tells them apart. A hidden one reads "Restricted",
    never a blank or "—", which would state that there is no link. Returns
    ``(record, its label)``, ``(None, "Restricted")`` or ``(None, "")``.
    """
    target = getattr(record, key)
    if target is not None:
        return target, rbac.label(target)
    return None, RESTRICTED if getattr(record, f"{key}_id") is not None else ""


OWNER = Column("owner", "Owner", "owner")
CLIENT = Column("client", "Client", "link", link="clients")
CREATED = Column("created_at", "Created", "date")

CONFIGS: tuple[CrudConfig, ...] = (
    CrudConfig(
        name="leads", model=Lead, form=LeadForm, label="Leads", singular="lead", icon="leads",
        columns=(Column("name", "Name", "title", sub="email"), Column("company", "Company"),
                 Column("status", "Status", "badge"), Column("source", "Source", "label"),
                 OWNER, CREATED),
        details=(Column("email", "Email", "email"),),
        search=("name", "company", "email"),
        facet=Facet("status", "Status", LEAD_STATUSES)),
    CrudConfig(
        name="deals", model=Deal, form=DealForm, label="Deals", singular="deal", icon="deals",
        columns=(Column("title", "Deal", "title"), CLIENT, Column("stage", "Stage", "badge"),
                 Column("amount", "Amount", "money"),
                 Column("close_date", "Expected close", "date"), OWNER),
        details=(),
        search=("title",), eager=("owner", "client"),
        facet=Facet("stage", "Stage", DEAL_STAGES)),
    CrudConfig(
        name="clients", model=Client, form=ClientForm, label="Clients", singular="client",
        icon="clients",
        columns=(Column("name", "Name", "title", sub="email"), Column("phone", "Phone"),
                 Column("region", "Region", "label"), OWNER, CREATED),
        details=(Column("email", "Email", "email"),),
        search=("name", "email", "phone"),
        facet=Facet("region", "Region", REGIONS),
        children=(("deals", "client_id"), ("tasks", "client_id"), ("notes", "client_id"))),
    CrudConfig(
        name="tasks", model=Task, form=TaskForm, label="Tasks", singular="task", icon="tasks",
        columns=(Column("title", "Task", "title"), CLIENT, Column("status", "Status", "badge"),
                 Column("due_date", "Due", "date"), OWNER),
        details=(),
        search=("title",), eager=("owner", "client"),
        facet=Facet("status", "Status", TASK_STATUSES)),
    CrudConfig(
        name="notes", model=Note, form=NoteForm, label="Notes", singular="note", icon="notes",
        columns=(Column("body", "Note", "title"), CLIENT, OWNER, CREATED),
        details=(Column("body", "Text", "longtext"),),
        search=("body",), eager=("owner", "client")),
)


def config_for(name: str) -> CrudConfig:
    """Return the entry of resource ``name``."""
    for cfg in CONFIGS:
        if cfg.name == name:
            return cfg
    raise LookupError(f"no CRUD configuration for {name!r}")
