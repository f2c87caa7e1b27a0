"""Identity: who the request's member is, in which workspace, with which access.

Flask-Login finds the user (:func:`load_user` for the session,
:func:`load_user_from_request` for ``Authorization: Bearer <token>``); this
module finds the workspace they act in (the token's, else the workspace
loader's) and their effective :class:`~.policy.Access`, read through the
per-app :class:`~.access_cache.AccessCache`.

Everything the extension knows about the current request lives on one
object, ``g._rbac`` (a :class:`RequestState`, see :func:`request_state`),
and nowhere else on ``g``. The acting access is resolved once per request
and cached there; :meth:`RequestState.reset` forgets it when the request's
user or view-as target changes. Outside a request nothing here applies: the
query listener fails closed unless code runs in ``rbac.system()`` or
``rbac.as_member(...)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import g, has_request_context, request, session
from flask.globals import _cv_app, _cv_request
from flask_login import current_user, login_user, user_logged_in, user_logged_out

from . import tokens
from .config import RequestSettings, request_settings, setting
from .context import MemberHandle, current_override
from .errors import NoAccessContext
from .loader import BYPASS, _as_column_type, load_access, load_access_by_id, membership_row
from .models import utcnow
from .policy import Access
from .proxies import current_flask_app, current_g, current_session, get_rbac
from .user_keys import user_pk
from .user_rows import user_with_membership

if TYPE_CHECKING:
    from .interface import RBACProtocol

#: ``view_as(rbac, real)`` returns the access in force for a member whose own is ``real``.
ViewAs = Callable[[Any, "Access | None"], "Access | None"]


@dataclass
class RequestState:
    """What the extension knows of the current request (``g._rbac``).

    ``access`` is the acting access (the viewed member's while viewing as),
    valid once ``resolved``; ``real_access`` is the viewer's own while viewing
    as (the audit trail names them), else None. ``token_auth`` and
    ``token_workspace`` and ``token_user`` are set when an API token signed the
    request in;
    ``membership_row`` is the row :func:`load_user` read with the user, kept
    for :func:`current_access`. ``denied`` and ``denied_keys`` collect the
    request's refusals for the audit trail. ``served``: see :func:`served_method`.
    """

    access: Access | None = None
    resolved: bool = False
    real_access: Access | None = None
    token_auth: bool = False
    token_workspace: Any = None
    token_user: Any = None
    session_user: Any = None
    membership_row: tuple[Any, Any, Any] | None = None
    #: ``(user, workspace id, session id, AccountRow | None)`` read by
    #: :func:`load_user` with the user.
    account_row: tuple[Any, Any, Any, Any] | None = None
    mfa: Any = None  # the user's MFA state (security.stepup.mfa_state), once read
    security_policy: Any = None  # the workspace's Policy (security.network.current_policy), once read
    #: ``(user, workspace id)``: :func:`current_workspace_id`'s answer for that
    #: user object, computed once per request (see :func:`set_workspace`).
    workspace: tuple[Any, Any] | None = None
    denied: list[dict[str, Any]] = field(default_factory=list)
    denied_keys: set[Any] = field(default_factory=set)
    #: The plugin's ``before_request`` pass ran: a request is being served, not
    #: a ``test_request_context()`` that code pushed to call services.
    served: bool = False

    def reset(self) -> None:
        """Forget the resolved access: the next read resolves it again."""
        self.access = None
        self.resolved = False
        self.real_access = None
        self.workspace = None


def served_method() -> str | None:
    """The HTTP method of the request being served, or None (no request, or a
    request context pushed by code rather than a request the app dispatches)."""
    if _cv_request.get(None) is None or not request_state().served:
        return None
    return str(request.method)


def request_state() -> RequestState:
    """Return the request's :class:`RequestState`, created on first use.

    Asked about twenty times per request: ``g`` is read from Flask's
    context variable directly (see :func:`.proxies.current_g`), and a
    missing app context raises Flask's own error through ``current_g``.
    """
    ctx = _cv_app.get(None)
    store = ctx.g if ctx is not None else current_g()
    state: RequestState | None = store.__dict__.get("_rbac")
    if state is None:
        state = store._rbac = RequestState()
    return state


@dataclass(slots=True)
class Visit:
    """What the ``before_request`` pass reads once for its three checks (last activity,
    IP allowlist, session and MFA gate): the signed-in user, its key, its workspace,
    the session id and the account row :func:`load_user` read with the user (None
    when it did not, for this user, workspace and session id: the checks query it).
    """

    state: RequestState
    settings: RequestSettings
    user: Any
    user_id: Any
    workspace_id: Any
    session_id: str | None
    account: Any


def visit(rbac: RBACProtocol, settings: RequestSettings | None = None) -> Visit | None:
    """The request's :class:`Visit`, or None when nobody is signed in."""
    user = signed_in_user()
    if user is None:
        return None
    if settings is None:
        settings = request_settings()
    state = request_state()
    ws = _workspace_of(rbac, state, user)
    sid = current_session().get(settings.session_id_key)
    sid = sid if isinstance(sid, str) and sid else None
    return Visit(state, settings, user, user_pk(user), ws, sid,
                 _account_of(state, user, ws, sid))


def acting_access() -> Access | None:
    """Return the acting access if this request resolved it already, else None (no query)."""
    if not has_request_context():
        return None
    return request_state().access


def signed_in_user() -> Any:
    """Return the request's signed-in user, or None (anonymous, or no request).

    An API token's user (see :func:`load_user_from_request`) comes first, so
    a bearer token decides even when a session cookie came along; then the
    host's ``@rbac.user_getter``; otherwise Flask-Login's ``current_user``.
    The plugin asks this function, never ``current_user``, and never writes
    Flask-Login's request state.
    """
    if _cv_request.get(None) is None:  # has_request_context(), asked ten times per request
        return None
    state = request_state()
    if state.token_user is not None:
        return state.token_user
    if state.session_user is not None:
        return state.session_user
    getter = get_rbac().hooks.user_getter
    if getter is not None:
        user = getter()
        return user if user is not None and getattr(user, "is_authenticated", True) else None
    if getattr(current_flask_app(), "login_manager", None) is None:
        return None
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if user is None or not user.is_authenticated:
        return None
    # Kept for the rest of the request: the plugin asks several times per
    # request. Signing in or out within the request forgets it (see
    # forget_session_user); an anonymous answer is never kept.
    state.session_user = user
    return user


def sign_in(user: Any, *, remember: bool = False) -> bool:
    """Sign ``user`` in with Flask-Login; False when the app has no Flask-Login.

    A host that signs users in its own way (see ``@rbac.user_getter``) gets
    False and signs the user in itself.
    """
    if getattr(current_flask_app(), "login_manager", None) is None:
        return False
    return bool(login_user(user, remember=remember))


def watch_sign_in() -> None:
    """Forget the request's kept user whenever Flask-Login signs someone in or out."""
    user_logged_in.connect(forget_session_user)
    user_logged_out.connect(forget_session_user)


def forget_session_user(sender: Any, **extra: Any) -> None:
    """Flask-Login ``user_logged_in``/``user_logged_out`` receiver: the request's user changed."""
    if has_request_context():
        state: RequestState | None = g.get("_rbac")
        if state is not None:
            state.session_user = None


def default_workspace(rbac: RBACProtocol, user: Any) -> Any:
    """The session's workspace, else the user's first active membership's.

    In single-tenant mode the session is not read: the one workspace is
    ``RBAC_DEFAULT_WORKSPACE``, and the user acts there or nowhere.
    """
    settings = request_settings()
    single = settings.single_tenant
    ws = None if single else current_session().get(settings.session_key)
    if ws is not None:
        return ws
    M, W = rbac.models.Membership, rbac.models.Workspace
    stmt = (sa.select(M.workspace_id).join(W, W.id == M.workspace_id)
            .where(M.user_id == _as_column_type(M.user_id, user_pk(user)), M.status == "active",
                   W.deleted_at.is_(None))
            .order_by(M.id).limit(1))
    if single:
        stmt = stmt.where(
            W.slug == setting("RBAC_DEFAULT_WORKSPACE"))
    return rbac.db.session.scalar(stmt, execution_options=BYPASS)


def current_workspace_id(rbac: RBACProtocol) -> Any:
    """Return the workspace the request's user acts in, or None (anonymous)."""
    user = signed_in_user()
    if user is None:
        return None
    return _workspace_of(rbac, request_state(), user)


def _workspace_of(rbac: RBACProtocol, state: RequestState, user: Any) -> Any:
    """:func:`current_workspace_id` for the signed-in ``user`` and the request's state."""
    if state.token_auth:
        # A request authenticated by an API token acts in the token's workspace.
        return state.token_workspace
    # Asked several times per request (the gate, the allowlist, the access):
    # answered once per user object. A route that moves the user to another
    # workspace calls set_workspace, which forgets the answer.
    cached = state.workspace
    if cached is not None and cached[0] is user:
        return cached[1]
    loader = rbac.hooks.workspace_loader
    ws = loader(user) if loader is not None else default_workspace(rbac, user)
    state.workspace = (user, ws)
    return ws


def set_workspace(workspace_id: Any) -> None:
    """Make ``workspace_id`` the session's workspace from now on, this request included."""
    session[setting("RBAC_SESSION_KEY")] = workspace_id
    request_state().reset()


def load_user_from_request(rbac: RBACProtocol, request: Any) -> Any:
    """Flask-Login ``request_loader`` for ``Authorization: Bearer <token>``.

    Register it with ``login_manager.request_loader(rbac.load_user_from_request)``.
    The request acts in the token's workspace, on ``RBAC_TOKEN_BLUEPRINTS``'
    routes only (the JSON API): elsewhere it is anonymous, so a leaked token
    never reaches the account's pages (MFA, tokens, sessions) nor the HTML app.
    """
    scheme, _, plaintext = request.headers.get("Authorization", "").partition(" ")
    if (scheme.lower() != "bearer" or not plaintext
            or request.blueprint not in setting("RBAC_TOKEN_BLUEPRINTS")):
        return None
    membership = tokens.membership_for_token(rbac, plaintext.strip())
    if membership is None:
        return None
    rbac.db.session.commit()  # keep last_used_at
    state = request_state()
    state.token_workspace, state.token_auth = membership.workspace_id, True
    state.token_user = membership.user
    return membership.user


def load_user(rbac: RBACProtocol, user_id: Any, *, column: Any = None) -> Any:
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
    ws = sid = None
    app = current_flask_app()
    if _cv_request.get(None) is not None:  # has_request_context()
        settings = request_settings(app)
        cookie = current_session()
        if rbac.hooks.workspace_loader is None and not settings.single_tenant:
            ws = cookie.get(settings.session_key)
        sid = cookie.get(settings.session_id_key)
        sid = sid if isinstance(sid, str) and sid else None
    user, row, account = user_with_membership(rbac.db.session, rbac.models, rbac.user_model,
                                              user_id, ws, column=column,
                                              sid_hash=session_id_hash(sid),
                                              policies=app.extensions["rbac"].policies)
    if user is not None and ws is not None:
        state = request_state()
        state.membership_row = (user, ws, row)
        state.account_row = (user, ws, sid, account)
    return user


def loaded_account(user: Any, workspace_id: Any) -> Any:
    """The :class:`~.resolve.AccountRow` :func:`load_user` read with ``user``, or None.

    Only while it still describes this request: the same user object, the
    same workspace, and the same session id (a sign-in in the middle of the
    request draws a new one). Callers fall back to a query of their own.
    """
    if not has_request_context():
        return None
    return _account_of(request_state(), user, workspace_id, _session_id())


def _account_of(state: RequestState, user: Any, workspace_id: Any, sid: str | None) -> Any:
    loaded = state.account_row
    if (loaded is None or loaded[0] is not user or loaded[3] is None
            or str(loaded[1]) != str(workspace_id) or loaded[2] != sid):
        return None
    return loaded[3]


def _session_id() -> str | None:
    sid = session.get(request_settings().session_id_key)
    return sid if isinstance(sid, str) and sid else None


def session_id_hash(sid: str | None = None) -> str | None:
    """The SHA-256 (hex) of a sign-in id (default: the Flask session's), or None.

    The cookie carries the id; the ``rbac_session`` table stores only its hash,
    so a leaked table names no usable cookie.
    """
    if sid is None:
        sid = _session_id() if has_request_context() else None
    return hashlib.sha256(sid.encode()).hexdigest() if sid else None


def client_ip() -> str | None:
    """The request's client address (``request.remote_addr``), None outside a request."""
    return request.remote_addr if has_request_context() else None


def current_access(rbac: RBACProtocol, view_as: ViewAs) -> Access | None:
    """Return the acting access of the request (cached on the request state).

    ``view_as`` hands the member's own access to view-as, which returns the
    viewed member's while an Owner or Admin views the app as them.
    """
    state = request_state()
    if state.resolved:
        return state.access
    access = None
    user = signed_in_user()
    ws = _workspace_of(rbac, state, user) if user is not None else None
    if ws is not None:
        # Read with the user by load_user in this request, if it was the same
        # user (the very object) in the same workspace.
        loaded, state.membership_row = state.membership_row, None
        if loaded is not None and loaded[0] is user and str(loaded[1]) == str(ws):
            row = loaded[2]
        else:
            row = membership_row(rbac.db.session, rbac.models,
                                 user_id=user_pk(user), workspace_id=ws)
        if row is not None:
            access = access_for_row(rbac, row)
    access = view_as(rbac, access)
    state.access, state.resolved = access, True
    return access


def resolve_context(rbac: RBACProtocol) -> Any:
    """Return SYSTEM, the Access in force, or None (no member): fail closed."""
    override_value = current_override()
    if override_value is not None:
        return override_value
    if has_request_context():
        return rbac.current_access()
    raise NoAccessContext(
        "A protected model was queried outside a request with no member. Say whose rights "
        "apply: `with rbac.as_member(handle):` in a job (handle = str(rbac.member_handle()) "
        "taken in the request that queued it) or a CLI command (see "
        "crm_rbac_plugin.cli.as_member_option), or `with rbac.system():` for trusted "
        "maintenance code.")


def access_for_row(rbac: RBACProtocol, row: Any) -> Access:
    """Return the access of a membership row, from the app's cache when still valid.

    A cached Access is valid for its ``policy_version``, until its
    ``valid_until`` (a time window's next boundary, an expiry) and, when a
    role of the member has a network condition, for a client address on the
    same side of each network list (:meth:`~.policy.Access.fits_address`).
    """
    now = utcnow()
    app = current_flask_app()
    cache = app.extensions["rbac"].cache
    access = cache.get(row.id, row.policy_version, now)
    if access is None or access.network_checks:
        address = client_ip()
        if access is not None and not access.fits_address(address):
            access = None
    if access is None:
        access = load_access(rbac.db.session, rbac.models, rbac.registry,
                             app.config, row, now, address=address)
        cache.put(access)
    return access


def access_for(rbac: RBACProtocol, membership: Any) -> Access | None:
    """Return the effective access of a membership (instance or id).

    With an Access of the membership in the app's cache, its row is read to
    validate it (:func:`access_for_row`); with none, the row and the policy
    are read in one statement.
    """
    mid = getattr(membership, "id", membership)
    app = current_flask_app()
    cache = app.extensions["rbac"].cache
    if not cache.holds(mid):
        address = client_ip()
        access = load_access_by_id(rbac.db.session, rbac.models, rbac.registry, app.config,
                                   mid, utcnow(), address=address)
        if access is not None:
            cache.put(access)
        return access
    row = membership_row(rbac.db.session, rbac.models, membership_id=mid)
    return access_for_row(rbac, row) if row is not None else None


def access_of(rbac: RBACProtocol, membership: Any) -> Access | None:
    """The access of ``membership``: an Access, a membership or its id, or a member handle.

    A handle naming a membership of another workspace than its own finds none.
    """
    if isinstance(membership, Access):
        return membership
    if isinstance(membership, (MemberHandle, str)):
        handle = MemberHandle.parse(membership)
        access = access_for(rbac, handle.membership_id)
        return access if access is not None and access.workspace_id == handle.workspace_id else None
    return access_for(rbac, membership)


def member_handle(access: Access | None) -> MemberHandle:
    """Name the member of ``access`` for a job to act as."""
    if access is None:
        raise NoAccessContext("no member is acting here to take a handle of")
    return MemberHandle(access.workspace_id, access.membership_id)
