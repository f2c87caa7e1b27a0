"""The :class:`RBAC` extension object: the wiring and the public face.

``RBAC`` defines the plugin's models, keeps the resource registry and the
app-independent hooks, and on :meth:`RBAC.init_app` registers config
defaults, blueprints, CLI, template context and error handling. Each concern
lives in its own module as functions taking the extension first; ``RBAC``
exposes them as methods: :mod:`.identity` (who the member is),
:mod:`.decisions` (may they), :mod:`.listener` (the query filter),
:mod:`.guard` (the write guard), :mod:`.audit` (the trail).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any, NoReturn

from flask import Blueprint, Flask, abort, current_app, has_app_context, make_response
from flask_login import user_logged_in
from sqlalchemy import event
from werkzeug.wrappers import Response

from . import (
    adoption,
    approvals,
    cli,
    decisions,
    decorators,
    dependants,
    fields,
    form_workspace,
    identity,
    inputs,
    links,
    listener,
    security,
    sharing,
    signals,
    team,
    templating,
    tokens,
    transactions,
    user_keys,
)
from . import audit as audit_log
from .access_cache import AccessCache, PolicyCache
from .alerts import engine as alert_engine
from .api import views as api_views
from .config import apply_defaults, request_settings, setting
from .context import SYSTEM, MemberHandle, override
from .defaults import ADMIN_RESOURCES, APPROVALS_RESOURCE, BILLING_RESOURCE
from .errors import PermissionDenied
from .files import cleanup as files_cleanup
from .hooks import HookDecorators, Hooks
from .models import Models, define_models
from .notify import setup as notify_setup
from .oversight import cli as oversight_cli
from .oversight import viewas
from .oversight import views as oversight_views
from .policy import Access, Decision
from .proxies import current_flask_app, current_request
from .query import StatementMemo
from .quotas import setup as quota_setup
from .registry import STANDARD_ACTIONS, Registry, Resource, split_permission
from .security import enforce as mfa_gate
from .settings import views as settings_views
from .team import activity

__all__ = ["RBAC", "split_permission"]


def before_request() -> Any:
    """The plugin's one ``before_request`` pass, for every request of every app using it.

    In this order: the refusal of a query or form value no database stores
    (:func:`.inputs.refuse_unstorable_values`: a NUL), the member's last
    activity (:mod:`.team.activity`; a
    refused request still counts as activity), the IP allowlist, the session
    and MFA gate (:func:`.security.enforce.screen`), then the refusal of
    writes while viewing as (:func:`.oversight.viewas.refuse_write_request`)
    and of a form rendered in another workspace than the current one
    (:func:`.form_workspace.refuse_stale_form`).
    The user, their workspace and the account row the user loader read come
    from one :class:`~.identity.Visit` that the checks share. Static files pass untouched;
    a request without an endpoint (404) is stamped and passes.
    """
    req = current_request()
    endpoint = req.endpoint
    if endpoint == "static":
        return None
    refused = inputs.refuse_unstorable_values(req)
    if refused is not None:
        return refused
    app = current_flask_app()
    rbac = app.extensions["rbac"].rbac
    identity.request_state().served = True
    settings = request_settings(app)
    facts = identity.visit(rbac, settings)
    if facts is not None:
        activity.touch_last_seen(rbac, app, facts)
    if endpoint is None:
        return None
    screened = mfa_gate.screen(rbac, endpoint, facts, settings)
    if screened is None:
        viewas.refuse_write_request(rbac, endpoint, settings.exempt_endpoints)
        screened = form_workspace.refuse_stale_form(rbac)
    return screened


class _State:
    """What one Flask app keeps of the extension (``app.extensions["rbac"]``)."""

    def __init__(self, rbac: RBAC, app: Flask) -> None:
        self.rbac = rbac
        self.cache = AccessCache(setting("RBAC_CACHE_SIZE", app))
        self.policies = PolicyCache(setting("RBAC_CACHE_SIZE", app))


class RBAC(HookDecorators):
    """Per-workspace, per-resource, per-action access control for a Flask app.

    ::

        db = SQLAlchemy(model_class=Base)
        rbac = RBAC(db=db, user_model=User)
        rbac.register_resource("leads", Lead, module="sales")

        def create_app():
            app = Flask(__name__)
            db.init_app(app)
            rbac.init_app(app)
            return app

    The plugin's tables are defined on ``db`` at construction and reached as
    ``rbac.models``. One ``do_orm_execute`` listener filters every ORM query
    of a protected model and one ``before_flush`` listener guards every write
    (see :mod:`.listener`, :mod:`.query` and :mod:`.guard`).
    """

    SYSTEM = SYSTEM

    def __init__(self, app: Flask | None = None, *, db: Any, user_model: type) -> None:
        self.db = db
        self.user_model = user_model
        self.models: Models = define_models(db, user_model)
        self.registry = Registry()
        for name, label in ADMIN_RESOURCES:
            self.registry.add(Resource(name, module="administration", label=label,
                                       owner_column=None))
        for name, label, actions in (APPROVALS_RESOURCE, BILLING_RESOURCE):
            self.registry.add(Resource(name, module="administration", label=label,
                                       owner_column=None, actions=actions))
        self.hooks = Hooks(unauthorized=decorators.default_unauthorized)
        self.statements = StatementMemo()
        #: The sign-in API a host's login view calls: ``check``, ``failed``, ``succeeded``.
        self.auth = security.SignInGuard(self)
        self._install_listeners(db.session)
        # Refusals of every app using this extension go to the audit trail.
        signals.access_denied.connect(self._audit_denied, weak=False)
        # A user who signs in with no membership gets RBAC_SIGNUP_ROLE, when set.
        user_logged_in.connect(partial(adoption.on_user_logged_in, self), weak=False)
        identity.watch_sign_in()
        mfa_gate.watch_sign_in()  # a new sign-in needs a new MFA code
        if app is not None:
            self.init_app(app)

    # -- set-up -------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Register the extension on ``app``."""
        if "rbac" in app.extensions:
            raise RuntimeError("RBAC is already registered on this app.")
        apply_defaults(app.config)
        adoption.check_tenancy(self, app)
        app.extensions["rbac"] = _State(self, app)
        app.register_blueprint(Blueprint("rbac", __name__, template_folder="templates",
                                         static_folder="static", url_prefix="/rbac"))
        app.context_processor(partial(templating.template_context, self))
        templating.install_globals(self, app)
        app.add_template_filter(self.label, "rbac_label")
        app.register_error_handler(PermissionDenied, self._handle_permission_denied)
        team.init_app(app)  # the last-activity stamp's bounded memory
        mfa_gate.init_app(app)  # the server-side sessions
        # Last activity, the IP allowlist, the session and MFA gate: one pass.
        app.before_request(before_request)
        notify_setup.init_app(self, app)  # inline mail delivery, the bell
        quota_setup.init_app(self, app)  # a quota refusal no view caught: a 409
        # Refusals are stored after the (rolled back) request.
        app.after_request(self._write_denied)
        if setting("RBAC_CLI", app):
            app.cli.add_command(cli.rbac_group)
            oversight_cli.register(cli.rbac_group)
        if setting("RBAC_REGISTER_BLUEPRINTS", app):
            settings_views.register(app)
            oversight_views.register(app)  # audit, explain, view-as, access review
            api_views.register(app)
        approvals.init_app(app)  # the approval gate and its 202 / "pending approval" answer
        security.init_app(app)  # per-IP limits: the invitation route, @rbac.rate_limited
        transactions.init_app(app, self.db)  # PostgreSQL keeps its prepared statements

    def register_resource(self, name: str, model: type | None = None, *, module: str = "general",
                          label: str = "", workspace: str | None = "workspace_id",
                          owner: str | None = "owner_id", department: str | None = None,
                          parent: tuple[str, str] | None = None,
                          actions: tuple[str, ...] = (),
                          sensitive: Mapping[str, Iterable[Any]] | None = None) -> Resource:
        """Protect ``model`` as resource ``name``.

        ``parent=("clients", "client_id")`` makes a record visible to whoever
        sees its parent record. ``actions`` adds custom actions to the six
        standard ones. ``sensitive={"status": ("sent", "void")}`` makes setting
        a column to one of those values a sensitive action: the flush guard
        asks for ``manage`` on the record besides ``create`` or ``edit``,
        whatever path wrote it. ``workspace=None`` declares a model without a
        workspace column, which only single-tenant mode accepts
        (``RBAC_SINGLE_TENANT``; checked by ``init_app``, and here when the
        current app already uses this extension).
        """
        all_actions = STANDARD_ACTIONS + tuple(a for a in actions if a not in STANDARD_ACTIONS)
        res = Resource(name, model, module=module, label=label or name.title(),
                       workspace_column=workspace, owner_column=owner,
                       department_column=department,
                       parent=parent[0] if parent else None,
                       parent_column=parent[1] if parent else None, actions=all_actions,
                       sensitive=tuple((column, frozenset(values))
                                       for column, values in (sensitive or {}).items()))
        self.statements.clear()
        if model is not None:
            fields.watch(self, model)
        state = current_app.extensions.get("rbac") if has_app_context() else None
        if state is not None and state.rbac is self:
            adoption.check_resource(res, current_app._get_current_object())  # type: ignore[attr-defined]
        return self.registry.add(res)

    def resource(self, name: str, **options: Any) -> Callable[[type], type]:
        """Class decorator form of :meth:`register_resource`."""
        def decorator(model: type) -> type:
            self.register_resource(name, model, **options)
            return model
        return decorator

    # -- the current member -------------------------------------------------

    config = staticmethod(setting)

    @property
    def state(self) -> _State:
        return current_app.extensions["rbac"]  # type: ignore[no-any-return]

    user_pk = staticmethod(user_keys.user_pk)
    current_workspace_id = identity.current_workspace_id
    load_user_from_request = identity.load_user_from_request
    load_user = identity.load_user
    access_for = identity.access_for
    resolve_context = identity.resolve_context

    def current_access(self) -> Access | None:
        """Return the effective access of the request's member (cached on ``g``).

        While an Owner or Admin views the app as another member, it is that
        member's access (see :mod:`.oversight.viewas`).
        """
        return identity.current_access(self, viewas.resolve)

    @contextmanager
    def system(self) -> Iterator[None]:
        """Run trusted code with no filtering and no write checks."""
        with override(SYSTEM):
            yield

    @contextmanager
    def as_member(self, membership: Any) -> Iterator[Access]:
        """Run code with the rights of ``membership``.

        ``membership`` is an instance, an id, an :class:`~.policy.Access`, or a
        :class:`~.context.MemberHandle` (or its string form) passed to a job.
        """
        access = identity.access_of(self, membership)
        if access is None:
            raise LookupError(f"no membership {membership!r}")
        with override(access):
            yield access

    def member_handle(self, access: Access | None = None) -> MemberHandle:
        """Name the acting member (default: the request's) for a job to act as.

        While viewing as a member it is the viewed member, whose rights are
        the narrower.
        """
        return identity.member_handle(access if access is not None else self.current_access())

    # -- decisions (see :mod:`.decisions`) ----------------------------------

    decide = decisions.decide
    explain = decisions.explain
    can = decisions.can
    hidden_fields = decisions.hidden_fields
    readonly_fields = decisions.readonly_fields
    visible_fields = decisions.visible_fields
    redact = decisions.redact
    label = decisions.label
    parent_loader = decisions.parent_loader
    criteria = decisions.criteria

    # -- account protection (see :mod:`.security`) ----------------------------

    rate_limited = staticmethod(security.rate_limited)
    policy_for = security.policy_for

    # -- refusals -----------------------------------------------------------

    def refusal(self, decision: Decision, status: int = 403) -> Any:
        """Return the unauthorized handler's response for a refusal.

        The handler may return anything a view may (a response, a body, a
        ``(body, status)`` tuple): it is made a response here, and a bare body
        takes the refusal's status.
        """
        result = self.hooks.unauthorized(decision, status)
        response = make_response(result)
        if not isinstance(result, (tuple, Response)):
            response.status_code = status
        return response

    def refuse(self, decision: Decision, status: int = 403) -> NoReturn:
        """Abort the request with the unauthorized handler's response."""
        abort(self.refusal(decision, status))

    def signal_denied(self, access: Access | None, action: str, resource: str, record: Any,
                      reason: str) -> None:
        signals.access_denied.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                                   access=access, action=action, resource=resource,
                                   record=record, reason=reason)

    # -- audit trail (see :mod:`.audit`) ---------------------------------------

    def audit(self, action: str, **details: Any) -> Any:
        """Add an event to the audit trail (committed with the caller's transaction).

        ``rbac.audit("export", resource="deals", rows=12)``; the keywords
        ``workspace_id``, ``resource``, ``target``, ``before`` and ``after`` fill
        those columns, the rest goes to ``detail``.
        """
        return audit_log.record(self, action, **details)

    def audit_export(self, resource: str, rows_by_workspace: dict[Any, int], *, target: str,
                     **detail: Any) -> None:
        """Audit an export; shared records' rows are also logged in their own workspace.

        ``rows_by_workspace`` counts the exported rows by the records' workspace id.
        """
        audit_log.record_export(self, resource, rows_by_workspace, target=target, **detail)

    def shared_from(self, record: Any, *, access: Any = decisions.MISSING) -> Any:
        """The sharing agreement (a :class:`~.policy.Share`) through which the member
        reaches ``record``, or None for a record of their own workspace."""
        return sharing.shared_from(self, decisions.access_or_current(self, access), record)

    def _audit_denied(self, sender: Any, **kwargs: Any) -> None:
        state = getattr(sender, "extensions", {}).get("rbac")
        if state is not None and state.rbac is self:
            audit_log.note_denied(self, kwargs.get("access"), kwargs["action"],
                                  kwargs["resource"], kwargs.get("record"),
                                  kwargs.get("reason", ""))

    def _write_denied(self, response: Any) -> Any:
        """Store the request's refusals in the audit trail, on the connection it used.

        The request's own transaction ends first, rolled back: a refused
        request's unsaved work is never saved (the refusal's error handler and
        Flask-SQLAlchemy roll it back too), and the rollback returns its
        connection to the pool, where the refusals' own session takes it, so
        a worker holds one connection, not two. A streamed answer that is no
        refusal (a page that went on after one) may still read through the
        request's session, so its transaction stays open and the refusals
        take a second connection.
        """
        if identity.request_state().denied and (response.status_code >= 400
                                                or not response.is_streamed):
            self.db.session.rollback()
        audit_log.write_denied(self)
        return response

    def signal_policy_changed(self, workspace_ids: list[int], objects: list[Any]) -> None:
        signals.send_policy_changed(self.models, workspace_ids, objects)

    def _handle_permission_denied(self, error: PermissionDenied) -> Any:
        self.db.session.rollback()
        return self.refusal(Decision(False, error.message), getattr(error, "status", 403))

    # -- listeners ----------------------------------------------------------

    def _install_listeners(self, db_session: Any) -> None:
        event.listen(db_session, "do_orm_execute", partial(listener.on_orm_execute, self))
        event.listen(db_session, "before_flush", partial(listener.before_flush, self))
        event.listen(db_session, "after_flush", partial(listener.after_flush, self))
        event.listen(db_session, "do_orm_execute", partial(links.on_orm_execute, self))
        event.listen(db_session, "before_flush", partial(links.before_flush, self))
        event.listen(db_session, "before_flush", partial(dependants.before_flush, self))
        event.listen(db_session, "after_rollback", listener.after_rollback)
        tokens.install(self, db_session)  # deactivation revokes the member's API tokens
        quota_setup.install(self, db_session)  # seats per plan, record caps per role
        audit_log.install(self, db_session)  # the audit trail, after the guard
        notify_setup.install(self, db_session)  # notifications, in the change's transaction
        approvals.install(self, db_session)  # deactivation cancels the member's pending requests
        viewas.install(self, db_session)  # no writes while viewing as a member
        alert_engine.install(self, db_session)  # the alert rules, on every audit event written
        files_cleanup.install(self, db_session)  # attachments follow their records
