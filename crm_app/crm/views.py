"""Generic list/detail/create/edit/delete/export views for the CRM resources.

One set of functions serves every resource of :data:`.resources.CONFIGS`;
:func:`crud_blueprint` binds them to one resource's URLs under the plugin's
decorators. Access control lives entirely in crm_rbac_plugin:

* ``@require_permission`` refuses list, create and export pages to members
  without the resource-level right;
* ``@record_required`` loads the record through the query filter, so a record
  outside the member's view is a 404 and a visible one they may not change
  a 403;
* every ``SELECT`` here is a plain ``db.select(Model)``: the plugin's query
  hook adds the member's criteria (never a hand-written owner or workspace
  ``WHERE``), including the export's ``rbac_action="export"`` rows;
* bulk deletes load their records through ``crm_rbac_plugin.bulk.select``
  (``bulk`` and ``delete`` on every selected record, all or none), and the
  export writes through ``crm_rbac_plugin.csvsafe`` (formula injection);
* inserts, updates and deletes are checked again by the plugin's flush guard,
  which also fills in the workspace and owner of new records.
"""

from __future__ import annotations

import collections
import datetime as dt
import io
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import sqlalchemy as sa
from flask import Blueprint, Response, flash, redirect, render_template, request, stream_with_context, url_for
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import BadRequest
from wtforms import SelectChoice

from crm_rbac_plugin import PermissionDenied, bulk, csvsafe, gate, record_required, require_permission
from crm_rbac_plugin.approvals import ExportFile
from crm_rbac_plugin.errors import QuotaExceeded
from crm_rbac_plugin.fields import VisibleView
from crm_rbac_plugin.inputs import MAX_ID

from ..extensions import db
from ..models import User
from ..rbac_setup import rbac
from .choices import client_choices, default_owner, owner_choices
from .forms import RecordForm
from .resources import CrudConfig, config_for, linked

PER_PAGE = 25
EXPORT_BATCH = 500


def _id_arg(args: Any, name: str) -> int | None:
    """A whole-number list argument; None when it is not a number (the list ignores it).

    A number past :data:`MAX_ID` is refused with a 400 naming ``name``: no page or
    member goes that far, and the database cannot compare with it.
    """
    value = args.get(name, type=int)
    if value is not None and abs(value) > MAX_ID:
        raise BadRequest(f"{name}: expected a whole number up to {MAX_ID}.")
    return value  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ListArgs:
    """The list page's query string, validated: search, facet, owner, sort and page."""

    q: str
    facet: str
    sort: str
    desc: bool
    page: int
    facet_key: str = ""
    owner: int | None = None

    @classmethod
    def from_request(cls, cfg: CrudConfig, args: Any = None) -> ListArgs:
        """Read the arguments (the request's, or ``args``), dropping anything that is not a
        known column or value."""
        args = request.args if args is None else args
        sort = args.get("sort", "")
        default_sort = cfg.visible_default_sort()
        if cfg.sort_column(sort) is None:
            sort = default_sort
        default_dir = "desc" if sort == default_sort else "asc"
        shown_facet = cfg.visible_facet()
        facet_key = shown_facet.key if shown_facet else ""
        facet = args.get(facet_key, "") if shown_facet else ""
        if shown_facet and facet not in shown_facet.values:
            facet = ""
        owner = _id_arg(args, "owner") if "owner_id" not in cfg.hidden() else None
        return cls(q=args.get("q", "").strip()[:100], facet=facet, sort=sort,
                   desc=args.get("dir", default_dir) == "desc",
                   page=max(_id_arg(args, "page") or 1, 1), facet_key=facet_key,
                   owner=owner)

    @property
    def filtered(self) -> bool:
        """Whether a search or filter narrows the list."""
        return bool(self.q or self.facet or self.owner is not None)

    def query(self, **changes: Any) -> dict[str, Any]:
        """URL arguments of this list with ``changes`` applied, for links."""
        values: dict[str, Any] = {"q": self.q, "sort": self.sort,
                                  "dir": "desc" if self.desc else "asc", "page": self.page}
        if self.facet_key:
            values[self.facet_key] = self.facet
        values["owner"] = self.owner
        values.update(changes)
        return {k: v for k, v in values.items()
                if v not in ("", None) and not (k == "page" and v == 1)}

    def sort_link(self, key: str) -> dict[str, Any]:
        """Arguments that sort by ``key``, flipping the direction if already sorted by it."""
        if key == self.sort:
            return self.query(sort=key, dir="asc" if self.desc else "desc", page=1)
        return self.query(sort=key, dir="asc", page=1)


