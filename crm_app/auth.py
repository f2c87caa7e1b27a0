"""Sign-in, sign-out and the workspace pinned to a session (the switcher is the plugin's).

Authentication is Flask-Login's job; *authorisation* is entirely the RBAC
extension's. The only link between the two is the current workspace id,
kept in ``session[RBAC_SESSION_KEY]``, which the extension's default
workspace loader reads. Everything here touches only the user table and the
plugin's own tables (workspaces, memberships), which are not protected, so
none of it needs ``rbac.system()``.
"""

from __future__ import annotations

import secrets
from functools import cache
from typing import Any

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user, user_logged_in
from flask_wtf import FlaskForm
from sqlalchemy.orm import contains_eager
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response
from wtforms import BooleanField, EmailField, PasswordField
from wtforms.validators import DataRequired, Length, ValidationError

from crm_rbac_plugin.identity import request_state
from crm_rbac_plugin.security import sessions, stepup
from crm_rbac_plugin.signals import session_revoked
from crm_rbac_plugin.urls import safe_next

from .extensions import db, login_manager
from .models import User
from .rbac_setup import rbac
from .seed import demo_logins

bp = Blueprint("auth", __name__)


def an_address(form: FlaskForm, field: Any) -> None:
    """Refuse a typed email without "@" before the sign-in counts it: no account has one,
    and the sign-in throttle keys its count by what was typed."""
    if "@" not in (field.data or ""):
        raise ValidationError("Enter an email address.")


class LoginForm(FlaskForm):
    """Email and password.

    No ``Email()`` validator: ``email-validator`` rejects reserved domains
    such as ``.test``, which the demo accounts use; an unknown address simply
    fails to sign in. An address without "@" is refused as bad input
    (:func:`an_address`), neither checked nor counted.
    """

    email = EmailField("Email", validators=[DataRequired(), Length(max=255), an_address],
                       render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})
    remember = BooleanField("Keep me signed in")


#: Separates the account's session token from the session id in a login id
#: (``<session_token>.<session id>``); neither contains a dot.
BOUND_TO = "."


def token_of(login_id: str) -> str:
    """The account's session token in a login id, bound or not."""
    return login_id.partition(BOUND_TO)[0]


def load_user(login_id: str) -> User | None:
    """Flask-Login user loader, by login id: deactivated users are signed out at once.

    Sessions and remember-me cookies hold a login id, never the primary key:
    :attr:`User.session_token`, bound to the plugin's server-side session
    that issued it (:func:`bind_login_id`). A cookie issued before the token
    was rotated (at sign-out, at a password change) names nobody. A login id
    bound to a session other than the request's own is a remember-me cookie
    restoring a session: it is refused once its session was revoked (signed
    out from the profile's list, by the cap, idle, expired), so a copy of
    the cookie dies with the session it came from. Returning None for an
    inactive user (instead of the user) means a deactivation takes effect on
    the next request, not at the next login.
    """
    if not isinstance(login_id, str) or not login_id:
        return None
    token, _, bound = login_id.partition(BOUND_TO)
    # With the membership row of the current workspace: one query, not two, per request.
    user = rbac.load_user(token, column=User.session_token)
    if user is None or not user.is_active_user:
        return None
    if bound and bound != sessions.current_sid() and not sessions.is_live(rbac, bound, user.id):
        return None
    return user


def bind_login_id(response: Response) -> Response:
    """After each request, bind the login id to this browser's server-side session.

    Registered after Flask-Login, so it runs before Flask-Login writes the
    remember-me cookie, which copies the login id. When the session id
    changed in this request (a sign-in, a remember-me restoration, an
    adopted session), the login id names the new one; a restoration also
    retires the session the cookie was bound to (this browser's, replaced)
    and writes a new remember-me cookie, so an older copy of it restores
    nothing. Only a request the plugin authenticated by an API token
    (``token_auth``) is left alone: any other header, whatever it says,
    never switches the binding off.
    """
    user = g.get("_login_user")  # only a request that loaded its user (never loads it here)
    if (request_state().token_auth or "_user_id" not in session
            or not isinstance(user, User)):
        return response
    login_id, sid = session.get("_user_id"), sessions.current_sid()
    if not isinstance(login_id, str) or sid is None:
        return response
    token, _, bound = login_id.partition(BOUND_TO)
    if bound == sid or token != user.session_token:
        return response
    if bound:
        sessions.retire(rbac, bound, user.id)
        db.session.commit()
    session["_user_id"] = f"{token}{BOUND_TO}{sid}"
    cookie = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    if cookie in request.cookies and session.get("_remember") != "clear":
        session["_remember"] = "set"
    return response


# -- passwords -----------------------------------------------------------------


