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
* ``can_create``/``can_edit``/``can_delete``/``can_export``/``can_view_details``
  are properties asking the plugin per request, so buttons show only when
  allowed. A host may narrow them, never widen them: a subclass's class
  attribute (``can_export = True``, the usual Flask-Admin idiom) or property
  is read as "the host allows it" and combined with the plugin's decision by
  AND; ``False`` switches the action off for good, in that class and in its
  subclasses. Assigning one on a view (``view.can_edit = False``, or a
  constructor keyword) sets that view's host flag, under the plugin's
  decision likewise.
* ``get_query``, ``get_count_query`` **and** ``get_one`` are scoped through
  :meth:`RBACModelView.scope_query`: the query filter already adds the
  member's criteria to protected models, and ``get_one`` selects instead of
  ``Session.get`` (which may answer from the identity map unfiltered); a
  record outside view is a 404 for ``/edit/?id=`` and ``/details/?id=``.
  Models that are not protected resources: the host's user model lists the
  members of the current workspace, a model with a ``workspace_column`` is
  scoped to the workspace, and any other model lists nothing until the host
  overrides ``scope_query`` (fail closed).
* Relation choices (the select fields Flask-Admin builds for relationships)
  and ``form_ajax_refs`` lookups go through
  :meth:`RBACModelView.scope_related_query`, with the same rules: a Member
  picks only the clients they see and only users of their workspace. A
  posted id outside that scope never links: Flask-Admin reports a required
  relation as "Not a valid choice" and leaves a nullable one empty.
* :class:`RBACAdminIndexView` is a home page for ``/admin``: how many records
  of each panel, members, roles and open invitations the member may see.
* Pages extend ``rbac/admin/base.html``, which extends the host's
  ``admin_base_template`` and shows the workspace, a link back to the app
  and the view-as banner; no host context processor is needed.
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
  The rows are read and the audit committed before the CSV streams. An
  export holds every row the member may export: with a host's
  ``export_max_rows`` (or ``None``, Flask-Admin's "one page") an export
  that would exceed it is refused with a message, never cut short.
"""

from .home import RBACAdminIndexView
from .panels import ReadOnlyRBACModelView, SharingAgreementView, plugin_views
from .relations import ScopedAjaxLoader
from .views import RBACModelView

__all__ = ["RBACAdminIndexView", "RBACModelView", "ReadOnlyRBACModelView", "ScopedAjaxLoader",
           "SharingAgreementView", "plugin_views"]
