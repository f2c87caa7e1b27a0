"""The base view: :class:`RBACModelView` (see the package docstring for what it enforces)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin import expose
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext, ngettext
from flask_admin.contrib.sqla import ModelView
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.helpers import get_redirect_target
from flask_admin.model.ajax import AjaxModelLoader

from .. import bulk, csvsafe, fields, gate
from ..errors import NoAccessContext, PermissionDenied, RBACError
from ..identity import signed_in_user
from ..mixins import form_excluded
from ..oversight import viewas
from ..policy import Access, Decision
from ..urls import safe_next
from ..user_keys import user_pk_column
from .checks import column_checks
from .formatting import DETAIL_FORMATTERS, LIST_FORMATTERS, add_person_formatters
from .permissions import HostPermissions
from .relations import ScopedAjaxLoader, ScopedModelConverter, as_key

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["RBACModelView"]

#: Query parameters the list page cannot pass on: its links call
#: ``get_url(endpoint, export_type=..., **request.args)`` and Flask-Admin keeps
#: unknown parameters in every page and sort link, so these names would clash
#: with the arguments of ``get_url`` and ``url_for`` (a ``TypeError`` or a
#: ``BuildError``, which is a 500).
RESERVED_QUERY_NAMES = frozenset({"export_type", "endpoint", "self", "_anchor", "_method",
                                  "_scheme", "_external"})


class _ExportLimited(Exception):
    """An export that would exceed the view's ``export_max_rows``."""

    def __init__(self, count: int | None, limit: int) -> None:
        super().__init__(count, limit)
        self.count = count
        self.limit = limit