@cache
def _dummy_hash() -> str:
    """A hash of a random password, drawn once per process with the real passwords' hasher.

    It uses :func:`generate_password_hash`'s defaults, as :meth:`User.set_password`
    does, so verifying against it costs what verifying a real password costs.
    """
    return generate_password_hash(secrets.token_urlsafe(32))


def verify_password(user: User | None, password: str) -> bool:
    """Return whether ``password`` is ``user``'s, at the same cost for every account.

    An unknown email, or an account without a password (invited, never
    accepted), is verified against a dummy hash and refused, so that the
    answer's timing does not tell which emails have accounts: every call
    verifies exactly one hash.
    """
    stored = user.password_hash if user is not None else ""
    if not stored:
        check_password_hash(_dummy_hash(), password)
        return False
    return check_password_hash(stored, password)


# -- workspaces -----------------------------------------------------------------

def active_memberships(user_id: Any) -> list[Any]:
    """Return the user's active memberships with their workspaces, by workspace name."""
    m = rbac.models
    return list(db.session.scalars(
        sa.select(m.Membership).join(m.Workspace, m.Workspace.id == m.Membership.workspace_id)
        .where(m.Membership.user_id == user_id, m.Membership.status == "active",
               m.Workspace.deleted_at.is_(None))
        .options(contains_eager(m.Membership.workspace))
        .order_by(m.Workspace.name)))


def my_workspaces() -> list[Any]:
    """Workspaces the current user may switch to (cached for the request)."""
    if not current_user.is_authenticated:
        return []
    if "_crm_workspaces" not in g:
        g._crm_workspaces = [ms.workspace for ms in active_memberships(current_user.id)]
    return g._crm_workspaces  # type: ignore[no-any-return]


def current_workspace() -> Any:
    """The workspace the request works in, or None if the user is not an active member."""
    ws_id = rbac.current_workspace_id()
    return next((ws for ws in my_workspaces() if ws.id == ws_id), None)


def pin_workspace() -> None:
    """Before each request, give a signed-in user without one a current workspace.

    The extension falls back to the first active membership anyway; writing
    that choice into the session keeps the switcher and the access checks in
    agreement for the rest of the visit. A workspace id that is already in
    the session is left alone even if the membership has since been revoked:
    the extension then refuses everything, and the switcher (shown on the
    refusal page) lets the user move on. Requests authenticated by an API
    token (the plugin's ``token_auth``, known once the user is loaded) are
    stateless (the token names its workspace) and get no session.
    """
    if not current_user.is_authenticated or request_state().token_auth:
        return
    key = current_app.config["RBAC_SESSION_KEY"]
    if session.get(key) is None:
        memberships = active_memberships(current_user.id)
        if memberships:
            session[key] = min(memberships, key=lambda ms: ms.id).workspace_id


#: Session key: whether the signed-in user had been seen before this sign-in.
RETURNING_KEY = "crm_returning"


def seen_before(user: User) -> bool:
    """Whether ``user`` had used the app before: any membership has a last-seen time.

    Read before the sign-in's own requests record a new one, so a first
    sign-in is greeted with "Welcome" and later ones with "Welcome back".
    """
    M = rbac.models.Membership
    return db.session.scalar(sa.select(sa.func.count()).select_from(M).where(
        M.user_id == user.id, M.last_seen_at.is_not(None))) != 0


def remember_first_visit(sender: Any, user: Any, **extra: Any) -> None:
    """On every sign-in (the login form, an accepted invitation), note whether it is the first.

    Connected to Flask-Login's ``user_logged_in``, which is sent before the
    signed-in requests record a last-seen time.
    """
    session[RETURNING_KEY] = isinstance(user, User) and seen_before(user)


# -- views ----------------------------------------------------------------------