def filtered_select(cfg: CrudConfig, args: ListArgs) -> sa.Select[Any]:
    """The list's statement: search and facet only; the plugin adds who may see what.

    The search looks only in the columns the member sees; when every one is
    hidden a query matches nothing, since dropping it would present every
    record (and export them) as matching.
    """
    model: Any = cfg.model
    stmt = db.select(model)
    if args.q:
        columns = cfg.searchable()
        stmt = stmt.where(sa.or_(*(getattr(model, col).icontains(args.q, autoescape=True)
                                   for col in columns)) if columns else sa.false())
    if args.facet:
        stmt = stmt.where(getattr(model, args.facet_key) == args.facet)
    if args.owner is not None:
        stmt = stmt.where(model.owner_id == args.owner)
    return stmt


def owner_name(user: Any) -> str:
    """How pages and exports name a record's owner: the member's name, else "Unassigned"."""
    return user.name if user is not None else "Unassigned"


def owner_filter(cfg: CrudConfig) -> list[SelectChoice]:
    """The owner filter's choices: only people owning a record the member sees.

    The ``DISTINCT owner_id`` query is filtered like the list, so a member is
    never offered (nor told the name of) an owner whose records they cannot
    see; none at all when the owner field is hidden from them.
    """
    if "owner_id" in cfg.hidden():
        return []
    model: Any = cfg.model
    # Owners of this workspace's records only: a shared record's owner is a member of
    # the workspace that shared it, whose people are not this workspace's to list.
    owners = sa.select(model.owner_id).where(
        model.owner_id.is_not(None), model.workspace_id == rbac.current_workspace_id()).distinct()
    ids = set(db.session.scalars(owners))
    if not ids:
        return []
    rows = db.session.execute(sa.select(User.id, User.name).where(User.id.in_(sorted(ids)))
                              .order_by(User.name, User.id))
    return [SelectChoice(str(uid), name) for uid, name in rows]


def facet_values(cfg: CrudConfig) -> tuple[str, ...]:
    """The facet's values that occur among the records the member sees, in their usual order.

    A value no visible record holds (e.g. "new" for Finance, who sees closed
    deals only) is never offered: choosing it could only show an empty list.
    """
    facet = cfg.visible_facet()
    if facet is None:
        return ()
    column = getattr(cfg.model, facet.key)
    present = set(db.session.scalars(sa.select(column).distinct()))
    return tuple(value for value in facet.values if value in present)


def ordered(cfg: CrudConfig, stmt: sa.Select[Any], args: ListArgs) -> sa.Select[Any]:
    """Sort by the chosen column, then by id so pages never overlap."""
    model: Any = cfg.model
    col = getattr(model, args.sort)
    if args.desc:
        return stmt.order_by(col.desc().nulls_last(), model.id.desc())
    return stmt.order_by(col.asc().nulls_last(), model.id.asc())


def eager(cfg: CrudConfig) -> list[Any]:
    """Load owners and clients in one query per page (the filter applies to clients too).

    A relationship whose link column is hidden from the member is not loaded.
    """
    hidden = cfg.hidden()
    return [selectinload(getattr(cfg.model, rel)) for rel in cfg.eager
            if f"{rel}_id" not in hidden]


# -- pages ------------------------------------------------------------------------

def list_view(cfg: CrudConfig) -> str:
    """A page of the records the member sees, with the filters' choices limited to them."""
    args = ListArgs.from_request(cfg)
    stmt = ordered(cfg, filtered_select(cfg, args), args).options(*eager(cfg))
    page = db.paginate(stmt, page=args.page, per_page=PER_PAGE, max_per_page=PER_PAGE,
                       error_out=False)
    return render_template("crud/list.html", cfg=cfg, page=page, args=args,
                           owners=owner_filter(cfg), facet_values=facet_values(cfg))


def detail_view(cfg: CrudConfig, record: Any) -> str:
    """Show a record and, for a client, the deals, tasks and notes the member sees on it."""
    children = []
    for name, fk in cfg.children:
        child = config_for(name)
        if not rbac.can("view", name) or fk in child.hidden():
            continue  # filtering by a hidden link would reveal it
        model: Any = child.model
        stmt = (db.select(model).where(getattr(model, fk) == record.id)
                .order_by(*child.newest_first()).options(*eager(child)))
        children.append((child, db.paginate(stmt, page=1, per_page=10, error_out=False)))
    return render_template("crud/detail.html", cfg=cfg, record=record, children=children)