class RBACModelView(HostPermissions, ModelView):
    """A Flask-Admin model view guarded by the plugin (see the package docstring).

    Host subclasses set Flask-Admin's options as usual; the permission
    attributes narrow only::

        class LeadView(RBACModelView):
            can_export = True        # exported when the member holds leads.export
            can_delete = False       # never deleted here, whatever the roles say
            column_list = ["name", "status"]

    Views of models that are not resources override :meth:`scope_query`
    (their own rows) and, for their relations, :meth:`scope_related_query`.
    """

    fast_mass_delete = False
    #: Timestamps as ``2026-12-05 14:03 UTC`` in lists and details (:mod:`.formatting`).
    column_type_formatters = LIST_FORMATTERS
    column_type_formatters_detail = DETAIL_FORMATTERS
    #: For models that are not registered resources: the column holding the workspace.
    workspace_column: str | None = "workspace_id"
    #: The template the view's pages extend; it extends the host's ``admin_base_template``.
    rbac_base_template = "rbac/admin/base.html"
    #: Where the bar of admin pages links back to (None: the application's root).
    home_url: str | None = None
    #: Relation select fields scoped through :meth:`scope_related_query`.
    model_form_converter = ScopedModelConverter

    #: Keyword arguments of ``ModelView.__init__``; any other keyword sets the
    #: view option of that name (``column_list=[...]``) before Flask-Admin reads it.
    _INIT_ARGS = frozenset({"name", "category", "endpoint", "url", "static_folder",
                            "menu_class_name", "menu_icon_type", "menu_icon_value"})

    def __init__(self, model: type, db: Any, *, rbac: RBACProtocol, resource: str,
                 **kwargs: Any) -> None:
        self.rbac = rbac
        self.resource = resource
        for key in [k for k in kwargs if k not in self._INIT_ARGS]:
            setattr(self, key, kwargs.pop(key))
        self.form_args = column_checks(model, self.form_args)
        super().__init__(model, db, **kwargs)
        add_person_formatters(self, model, rbac.user_model)
        unscoped = [name for name, loader in self._form_ajax_refs.items()
                    if not isinstance(loader, ScopedAjaxLoader)]
        if unscoped:  # inline forms' refs, or a host's own loader class
            raise TypeError(f"{type(self).__name__}: ajax refs {unscoped} would look up rows "
                            "outside the member's scope; use ScopedAjaxLoader for them")

    # -- permissions --------------------------------------------------------------------

    def _allowed(self, action: str, record: Any = None) -> bool:
        if signed_in_user() is None:
            return False
        try:
            return bool(self.rbac.can(action, self.resource, record))
        except (NoAccessContext, RBACError):
            return False

    @property
    def _protected(self) -> bool:
        res = self.rbac.registry.get(self.resource) if self.resource in self.rbac.registry else None
        return res is not None and res.model is self.model

    #: The action on :attr:`resource` that opens the view at all (the audit panel: ``manage``).
    access_action = "view"

    def is_accessible(self) -> bool:
        return self._allowed(self.access_action)

    def is_visible(self) -> bool:
        return self.is_accessible()

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        if signed_in_user() is None:
            login_view = getattr(current_app.login_manager, "login_view", None)  # type: ignore[attr-defined]
            if login_view:
                here = request.script_root + request.full_path.rstrip("?")
                return redirect(url_for(login_view, next=safe_next(here, "/")))
            abort(401)
        try:
            decision = self.rbac.explain(self.access_action, self.resource)
        except NoAccessContext:
            decision = Decision(False, "not a member of this workspace")
        self.rbac.signal_denied(self.rbac.current_access(), self.access_action, self.resource,
                                None, decision.reason)
        return self.rbac.refuse(decision, 403)

    def _handle_view(self, name: str, **kwargs: Any) -> Any:
        """Refuse, before any view, a query parameter of :data:`RESERVED_QUERY_NAMES`
        and a return address (``url``) that is not a path of this site.

        Flask-Admin redirects to ``url`` after a save, a delete, an action or
        a details page without a record, and its own check lets through
        ``http:/evil.example``, which browsers follow off the site.
        """
        refused = super()._handle_view(name, **kwargs)
        if refused is not None:
            return refused
        reserved = sorted(RESERVED_QUERY_NAMES.intersection(request.args))
        if reserved:
            return self.rbac.refusal(Decision(False, f"{reserved[0]}: not a parameter of "
                                             "this page", field=reserved[0]), 400)
        target = request.values.get("url")
        if target is not None and safe_next(target, "") != target:
            return self.rbac.refusal(Decision(False, "url: the return address must be a page "
                                             "of this site", field="url"), 400)
        return None

    def is_action_allowed(self, name: str) -> bool:
        if name == "delete" and self._protected:
            res = self.rbac.registry.get(self.resource)
            if "bulk" in res.actions and not self._allowed("bulk"):
                return False
        return bool(super().is_action_allowed(name))

    # -- scoping ------------------------------------------------------------------------

    def scope_query(self, query: Any) -> Any:
        """Return ``query`` (of the view's model) limited to the rows the member may see here.

        Lists, counts, details, edits, deletes and exports go through it.
        The default rules, applied by :meth:`default_scope`:

        * a protected resource's model: unchanged, the query filter adds the
          member's criteria;
        * the host's user model (``rbac.user_model``): the users who have
          joined the current workspace (pending invitees are not listed: their
          account's name is not this workspace's to know);
        * a model with the ``workspace_column``: its rows of the current workspace;
        * any other model: **no rows**. The plugin cannot tell whose rows a
          table holds, so it fails closed; a host that knows overrides this::

              class CountryView(RBACModelView):
                  def scope_query(self, query):
                      return query  # reference data, the same for every workspace
        """
        return self.default_scope(self.model, query, self.workspace_column)

    def scope_related_query(self, model: type, query: Any) -> Any:
        """Return ``query`` (of ``model``, a relation's target) limited to what the member may pick.

        Relation select fields and ``form_ajax_refs`` lookups go through it, so
        that the choices list no record and no user the member cannot see.
        Defaults: :meth:`scope_query` for the view's own model, else the rules
        of :meth:`default_scope` with a ``workspace_id`` column.
        """
        if model is self.model:
            return self.scope_query(query)
        return self.default_scope(model, query, "workspace_id")

    def default_scope(self, model: type, query: Any, workspace_column: str | None) -> Any:
        """Apply the plugin's rules of :meth:`scope_query` to a query of ``model``."""
        if self.rbac.registry.for_model(model) is not None:
            return query
        access = self._access()
        if access is None:
            return query.filter(sa.false())
        if model is self.rbac.user_model:
            M = self.rbac.models.Membership
            joined = sa.select(M.user_id).where(M.workspace_id == access.workspace_id,
                                                M.status != "pending")
            return query.filter(user_pk_column(self.rbac).in_(joined))
        column = sa.inspect(model).columns.get(workspace_column) if workspace_column else None
        if column is None:
            return query.filter(sa.false())
        return query.filter(column == access.workspace_id)

    def _access(self) -> Access | None:
        try:
            return self.rbac.current_access()
        except NoAccessContext:
            return None

    def _scope(self, query: Any) -> Any:
        query = self.scope_query(query)
        if self._protected and request.endpoint and request.endpoint.endswith(".export"):
            # The query filter adds the member's criteria; exports use the export ones.
            query = query.execution_options(rbac_action="export")
        return query

    def get_query(self) -> Any:
        return self._scope(super().get_query())

    def get_count_query(self) -> Any:
        return self._scope(super().get_count_query())

    def _create_ajax_loader(self, name: str, options: dict[str, Any]) -> AjaxModelLoader:
        loader = super()._create_ajax_loader(name, options)  # checks the relation
        return ScopedAjaxLoader(self, name, self.session, loader.model, **options)

    def _process_ajax_references(self) -> dict[str, AjaxModelLoader]:
        refs = super()._process_ajax_references()
        for name, loader in refs.items():
            if type(loader) is QueryAjaxModelLoader:
                refs[name] = ScopedAjaxLoader(self, loader.name, loader.session, loader.model,
                                              **loader.options)
        return refs

    def get_one(self, id: Any) -> Any:
        pk = sa.inspect(self.model).primary_key[0]
        ident = as_key(pk, id)
        if ident is None:
            abort(404)
        record = self.get_query().filter(pk == ident).one_or_none()
        if record is None:
            abort(404)
        # The edit form of a record the member may only view (shared view-only, or
        # another's unowned one) is refused as the app's own edit page refuses it.
        if (self._protected and (request.endpoint or "").endswith(".edit_view")
                and not self._allowed("edit", record)):
            decision = self.rbac.explain("edit", self.resource, record)
            self.rbac.signal_denied(self.rbac.current_access(), "edit", self.resource, record,
                                    decision.reason)
            self.rbac.refuse(decision, 403)
        return record

    # -- field-level security -----------------------------------------------------------
    # Flask-Admin computes its column lists once, at construction; these
    # properties keep that list and remove the member's hidden fields per request.

    def _hidden(self) -> frozenset[str]:
        if not self._protected:
            return frozenset()
        try:
            return self.rbac.hidden_fields(self.resource)
        except NoAccessContext:
            return frozenset()

    def _visible_columns(self, name: str) -> Any:
        columns = self.__dict__.get(name) or []
        hidden = self._hidden()
        return [c for c in columns if c[0] not in hidden]

    _list_columns = property(lambda self: self._visible_columns("_all_list_columns"),
                             lambda self, v: self.__dict__.__setitem__("_all_list_columns", v))
    _details_columns = property(
        lambda self: self._visible_columns("_all_details_columns"),
        lambda self, v: self.__dict__.__setitem__("_all_details_columns", v))
    _export_columns = property(
        lambda self: self._visible_columns("_all_export_columns"),
        lambda self, v: self.__dict__.__setitem__("_all_export_columns", v))

    def _refresh_cache(self) -> None:
        """Compute the details columns too: Flask-Admin skips them when ``can_view_details``
        is False at construction, which it always is here (no request, no member)."""
        super()._refresh_cache()
        self._details_columns = self.get_details_columns()

    def get_list(self, page: Any, sort_column: Any, sort_desc: Any, search: Any, filters: Any,
                 execute: bool = True, page_size: Any = None) -> Any:
        """Ignore a search or sort that would touch a hidden field (it would leak values)."""
        hidden = self._hidden()
        if hidden:
            searchable = {getattr(c, "key", c) for c in self.column_searchable_list or ()}
            if search and searchable & hidden:
                search = None
            if getattr(sort_column, "key", sort_column) in hidden:
                sort_column = None
        return super().get_list(page, sort_column, sort_desc, search, filters,
                                execute=execute, page_size=page_size)

    def _strip(self, form: Any) -> Any:
        for name in form_excluded(self.model):  # the plugin fills them (mixins.WorkspaceMixin)
            if name in form:
                del form[name]
        if self._protected:
            blocked = fields.hidden_attributes(self.model, self._hidden()
                                               | self.rbac.readonly_fields(self.resource))
            for name in blocked:
                if name in form:
                    del form[name]
        return form

    def create_form(self, obj: Any = None) -> Any:
        return self._strip(super().create_form(obj))

    def edit_form(self, obj: Any = None) -> Any:
        hidden = self._hidden()  # the form reads visible fields only (hidden ones refuse)
        return self._strip(super().edit_form(
            fields.VisibleView(obj, hidden) if obj is not None and hidden else obj))

    # -- writes -------------------------------------------------------------------------

    def handle_view_exception(self, exc: Exception) -> bool:
        """Refuse a write the member may not make with the app's 403, and tell an
        integrity error in words.

        A :class:`.PermissionDenied` (from :meth:`on_model_change` or the flush
        guard) goes to the extension's error handler, which rolls back and
        answers 403 with the reason, as every other path does; Flask-Admin
        would show a 200 form with a generic failure. Flask-Admin's message for
        an integrity error is the driver's, with the SQL statement, its
        parameters and the schema's names; the error itself goes to the app's log.
        """
        if isinstance(exc, PermissionDenied):
            raise exc
        if isinstance(exc, sa.exc.IntegrityError):
            current_app.logger.warning("Flask-Admin %s: %s", self.resource, exc)
            flash("This record could not be saved: a required value is missing, or a "
                  "value is already used by another record.", "error")
            return True
        return bool(super().handle_view_exception(exc))

    def on_model_change(self, form: Any, model: Any, is_created: bool) -> None:
        action = "create" if is_created else "edit"
        if not self._allowed(action):
            raise PermissionDenied(f"You may not {action} {self.resource}.",
                                   resource=self.resource, action=action)

    def on_model_delete(self, model: Any) -> None:
        if not self._allowed("delete", model if self._protected else None):
            raise PermissionDenied(f"You may not delete this {self.resource} record.",
                                   resource=self.resource, action="delete")

    @action("delete", lazy_gettext("Delete"),
            lazy_gettext("Are you sure you want to delete selected records?"))
    def action_delete(self, ids: Any) -> Any:
        """Mass delete, all or none, through :func:`.bulk.select`.

        Every selected record must allow ``bulk`` and ``delete`` (conditions,
        denies and agreements included): an invisible one is a 404 and a
        refused one a 403 for the whole request, and nothing is deleted. The
        rows go in one transaction, each checked again by the flush guard.
        """
        if not self._protected:
            return super().action_delete(self._typed_ids(ids))
        records = bulk.select(self.rbac, self.resource, ids, "delete")
        session = self.rbac.db.session  # the session bulk.select loaded them with
        for record in records:
            self.on_model_delete(record)
            session.delete(record)
        session.commit()
        for record in records:
            self.after_model_delete(record)
        flash(ngettext("Record was successfully deleted.",
                       "%(count)s records were successfully deleted.",
                       len(records), count=len(records)), "success")
        return None

    def _typed_ids(self, ids: Any) -> list[Any]:
        """Ids converted to the key's type (PostgreSQL compares ``integer = varchar``
        with an error, which Flask-Admin's own action hits)."""
        pk = sa.inspect(self.model).primary_key[0]
        return [key for key in (as_key(pk, ident) for ident in ids) if key is not None]

    # -- pages --------------------------------------------------------------------------

    def render(self, template: str, **kwargs: Any) -> Any:
        """Render with ``rbac_base_template`` as the ``admin_base_template`` of the page.

        That template extends the host's base (``rbac_host_base_template``) and
        adds the workspace, a link back to the app and the view-as banner,
        from ``rbac_admin`` (computed here, so no context processor is needed).
        Flask-Admin's ``_template_args`` override its own arguments.
        """
        args = self._template_args
        args["rbac_host_base_template"] = self.admin.theme.base_template  # type: ignore[union-attr]
        args["admin_base_template"] = self.rbac_base_template
        args["rbac_admin"] = self._page_context()
        return super().render(template, **kwargs)

    def _page_context(self) -> dict[str, Any]:
        access = self._access()
        workspace = (self.rbac.db.session.get(self.rbac.models.Workspace, access.workspace_id)
                     if access is not None else None)
        return {"workspace": workspace, "view_as": viewas.banner(self.rbac),
                "home_url": self.home_url or request.script_root + "/"}

    # -- export -------------------------------------------------------------------------

    def export_limit(self) -> int:
        """The most rows an export may hold, 0 for no limit.

        Flask-Admin reads ``export_max_rows``: 0 (its default and this view's)
        exports everything, ``None`` means one page (``page_size``).
        """
        limit = self.export_max_rows
        return int(self.page_size if limit is None else limit or 0)

    @expose("/export/<export_type>/")
    def export(self, export_type: str) -> Any:
        """Export, or refuse with a message an export larger than :meth:`export_limit`.

        A file cut at the limit would look complete; so the member is told the
        limit and the count and asked to narrow the export with a search or filters.
        """
        try:
            return super().export(export_type)
        except _ExportLimited as limited:
            found = "more" if limited.count is None else str(limited.count)
            flash(f"This export would hold {found} rows; exports here hold at most "
                  f"{limited.limit}. Narrow it with a search or filters.", "error")
            return redirect(get_redirect_target() or self.get_url(".index_view"))


    def get_export_value(self, model: Any, name: Any) -> Any:
        """Return a cell of the export, neutralised by :func:`.csvsafe.safe_cell`.

        Rows of :meth:`_export_data` already hold their neutralised values.
        """
        if isinstance(model, _ExportRow):
            return model.values[name]
        return csvsafe.safe_cell(super().get_export_value(model, name))

    def _export_data(self) -> Any:
        """Read the rows to export, audit them and commit before anything is sent.

        Flask-Admin streams the CSV after the view returns, when the request's
        session may already be gone and every record is expired by the commit;
        so the cells are read here, once, into plain rows (the query applied
        the member's ``export`` criteria and the columns leave hidden fields
        out). The audit event counts exactly these rows, which are all sent.
        """
        count, records = super()._export_data()
        limit = self.export_limit()
        if limit and len(records) >= limit and (count is None or count > len(records)):
            # count is None with simple_list_pager: a full page may hide more rows.
            raise _ExportLimited(count, limit)
        # Over the workspace's approval threshold the export waits (the gate
        # answers "pending approval"). Flask-Admin's filters cannot be replayed
        # outside this request, so such a request fails when approved unless
        # the host registered a producer for via="admin" (approvals.export_producer).
        gate.require(self.rbac, self._access(), "export",
                     {"resource": self.resource, "via": "admin",
                      "query": request.query_string.decode()[:500]},
                     count=count if count is not None else len(records),
                     summary=f"Export {len(records)} {self.resource} (admin)")
        names = [c[0] for c in self._export_columns]
        rows = [_ExportRow({n: self.get_export_value(r, n) for n in names}) for r in records]
        res = self.rbac.registry.for_model(self.model)  # None: rows of no other workspace
        by_workspace: dict[Any, int] = {}
        for record in records:
            ws = res.workspace_of(record) if res is not None else None
            by_workspace[ws] = by_workspace.get(ws, 0) + 1
        self.rbac.audit_export(self.resource, by_workspace,
                               target=f"{self.resource} admin export ({len(rows)} rows)",
                               via="admin")
        self.rbac.db.session.commit()
        return count, rows


class _ExportRow:
    """The export cells of one record, keyed by column name (no database behind it)."""

    __slots__ = ("values",)

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values
