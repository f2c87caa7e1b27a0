"""Relation choices and ajax lookups of the admin forms, kept to the member's scope.

Flask-Admin fills a relation's select field, and answers a ``form_ajax_refs``
lookup, with every row of the related model: any workspace's users and
records (Flask-Admin issue #397's class of leak). Here both go through the
view's ``scope_related_query``, and a posted id is loaded through it too
(never ``Session.get``, which may answer from the identity map unfiltered).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import sqlalchemy as sa
from flask_admin.contrib.sqla.ajax import QueryAjaxModelLoader
from flask_admin.contrib.sqla.form import AdminModelConverter

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["ScopedAjaxLoader", "ScopedModelConverter", "as_key"]


class ScopingView(Protocol):
    """What the loaders need of the view: the extension and its relation scope."""

    rbac: RBACProtocol

    def scope_related_query(self, model: type, query: Any) -> Any: ...


def as_key(column: Any, value: Any) -> Any:
    """Return ``value`` (from a URL or a form) converted to ``column``'s type, or None."""
    try:
        return column.type.python_type(value)
    except (TypeError, ValueError, NotImplementedError):
        return None


class ScopedAjaxLoader(QueryAjaxModelLoader):
    """A ``form_ajax_refs`` loader whose lookups and posted ids keep to the view's scope.

    Flask-Admin's loader queries every row of the related model (any
    workspace's users and records); this one goes through
    :meth:`.views.RBACModelView.scope_related_query`, and loads a posted id with a
    scoped select rather than ``Session.get``, so an id outside the scope
    loads nothing. :class:`~.views.RBACModelView` builds these from the dicts
    of ``form_ajax_refs`` and converts plain ``QueryAjaxModelLoader`` instances.
    """

    def __init__(self, view: ScopingView, name: str, session: Any, model: type,
                 **options: Any) -> None:
        super().__init__(name, session, model, **options)
        self.view = view

    def get_query(self) -> Any:
        return self.view.scope_related_query(self.model, super().get_query())

    def get_one(self, pk: Any) -> Any:
        column = sa.inspect(self.model).primary_key[0]
        ident = as_key(column, pk)
        if ident is None:
            return None
        with self.view.rbac.db.session.no_autoflush:  # as Flask-Admin's: no flush mid-populate
            return self.get_query().filter(column == ident).one_or_none()


class ScopedModelConverter(AdminModelConverter):
    """Builds relation select fields whose choices go through the view's
    :meth:`~.views.RBACModelView.scope_related_query`; the field's validation takes
    its choices from there too, so a posted id outside them never links.
    Fields of ``form_ajax_refs`` use their :class:`ScopedAjaxLoader`, and a
    ``query_factory`` the host passes in ``form_args`` is used as given."""

    def _model_select_field(self, prop: Any, multiple: Any, remote_model: Any,
                            **kwargs: Any) -> Any:
        ajax = prop.key in getattr(self.view, "_form_ajax_refs", {})
        if not ajax and "query_factory" not in kwargs:
            kwargs["query_factory"] = _related_choices(self.view, remote_model)
        return super()._model_select_field(prop, multiple, remote_model, **kwargs)


def _related_choices(view: ScopingView, model: type) -> Callable[[], Any]:
    def query() -> Any:
        return view.scope_related_query(model, view.rbac.db.session.query(model))
    return query
