"""The :class:`RBAC` extension object."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import sqlalchemy as sa
from flask import Blueprint, Flask, abort, current_app, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from . import audit as audit_log
from . import cli, decorators, fields, guard, identity, inputs, listener, signals, tokens
from .config import DEFAULTS
from .context import SYSTEM, current_override, override
from .defaults import ADMIN_RESOURCES
from .errors import NoAccessContext, PermissionDenied
from .loader import BYPASS, AccessCache
from .models import Models, define_audit_model, define_models, define_team_models
from .policy import Access, Decision, ParentLoader, decide
from .query import record_criteria
from .oversight import viewas
from .registry import STANDARD_ACTIONS, Registry, Resource

F = TypeVar("F", bound=Callable[..., Any])
_MISSING: Any = object()


class _State:
    """What one Flask app keeps of the extension (``app.extensions["rbac"]``)."""

    def __init__(self, rbac: RBAC, app: Flask) -> None:
        self.rbac = rbac
        self.cache = AccessCache(app.config["RBAC_CACHE_SIZE"])


def split_permission(resource: str, action: str | None) -> tuple[str, str]:
    """Accept ``("leads", "edit")`` as well as ``("leads.edit", None)``."""
    if action is None:
        resource, sep, action = resource.rpartition(".")
        if not sep or not resource or not action:
            raise ValueError(f"permission {resource + sep + action!r} is not 'resource.action'")
    return resource, action


class RBAC:
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
    (see :mod:`.query` and :mod:`.guard`).
    """

    SYSTEM = SYSTEM

    def __init__(self, app: Flask | None = None, *, db: Any, user_model: type) -> None:
        self.db = db
        self.user_model = user_model
        self.models: Models = define_models(db, user_model)
        # The append-only audit trail, see :mod:`.audit`.
        self.AuditEvent: Any = define_audit_model(db)
        # Invitations, see :mod:`.team`.
        self.Invitation: Any = define_team_models(db)
        self.registry = Registry()
        for name, label in ADMIN_RESOURCES:
            self.registry.add(Resource(name, module="administration", label=label,
                                       owner_column=None))
        # None: the session's workspace, else the first active membership's.
        self._workspace_loader: Callable[[Any], Any] | None = None
        self._unauthorized: Callable[[Decision, int], Any] = decorators.default_unauthorized
        self._statements = listener.StatementMemo()
        self._install_listeners(db.session)
        # Refusals of every app using this extension go to the audit trail.
        signals.access_denied.connect(self._audit_denied, weak=False)
        if app is not None:
            self.init_app(app)

    # -- set-up -------------------------------------------------------------

    def init_app(self, app: Flask) -> None:
        """Register the extension on ``app``."""
        if "rbac" in app.extensions:
            raise RuntimeError("RBAC is already registered on this app.")
        for key, value in DEFAULTS.items():
            app.config.setdefault(key, value)
        app.extensions["rbac"] = _State(self, app)
        app.register_blueprint(Blueprint("rbac", __name__, template_folder="templates",
                                         static_folder="static", url_prefix="/rbac"))
        app.context_processor(self._template_context)
        app.add_template_filter(self.label, "rbac_label")
        app.register_error_handler(PermissionDenied, self._handle_permission_denied)
        from . import team  # mail and last-activity settings, before_request
        team.init_app(app)
        if app.config["RBAC_CLI"]:
            app.cli.add_command(cli.rbac_group)
        # Refusals are stored after the (rolled back) request.
        app.after_request(self._write_denied)
        if app.config["RBAC_CLI"]:
            from .oversight import cli as oversight_cli
            oversight_cli.register(cli.rbac_group)
        if app.config["RBAC_REGISTER_BLUEPRINTS"]:
            # Imported here: the blueprints need the rest of the package loaded.
            from .api import views as api_views
            from .oversight import views as oversight_views
            from .settings import views as settings_views
            settings_views.register(app)
            oversight_views.register(app)  # audit, explain, view-as, access review
            api_views.register(app)

    def register_resource(self, name: str, model: type | None = None, *, module: str = "general",
                          label: str = "", workspace: str = "workspace_id",
                          owner: str | None = "owner_id", department: str | None = None,
                          parent: tuple[str, str] | None = None,
                          actions: tuple[str, ...] = ()) -> Resource:
        """Protect ``model`` as resource ``name``.

        ``parent=("clients", "client_id")`` makes a record visible to whoever
        sees its parent record. ``actions`` adds custom actions to the six
        standard ones.
        """
        all_actions = STANDARD_ACTIONS + tuple(a for a in actions if a not in STANDARD_ACTIONS)
        res = Resource(name, model, module=module, label=label or name.title(),
                       workspace_column=workspace, owner_column=owner,
                       department_column=department,
                       parent=parent[0] if parent else None,
                       parent_column=parent[1] if parent else None, actions=all_actions)
        self._statements.clear()
        if model is not None:
            fields.watch(self, model)
        return self.registry.add(res)

    def resource(self, name: str, **options: Any) -> Callable[[type], type]:
        """Class decorator form of :meth:`register_resource`."""
        def decorator(model: type) -> type:
            self.register_resource(name, model, **options)
            return model
        return decorator

    def workspace_loader(self, func: F) -> F:
        """Set how the current workspace id is found for a user in a request."""
        self._workspace_loader = func
        return func

    def unauthorized_handler(self, func: F) -> F:
        """Set the refusal response: ``func(decision, status) -> Response``."""
        self._unauthorized = func
        return func

    # -- the current member -------------------------------------------------

    @staticmethod
    def config(key: str) -> Any:
        return current_app.config[key]

    @property
    def state(self) -> _State:
        return current_app.extensions["rbac"]  # type: ignore[no-any-return]

    user_pk = staticmethod(identity.user_pk)

    def current_workspace_id(self) -> Any:
        """Return the workspace the request's user acts in, or None (anonymous)."""
        return identity.current_workspace_id(self)

    def load_user_from_request(self, request: Any) -> Any:
        """Flask-Login ``request_loader`` for ``Authorization: Bearer <token>``.

        Register it with ``login_manager.request_loader(rbac.load_user_from_request)``.
        """
        return identity.load_user_from_request(self, request)

    def load_user(self, user_id: Any, *, column: Any = None) -> Any:
        """Load a user for Flask-Login, with their membership in the session's workspace.

        ``login_manager.user_loader(rbac.load_user)``, or call it from your own
        loader instead of ``db.session.get(User, user_id)``. ``column`` is the
        user column that Flask-Login's id names (default: the primary key);
        pass your alternative id column, e.g. ``User.session_token``, when
        ``get_id()`` returns one. The membership row that
        :meth:`current_access` needs (status, department, the workspace's plan
        and ``policy_version``) comes with the user in one query, read fresh on
        every request, so the request makes one round trip fewer and still
        sees a deactivation or a policy change made by any process. With a
        custom :meth:`workspace_loader` it loads the user alone.
        """
        return identity.load_user(self, user_id, column=column)

    def current_access(self) -> Access | None:
        """Return the effective access of the request's member (cached on ``g``).

        While an Owner or Admin views the app as another member, it is that
        member's access (see :mod:`.oversight.viewas`).
        """
        return identity.current_access(self, viewas.resolve)

    def access_for(self, membership: Any) -> Access | None:
        """Return the effective access of a membership (instance or id)."""
        return identity.access_for(self, membership)

    def resolve_context(self) -> Any:
        """Return SYSTEM, the Access in force, or None (no member): fail closed."""
        override_value = current_override()
        if override_value is not None:
            return override_value
        if has_request_context():
            return self.current_access()
        raise NoAccessContext(
            "A protected model was queried outside a request with no member: "
            "use rbac.system() or rbac.as_member(membership).")

    @contextmanager
    def system(self) -> Iterator[None]:
        """Run trusted code with no filtering and no write checks."""
        with override(SYSTEM):
            yield

    @contextmanager
    def as_member(self, membership: Any) -> Iterator[Access]:
        """Run code with the rights of ``membership`` (an instance, id or Access)."""
        access = membership if isinstance(membership, Access) else self.access_for(membership)
        if access is None:
            raise LookupError(f"no membership {membership!r}")
        with override(access):
            yield access

    # -- decisions ----------------------------------------------------------

    def decide(self, access: Access | None, action: str, resource: str, record: Any = None,
               load_parent: ParentLoader | None = None) -> Decision:
        if record is not None and load_parent is None:
            load_parent = self.parent_loader(self.db.session)
        if record is not None:
            record = fields.readable(self, record)
        return decide(access, self.registry, action, resource, record, load_parent)

    def explain(self, action: str, resource: str | None = None, record: Any = None, *,
                access: Any = _MISSING) -> Decision:
        """Return the decision for the current member (or ``access``) with its reasons.

        ``explain("leads.edit", record=lead)`` and ``explain("edit", "leads", lead)``
        are the same question.
        """
        if resource is None or "." in action:
            resource, action = split_permission(action, None)
        if access is _MISSING:
            ctx = self.resolve_context()
            if ctx is SYSTEM:
                self.registry.check_action(resource, action)
                return Decision(True, "system context", steps=["system context: no checks"])
            access = ctx
        return self.decide(access, action, resource, record)

    def can(self, action: str, resource: str | None = None, record: Any = None, *,
            access: Any = _MISSING) -> bool:
        """Return whether the current member (or ``access``) may do ``action``.

        Resource-level answers (no record) are memoised on the Access: they
        are asked for every menu entry and button, and building the reasons
        that ``explain`` returns costs far more than the decision itself.
        """
        if record is None and resource is not None and "." not in action:
            if access is _MISSING:
                ctx = self.resolve_context()
                access = ctx if isinstance(ctx, Access) else access
            if isinstance(access, Access):
                key = (resource, action)
                allowed = access.can_cache.get(key)
                if allowed is None:
                    allowed = self.explain(action, resource, access=access).allowed
                    access.can_cache[key] = allowed
                return allowed
        return self.explain(action, resource, record, access=access).allowed

    def _access_or_current(self, access: Any) -> Access | None:
        if access is not _MISSING:
            return access  # type: ignore[no-any-return]
        ctx = self.resolve_context()
        return None if ctx is SYSTEM else ctx

    def hidden_fields(self, resource: str, *, access: Any = _MISSING) -> frozenset[str]:
        """Fields of ``resource`` the member may not see (field-level security).

        Views, exports and APIs leave these out; the system context sees all.
        """
        acc = self._access_or_current(access)
        return acc.hidden(resource) if acc is not None else frozenset()

    def readonly_fields(self, resource: str, *, access: Any = _MISSING) -> frozenset[str]:
        """Fields of ``resource`` the member may see but not write."""
        acc = self._access_or_current(access)
        if acc is None:
            return frozenset()
        return acc.unwritable(resource) - acc.hidden(resource)

    def visible_fields(self, resource: str, fields: Any, *, access: Any = _MISSING) -> list[str]:
        """Keep the names in ``fields`` that the member may see, in order."""
        hidden = self.hidden_fields(resource, access=access)
        return [f for f in fields if f not in hidden]

    def redact(self, resource: str, record: Any, *, access: Any = _MISSING) -> dict[str, Any]:
        """Return a record's columns as a dict, without the fields hidden from the member."""
        res = self.registry.get(resource)
        hidden = self.hidden_fields(resource, access=access)
        return {attr.key: getattr(record, attr.key)
                for attr in sa.inspect(res.model).column_attrs if attr.key not in hidden}

    def label(self, record: Any, field: str | None = None) -> str:
        """Return the text that names ``record`` on a page, never a hidden field.

        ``field`` defaults to the model's ``__rbac_label__`` attribute; when
        the member may not see it, the label is ``"<Model> #<id>"``. Templates
        use the ``rbac_label`` filter: ``{{ record | rbac_label }}``.
        """
        return fields.record_label(self, record, field)

    def parent_loader(self, db_session: Session) -> ParentLoader:
        """Return a loader of parent records that bypasses the filter."""
        def load(res: Resource, pk: Any) -> Any:
            with db_session.no_autoflush:
                return fields.readable(self, db_session.get(
                    res.model, pk, execution_options=BYPASS))  # type: ignore[arg-type]
        return load

    def criteria(self, access: Access | None, resource: str | Resource, action: str = "view",
                 entity: Any = None) -> sa.ColumnElement[bool]:
        """Return the SQL criteria of the rows ``access`` may ``action``.

        Criteria for the model itself are cached on the Access object.
        """
        res = resource if isinstance(resource, Resource) else self.registry.get(resource)
        membership_table = self.models.Membership.__table__
        if entity is not None or access is None:
            return record_criteria(access, self.registry, res, action,
                                   entity if entity is not None else res.model, membership_table)
        key = (res.name, action)
        crit = access.sql_cache.get(key)
        if crit is None:
            crit = record_criteria(access, self.registry, res, action, res.model,
                                   membership_table)
            access.sql_cache[key] = crit
        return crit

    # -- refusals -----------------------------------------------------------

    def refusal(self, decision: Decision, status: int = 403) -> Any:
        """Return the unauthorized handler's response for a refusal."""
        return self._unauthorized(decision, status)

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

    def shared_from(self, record: Any, *, access: Any = _MISSING) -> Any:
        """The sharing agreement (a :class:`~.policy.Share`) through which the member
        reaches ``record``, or None for a record of their own workspace."""
        from . import sharing
        return sharing.shared_from(self, self._access_or_current(access), record)

    def _audit_denied(self, sender: Any, **kwargs: Any) -> None:
        state = getattr(sender, "extensions", {}).get("rbac")
        if state is not None and state.rbac is self:
            audit_log.note_denied(self, kwargs.get("access"), kwargs["action"],
                                  kwargs["resource"], kwargs.get("record"),
                                  kwargs.get("reason", ""))

    def _write_denied(self, response: Any) -> Any:
        audit_log.write_denied(self)
        return response

    def signal_policy_changed(self, workspace_ids: list[int], objects: list[Any]) -> None:
        m = self.models
        role_objs = [o for o in objects if isinstance(o, (m.Role, m.Grant, m.MemberRole))]
        member_objs = [o for o in objects if o not in role_objs]
        try:
            app = current_app._get_current_object()  # type: ignore[attr-defined]
        except RuntimeError:
            return
        if role_objs:
            signals.role_changed.send(app, workspace_ids=workspace_ids, objects=role_objs)
        if member_objs:
            signals.member_changed.send(app, workspace_ids=workspace_ids, objects=member_objs)

    def _handle_permission_denied(self, error: PermissionDenied) -> Any:
        self.db.session.rollback()
        return self.refusal(Decision(False, error.message), 403)

    def _template_context(self) -> dict[str, Any]:
        def rbac_can(action: str, resource: str | None = None, record: Any = None) -> bool:
            try:
                return self.can(action, resource, record)
            except NoAccessContext:
                return False
        def rbac_shared_from(record: Any) -> Any:
            try:
                return self.shared_from(record)
            except NoAccessContext:
                return None
        return {"rbac_can": rbac_can, "rbac": self, "rbac_view_as": viewas.banner(self),
                "rbac_shared_from": rbac_shared_from, "rbac_label": self.label}

    # -- listeners ----------------------------------------------------------

    def _install_listeners(self, db_session: Any) -> None:
        event.listen(db_session, "do_orm_execute", partial(listener.on_orm_execute, self))
        event.listen(db_session, "before_flush", self._before_flush)
        event.listen(db_session, "after_flush", self._after_flush)
        event.listen(db_session, "after_rollback", self._after_rollback)
        tokens.install(self, db_session)  # deactivation revokes the member's API tokens
        audit_log.install(self, db_session)  # the audit trail, after the guard
        viewas.install(self, db_session)  # no writes while viewing as a member

    def _before_flush(self, db_session: Session, flush_context: Any, instances: Any) -> None:
        inputs.check_numbers(self.registry, db_session)
        guard.check_flush(self, db_session)
        guard.collect_policy_changes(self, db_session)

    def _after_flush(self, db_session: Session, flush_context: Any) -> None:
        guard.bump_policy_versions(self, db_session)

    @staticmethod
    def _after_rollback(db_session: Session) -> None:
        db_session.info.pop("rbac_changed", None)
