"""Flask-Admin integration: a base view that enforces the member's access.

::

    from flask_admin import Admin
    from flask_admin.theme import Bootstrap4Theme
    from crm_rbac_plugin.admin import RBACModelView

    admin = Admin(app, url="/admin", theme=Bootstrap4Theme())
    admin.add_view(RBACModelView(Lead, db, rbac=rbac, resource="leads"))

What :class:`RBACModelView` does (the Flask-Admin ``examples/auth`` pattern,
with the plugin's decisions):

* ``is_accessible``/``is_visible``: the member may ``view`` the resource;
  ``inaccessible_callback`` redirects anonymous users to the login page and
  answers 403 (the plugin's refusal page) to others.
* ``can_create``/``can_edit``/``can_delete``/``can_export`` are properties
  asking the plugin per request, so buttons show only when allowed.
* ``get_query``, ``get_count_query`` **and** ``get_one`` are scoped: the
  query filter already adds the member's criteria to protected models, and
  ``get_one`` selects instead of ``Session.get`` (which may answer from the
  identity map unfiltered); a record outside view is a 404 for
  ``/edit/?id=`` and ``/details/?id=``. Views of models that are not
  protected resources (the plugin's own tables) are scoped to the
  workspace through ``workspace_column``.
* Hidden fields leave the list, details and export columns and the forms,
  and a search or sort touching one is ignored; read-only fields leave the
  forms (the flush refuses writes to both anyway).
* ``on_model_change``/``on_model_delete`` re-check the action on the record;
  the flush guard checks again. Mass delete goes through
  :func:`.bulk.select`: every selected record must allow ``bulk`` (on
  resources that declare it) and ``delete``, or nothing is deleted
  (``fast_mass_delete = False`` keeps Flask-Admin's own path row by row too).
* Exports use the ``export`` criteria, are written to the audit trail, and
  every cell goes through :func:`.csvsafe.safe_cell` (formula injection).
  The rows are read and the audit committed before the CSV streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, url_for
from flask_admin.actions import action
from flask_admin.babel import lazy_gettext, ngettext
from flask_admin.contrib.sqla import ModelView

from . import bulk, csvsafe, fields
from .errors import NoAccessContext, PermissionDenied, RBACError
from .identity import signed_in_user
from .policy import Decision
from .urls import safe_next

if TYPE_CHECKING:
    from .interface import RBACProtocol

__all__ = ["RBACModelView", "ReadOnlyRBACModelView"]


class RBACModelView(ModelView):
    """A Flask-Admin model view guarded by the plugin (see the module docstring)."""

    fast_mass_delete = False
    can_view_details = True
    #: For models that are not registered resources: the column holding the workspace.
    workspace_column: str | None = "workspace_id"

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
        super().__init__(model, db, **kwargs)

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

    def is_accessible(self) -> bool:
        return self._allowed("view")

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
            decision = self.rbac.explain("view", self.resource)
        except NoAccessContext:
            decision = Decision(False, "not a member of this workspace")
        self.rbac.signal_denied(self.rbac.current_access(), "view", self.resource, None,
                                decision.reason)
        return self.rbac.refuse(decision, 403)

    @property  # type: ignore[override]
    def can_create(self) -> bool:
        return self._allowed("create")

    @property  # type: ignore[override]
    def can_edit(self) -> bool:
        return self._allowed("edit")

    @property  # type: ignore[override]
    def can_delete(self) -> bool:
        return self._allowed("delete")

    @property  # type: ignore[override]
    def can_export(self) -> bool:
        return self._allowed("export")

    def is_action_allowed(self, name: str) -> bool:
        if name == "delete" and self._protected:
            res = self.rbac.registry.get(self.resource)
            if "bulk" in res.actions and not self._allowed("bulk"):
                return False
        return bool(super().is_action_allowed(name))

    # -- scoping ------------------------------------------------------------------------

    def _scope(self, query: Any) -> Any:
        if self._protected:
            # The query filter adds the member's criteria; exports use the export ones.
            if request.endpoint and request.endpoint.endswith(".export"):
                query = query.execution_options(rbac_action="export")
            return query
        access = self.rbac.current_access()
        if access is None or self.workspace_column is None:
            return query.filter(sa.false())
        return query.filter(getattr(self.model, self.workspace_column) == access.workspace_id)

    def get_query(self) -> Any:
        return self._scope(super().get_query())

    def get_count_query(self) -> Any:
        return self._scope(super().get_count_query())

    def get_one(self, id: Any) -> Any:
        pk = sa.inspect(self.model).primary_key[0]
        try:
            ident = pk.type.python_type(id)
        except (TypeError, ValueError):
            abort(404)
        record = self.get_query().filter(pk == ident).one_or_none()
        if record is None:
            abort(404)
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
        typed = []
        for ident in ids:
            try:
                typed.append(pk.type.python_type(ident))
            except (TypeError, ValueError):
                continue
        return typed

    # -- export -------------------------------------------------------------------------

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
        names = [c[0] for c in self._export_columns]
        rows = [_ExportRow({n: self.get_export_value(r, n) for n in names}) for r in records]
        res = self.rbac.registry.get(self.resource)
        by_workspace: dict[Any, int] = {}
        for record in records:
            ws = getattr(record, res.workspace_column, None)
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


class ReadOnlyRBACModelView(RBACModelView):
    """A read-only panel (the plugin's own tables: changes go through the settings pages,
    where the service layer's rules apply)."""

    can_create = False  # type: ignore[assignment]
    can_edit = False  # type: ignore[assignment]
    can_delete = False  # type: ignore[assignment]
    can_export = False  # type: ignore[assignment]


class SharingAgreementView(ReadOnlyRBACModelView):
    """Agreements the current workspace grants or receives (both sides see them);
    changes go through the sharing pages, where only the granting side widens."""

    def _scope(self, query: Any) -> Any:
        access = self.rbac.current_access()
        if access is None:
            return query.filter(sa.false())
        SA = self.model
        return query.filter(sa.or_(SA.granting_workspace_id == access.workspace_id,
                                   SA.receiving_workspace_id == access.workspace_id))


def plugin_views(rbac: RBACProtocol, db: Any, category: str = "Access") -> list[RBACModelView]:
    """Read-only panels of roles, members, departments, sharing agreements and audit
    events (Owners/Admins)."""
    m = rbac.models
    return [
        SharingAgreementView(m.SharingAgreement, db, rbac=rbac, resource="settings",
                             name="Sharing agreements", endpoint="rbac_admin_sharing",
                             category=category,
                             column_list=["id", "granting_workspace", "receiving_workspace",
                                          "status", "expires_at", "notes", "created_at"],
                             column_default_sort=("id", True)),
        ReadOnlyRBACModelView(m.Role, db, rbac=rbac, resource="settings", name="Roles",
                              endpoint="rbac_admin_roles", category=category,
                              column_list=["name", "key", "builtin", "description"]),
        ReadOnlyRBACModelView(m.Membership, db, rbac=rbac, resource="settings",
                              name="Members", endpoint="rbac_admin_members", category=category,
                              column_list=["display_name", "status", "department",
                                           "last_seen_at"],
                              column_details_list=["display_name", "status", "department",
                                                   "last_seen_at", "created_at"],
                              column_labels={"display_name": "Member"}),
        ReadOnlyRBACModelView(m.Department, db, rbac=rbac, resource="settings",
                              name="Departments", endpoint="rbac_admin_departments",
                              category=category, column_list=["name"]),
        ReadOnlyRBACModelView(rbac.models.AuditEvent, db, rbac=rbac, resource="settings",
                              name="Audit events", endpoint="rbac_admin_audit",
                              category=category,
                              column_list=["at", "action", "resource", "target",
                                           "actor_membership_id"],
                              column_default_sort=("at", True)),
    ]