def make_form(cfg: CrudConfig, record: Any = None) -> RecordForm:
    """Build the form, offering the owner select only to members who may reassign."""
    # The form reads the record's visible fields only (hidden ones are refused).
    form = cfg.form(obj=None if record is None else VisibleView(record, cfg.hidden()))
    may_reassign = (rbac.can("manage", cfg.name, record) if record is not None
                    else rbac.can("manage", cfg.name))
    if may_reassign:
        owner_field: Any = form.owner_id
        owner_field.choices, owner_field.invalid_choice_message = owner_choices(cfg.name, record)
        if record is None and not form.is_submitted():
            owner_field.data = default_owner(owner_field.choices)
    else:
        del form.owner_id  # their records are their own: the flush guard fills owner_id
    for name in rbac.hidden_fields(cfg.name) | rbac.readonly_fields(cfg.name):
        if name in form:
            del form[name]  # the flush guard refuses writes to them anyway
    if "client_id" in form:
        client_field: Any = form["client_id"]
        client_field.choices = client_choices(record, config_for("clients").hidden())
        if record is None and not form.is_submitted():
            client_field.data = request.args.get("client_id", type=int)
    return form


def form_view(cfg: CrudConfig, record: Any = None) -> Any:
    """Create (``record`` None) or edit a record.

    The decorators only checked the action itself; whether *this* record may
    be saved (a grant's condition on the stage, a scope) is decided by the
    plugin's flush guard, and a record cap of the member's roles by its quota
    check. The refusal is shown on the form, with the member's input kept, as
    a 403 (or the cap's 409); input the form refuses (a choice not offered, a
    missing title) is shown at its field, as a 400.
    """
    form = make_form(cfg, record)
    if form.validate_on_submit():
        target = record if record is not None else cfg.model()
        form.populate_obj(target)
        if record is None:
            db.session.add(target)
        try:
            db.session.commit()
        except (PermissionDenied, QuotaExceeded) as refused:
            db.session.rollback()
            return render_template("crud/form.html", cfg=cfg, form=form, record=record,
                                   refusal=refused.message), getattr(refused, "status", 403)
        flash(f"{cfg.singular.capitalize()} {'updated' if record else 'created'}.", "success")
        return redirect(url_for(f"{cfg.name}.detail", id=target.id))
    status = 400 if form.is_submitted() else 200
    return render_template("crud/form.html", cfg=cfg, form=form, record=record,
                           refusal=None), status


def delete_view(cfg: CrudConfig, record: Any) -> Any:
    label = str(record)
    db.session.delete(record)
    db.session.commit()
    flash(f"Deleted {cfg.singular} “{label}”.", "success")
    return redirect(url_for(f"{cfg.name}.index"))


def csv_value(record: Any, kind: str, key: str) -> Any:
    """A cell of the export; the writer (:mod:`crm_rbac_plugin.csvsafe`) neutralises it."""
    value = getattr(record, key)
    if kind == "owner":
        via = rbac.shared_from(record)
        return via.workspace_name if via is not None else owner_name(value)
    if kind == "link":
        return linked(record, key)[1]
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def _export_statement(cfg: CrudConfig, args: ListArgs) -> sa.Select[Any]:
    return (ordered(cfg, filtered_select(cfg, args), args).options(*eager(cfg))
            .execution_options(rbac_action="export", yield_per=EXPORT_BATCH))


def export_chunks(cfg: CrudConfig, args: ListArgs, query: str) -> Iterator[str]:
    """The CSV in chunks, audited once the last row is written (the caller commits).

    ``rbac_action="export"`` makes the query hook apply the export grants'
    scopes and conditions, e.g. Finance exports only closed deals.
    """
    columns = cfg.shown(cfg.export_columns)
    rows = 0
    by_workspace: collections.Counter[Any] = collections.Counter()
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow([col.label for col in columns])
    for n, record in enumerate(db.session.scalars(_export_statement(cfg, args)), 1):
        writer.writerow([csv_value(record, col.kind, col.key) for col in columns])
        by_workspace[record.workspace_id] += 1
        if n % EXPORT_BATCH == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        rows = n
    yield buffer.getvalue()
    # Audit trail: what was exported and how many rows.
    # Rows of records shared by another workspace are logged there too.
    rbac.audit_export(cfg.name, dict(by_workspace), target=f"{cfg.name} CSV ({rows} rows)",
                      columns=[col.key for col in columns], query=query)


def export_filename(cfg: CrudConfig) -> str:
    access = rbac.resolve_context()
    workspace_id = getattr(access, "workspace_id", 0)
    return f"{cfg.name}-ws{workspace_id}-{dt.date.today().isoformat()}.csv"