@bp.route("/login", methods=["GET", "POST"])
@rbac.rate_limited("sign-in")  # RBAC_SIGN_IN_RATE_LIMIT attempts per IP (429 beyond)
def login() -> Any:
    """Sign in with email and password; deactivated and API-only accounts are refused.

    The plugin's sign-in API guards the password check: an address or IP
    that failed too often must wait (``rbac.auth.check``: the password is not
    even checked), a wrong password, an unknown address or a deactivated
    account is counted (``rbac.auth.failed``), a success resets the
    address's count (``rbac.auth.succeeded``); all three are audited. A
    deactivated account, and one whose roles let it sign in nowhere
    (``rbac.auth.open_workspaces``), gets the wrong password's answer: a
    message of its own would tell whoever guesses that the password is right.
    """
    if current_user.is_authenticated:
        return redirect(url_for("crm.dashboard"))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        email = (form.email.data or "").strip().lower()
        throttle = rbac.auth.check(email, request.remote_addr)
        if not throttle.allowed:
            flash(throttle.message, "error")
            status = 429
        else:
            user = db.session.scalar(sa.select(User).where(sa.func.lower(User.email) == email))
            # Verified before anything else is looked at: one hash per attempt, whoever it names.
            password_ok = verify_password(user, form.password.data or "")
            refused = (user is None or not password_ok or not user.is_active_user
                       or rbac.auth.deactivated_everywhere(user))
            open_ws: list[int] = []
            if not refused:
                # Where the roles let the user sign in; an active member of workspaces
                # whose roles all have sign-in off (API tokens only) signs in nowhere.
                open_ws = rbac.auth.open_workspaces(user)
                refused = not open_ws and bool(active_memberships(user.id))
            if refused:
                rbac.auth.failed(email, request.remote_addr)
                flash("That email and password do not match an account.", "error")
            else:
                login_user(user, remember=bool(form.remember.data))
                rbac.auth.succeeded(user, email, request.remote_addr)
                # Start in a workspace the user may sign in to, not one left by a previous user.
                session.pop(current_app.config["RBAC_SESSION_KEY"], None)
                if open_ws:
                    session[current_app.config["RBAC_SESSION_KEY"]] = open_ws[0]
                flash(f"Signed in as {user.email}.", "success")
                return redirect(safe_next(request.args.get("next"), url_for("crm.dashboard")))
    elif request.method == "POST":
        status = 400  # bad input (the field's error is shown): nothing checked, nothing counted
    hints = demo_logins() if current_app.config.get("CRM_DEMO_LOGIN_HINTS") else []
    return render_template("auth/login.html", form=form, demo_logins=hints), status


@bp.post("/logout")
@login_required
def logout() -> Response:
    """Sign out (POST only, so a link or an image cannot sign anyone out).

    The user's session token is rotated first, so a copy of the session or
    remember-me cookie taken before (a stolen cookie, a shared computer's
    cache) is dead too, not just the browser's own copy; as with
    Flask-Security, that signs the user out of every browser, so the other
    browsers' session rows end with it (``sign_out_everywhere``): the session
    list, its count and the session cap see only live sessions.

    A session that still owes its MFA code (the password alone) ends only
    itself: the sign-out is open to it so that the person can leave, and
    whoever holds only a password must not end the account's verified
    sessions, nor kill its remember-me cookies by rotating the token.
    """
    user = current_user._get_current_object()
    state = stepup.mfa_state()
    if isinstance(user, User) and not (state is not None and state.must_verify):
        sessions.revoke_all(rbac, user.id, except_current=True, by=None,
                            reason="sign_out_everywhere")
        user.rotate_session_token()
        db.session.commit()
    logout_user()
    session.pop(current_app.config["RBAC_SESSION_KEY"], None)
    session.pop(RETURNING_KEY, None)
    flash("You have been signed out.", "info")
    return redirect(url_for("auth.login"))


#: Revocations after which no copy of the account's cookies may live on.
ENDS_EVERY_COPY = frozenset({"sign_out_everywhere", "admin", "password_changed"})


def end_copied_cookies(sender: Any, *, user_id: Any, reason: str, **extra: Any) -> None:
    """``session_revoked`` receiver: rotate the account's session token.

    The plugin's session records end the revoked cookies on their next
    request, and a remember-me cookie dies with the session it is bound to
    (:func:`load_user`). When every other session of the account ends,
    rotating the token the cookies name also kills every copy at once. The
    browser that asked (sign out everywhere *else*, a password change)
    keeps its session: the new token is written into it (bound again by
    :func:`bind_login_id`), and into its remember-me cookie if it had one.
    """
    if reason not in ENDS_EVERY_COPY:
        return
    user = db.session.get(User, user_id)
    if user is None:
        return
    user.rotate_session_token()
    if (has_request_context() and current_user.is_authenticated
            and getattr(current_user, "id", None) == user.id):
        session["_user_id"] = user.get_id()
        if current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies:
            session["_remember"] = "set"


def init_app(app: Flask) -> None:
    """Wire authentication into ``app``: user loader, login page, switcher context."""
    _dummy_hash()  # drawn at start-up, so that no sign-in pays for it
    login_manager.user_loader(load_user)
    # API tokens (Authorization: Bearer ...) of the plugin's JSON API.
    login_manager.request_loader(rbac.load_user_from_request)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in to continue."
    login_manager.login_message_category = "info"
    app.register_blueprint(bp)
    app.before_request(pin_workspace)
    app.after_request(bind_login_id)  # before Flask-Login's own, which writes the cookie
    user_logged_in.connect(remember_first_visit, app)
    session_revoked.connect(end_copied_cookies, app)
    app.context_processor(lambda: {"my_workspaces": my_workspaces,
                                   "current_workspace": current_workspace})
