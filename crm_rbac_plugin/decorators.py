"""View decorators and record loaders for host routes.

Every refusal goes through one replaceable handler
(:meth:`.RBAC.unauthorized_handler`): anonymous users are sent to the login
page, JSON clients get ``{"error": ..., "message": ...}`` and browsers a
friendly 403 page.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import abort, jsonify, make_response, render_template, request

from .config import setting
from .identity import signed_in_user
from .inputs import typed_key
from .policy import Decision
from .proxies import current_flask_app, get_rbac
from .registry import split_permission

F = TypeVar("F", bound=Callable[..., Any])

#: Methods that never need a permission (CORS pre-flight), as in Flask-Login.
EXEMPT_METHODS = frozenset({"OPTIONS"})

#: Per model: its primary key's type and ``SELECT model WHERE pk = :rbac_ident``.
_BY_PK: weakref.WeakKeyDictionary[type, tuple[Any, sa.Select[Any]]] = (
    weakref.WeakKeyDictionary())


def by_primary_key(model: Any) -> tuple[Any, sa.Select[Any]]:
    """``model``'s primary key type and the statement that loads one record by its
    key (parameter ``rbac_ident``), through the query filter like any select.

    Built once per model: a new ``select()`` is built and walked for its cache
    key at every execution, the one kept memoizes its key.
    """
    found = _BY_PK.get(model)
    if found is None:
        keys = sa.inspect(model).primary_key
        if len(keys) != 1:  # half a key would name several records, or the wrong one
            raise TypeError(f"{model.__name__} has a composite primary key: load its "
                            "records by their whole key and check them with rbac.can()")
        pk = keys[0]
        statement = sa.select(model).where(pk == sa.bindparam("rbac_ident", type_=pk.type))
        found = _BY_PK[model] = (pk.type, statement)
    return found


def wants_json() -> bool:
    """Whether the client asked for JSON rather than a page.

    A JSON body, a path under ``RBAC_API_URL_PREFIX`` or an ``Accept`` header
    preferring JSON asks for JSON.
    """
    prefix = setting("RBAC_API_URL_PREFIX").rstrip("/")
    if request.is_json or request.path == prefix or request.path.startswith(prefix + "/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def default_unauthorized(decision: Decision, status: int = 403) -> Any:
    """Return the standard refusal for ``status`` (400/401/403/404).

    Anonymous browsers are sent to the login page; JSON clients get
    ``{"error", "message"}`` (and ``field`` for bad input, 400, as the API
    answers it); browsers get the ``RBAC_FORBIDDEN_TEMPLATE`` page.
    """
    if signed_in_user() is None:
        login_manager = getattr(current_flask_app(), "login_manager", None)
        if login_manager is not None and not wants_json():
            return login_manager.unauthorized()
        status = 401
    if status == 404:
        message = "Not found."
        error = "not_found"
    elif status == 401:
        message = "Please log in."
        error = "unauthorized"
    elif status == 400:
        message = decision.reason or "The request is not valid."
        error = "validation_error"
    else:
        message = decision.reason or "You do not have permission to do that."
        error = "forbidden"
    if wants_json():
        response = jsonify(error=error, message=message,
                           **({"field": decision.field} if status == 400 else {}))
    else:
        response = make_response(render_template(
            setting("RBAC_FORBIDDEN_TEMPLATE"), status=status, message=message,
            decision=decision))
    response.status_code = status
    return response


def require_permission(resource: str, action: str | None = None) -> Callable[[F], F]:
    """Refuse the view unless the member may do ``action`` on ``resource``.

    ``@require_permission("leads", "edit")`` and ``@require_permission("leads.edit")``
    are the same. This is a resource-level check; records are checked by
    :func:`get_or_404` and by the query filter.
    """
    resource, action = split_permission(resource, action)

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if request.method not in EXEMPT_METHODS:
                rbac = get_rbac()
                if signed_in_user() is None:
                    return rbac.refuse(Decision(False, "not logged in"), 401)
                if rbac.can(action, resource):
                    return current_flask_app().ensure_sync(view)(*args, **kwargs)
                # The reasons only for a refusal: can() is memoised per member.
                decision = rbac.explain(action, resource)
                if not decision:
                    rbac.signal_denied(rbac.current_access(), action, resource, None,
                                       decision.reason)
                    return rbac.refuse(decision, 403)
            return current_flask_app().ensure_sync(view)(*args, **kwargs)
        return wrapped  # type: ignore[return-value]
    return decorator


def get_or_404(resource: str, ident: Any, action: str = "view") -> Any:
    """Load a record the member may see, or answer 404; then check ``action``.

    A record outside the member's view is a 404 so that its existence is not
    disclosed; a visible record the member may not ``action`` is a 403.
    """
    rbac = get_rbac()
    res = rbac.registry.check_action(resource, action)
    pk_type, statement = by_primary_key(res.model)
    ident = typed_key(pk_type, ident)
    if ident is None:
        abort(404)
    record = rbac.db.session.execute(statement, {"rbac_ident": ident}).scalar_one_or_none()
    if record is None:
        if signed_in_user() is not None:
            rbac.signal_denied(rbac.current_access(), "view", resource, None,
                               f"record #{ident} is not visible")
        return rbac.refuse(Decision(False, "not found"), 404)
    if action != "view":
        decision = rbac.explain(action, resource, record)
        if not decision:
            rbac.signal_denied(rbac.current_access(), action, resource, record, decision.reason)
            return rbac.refuse(decision, 403)
    return record


def record_required(resource: str, action: str = "view", *, arg: str = "id",
                    name: str = "record") -> Callable[[F], F]:
    """Load the record named by URL argument ``arg`` with :func:`get_or_404`.

    The view receives it as keyword ``name``::

        @bp.post("/leads/<int:id>/delete")
        @record_required("leads", "delete", name="lead")
        def delete_lead(lead): ...
    """
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if request.method in EXEMPT_METHODS:
                return current_flask_app().ensure_sync(view)(*args, **kwargs)
            if signed_in_user() is None:
                return get_rbac().refuse(Decision(False, "not logged in"), 401)
            kwargs[name] = get_or_404(resource, kwargs.pop(arg), action)
            return current_flask_app().ensure_sync(view)(*args, **kwargs)
        return wrapped  # type: ignore[return-value]
    return decorator


def login_required(view: F) -> F:
    """Refuse anonymous requests (401, or the host's login page for a browser).

    The plugin's own pages use it instead of Flask-Login's, so that they
    follow :func:`.identity.signed_in_user` and therefore a host's
    ``@rbac.user_getter`` too.
    """
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if request.method not in EXEMPT_METHODS and signed_in_user() is None:
            return get_rbac().refuse(Decision(False, "not logged in"), 401)
        return current_flask_app().ensure_sync(view)(*args, **kwargs)
    return wrapped  # type: ignore[return-value]