def export_view(cfg: CrudConfig) -> Response:
    """Stream the rows the member may *export* (not merely view) as CSV.

    The current search and facet apply, so "export" means "export this list".
    An export over the workspace's approval threshold is not sent: it is
    counted first (with the same export criteria) and the gate records a
    request (``?reason=`` gives its reason) and answers "pending approval".
    """
    args = ListArgs.from_request(cfg)
    query = request.query_string.decode()[:500]
    count = db.session.scalar(sa.select(sa.func.count()).select_from(
        filtered_select(cfg, args).subquery()).execution_options(rbac_action="export"))
    gate.require(rbac, rbac.current_access(), "export", {"resource": cfg.name, "query": query},
                 count=int(count or 0), summary=f"Export {count} {cfg.label.lower()} as CSV")
    # The gate counted these rows towards the member's daily volume: kept even
    # when the download is cut off half-way.
    db.session.commit()

    def generate() -> Iterator[str]:
        yield from export_chunks(cfg, args, query)
        db.session.commit()

    return Response(stream_with_context(generate()), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{export_filename(cfg)}"'})


def produce_approved_export(payload: Mapping[str, Any]) -> ExportFile:
    """The file of an approved export, produced as the requester when the last approval comes.

    Produced at approval rather than at download: the approvers approved that
    list as it stood, with the requester's rights at that moment, and the
    single-use link then serves exactly those bytes (a later download cannot
    include rows added, nor rights gained, after the approval).
    """
    cfg = config_for(str(payload["resource"]))
    query = str(payload.get("query", ""))
    args = ListArgs.from_request(cfg, MultiDict(parse_qsl(query, keep_blank_values=True)))
    text = "".join(export_chunks(cfg, args, query))
    return ExportFile(export_filename(cfg), text.encode("utf-8"))


#: The most records one bulk operation may touch.
BULK_LIMIT = 500


def bulk_delete_view(cfg: CrudConfig) -> Any:
    """Delete the selected records, all or none.

    :func:`crm_rbac_plugin.bulk.select` loads them: every one must allow
    ``bulk`` and ``delete`` for the member (conditions, denies and sharing
    agreements included), else the request is a 404 (an invisible record)
    or a 403 and nothing is deleted. The flush guard checks every row once more.
    No selection is a 400 that shows the list again with the message. The ids
    go to ``bulk.select`` as sent, so one that names no record ("abc" too)
    refuses the whole selection rather than dropping out of it.
    """
    ids = set(request.form.getlist("ids"))
    if not ids:
        flash("Select at least one record.", "error")
        return list_view(cfg), 400
    if len(ids) > BULK_LIMIT:
        flash(f"Select at most {BULK_LIMIT} {cfg.label.lower()} at once.", "error")
        return list_view(cfg), 400
    records = bulk.select(rbac, cfg.name, ids, "delete")
    for record in records:
        db.session.delete(record)
    db.session.commit()
    flash(f"Deleted {len(records)} {cfg.label.lower()}.", "success")
    return redirect(url_for(f"{cfg.name}.index"))


def crud_blueprint(cfg: CrudConfig) -> Blueprint:
    """Bind the generic views to one resource, each under the plugin's check for it.

    Endpoints are ``<resource>.index|detail|create|edit|delete|export`` so
    templates build any resource's URLs from its name.
    """
    bp = Blueprint(cfg.name, __name__, url_prefix=f"/{cfg.name}")
    res = cfg.name

    @bp.get("/")
    @require_permission(res, "view")
    def index() -> str:
        return list_view(cfg)

    @bp.get("/export.csv")
    @require_permission(res, "export")
    def export() -> Response:
        return export_view(cfg)

    @bp.route("/new", methods=["GET", "POST"])
    @require_permission(res, "create")
    def create() -> Any:
        return form_view(cfg)

    @bp.get("/<int:id>")
    @record_required(res, "view", name="record")
    def detail(record: Any) -> str:
        return detail_view(cfg, record)

    @bp.route("/<int:id>/edit", methods=["GET", "POST"])
    @record_required(res, "edit", name="record")
    def edit(record: Any) -> Any:
        return form_view(cfg, record)

    @bp.post("/<int:id>/delete")
    @record_required(res, "delete", name="record")
    def delete(record: Any) -> Any:
        return delete_view(cfg, record)

    @bp.post("/bulk-delete")
    @require_permission(res, "bulk")
    @require_permission(res, "delete")
    def bulk_delete() -> Any:
        return bulk_delete_view(cfg)

    return bp
