"""The session and MFA gate that every request of a signed-in user passes.

The extension's one ``before_request`` pass calls :func:`screen`: the IP
allowlist (:mod:`.network`) and the device policy (:mod:`.device_gate`)
first, so a refused address or device reaches no MFA page, then the gate,
with the facts the pass read once (:class:`~..identity.Visit`). The gate checks, in this order, for the
request's user in the current workspace:

0. The server-side session (:mod:`.sessions`) the cookie names must be
   live: a revoked or unknown id, an idle or expired session signs the user
   out; a browser goes to the host's login page with a message naming why,
   a JSON client gets ``401 {"error": "session_ended", "reason": ...}``. A
   session without an id is adopted. API tokens have no session and skip
   this step.
1. A session whose user has the plugin's TOTP on but has not entered a code
   since signing in (:attr:`.stepup.MfaState.must_verify`) reaches only the
   verification page: the password alone never opens a session of an
   enrolled account, whatever the host's login view does afterwards.
2. A member whom the workspace's policy requires to use MFA and who has not
   enrolled (:attr:`.stepup.MfaState.must_enrol`) reaches only the
   enrolment page: browsers are redirected there, an API token gets
   ``403 {"error": "mfa_required"}``.
3. A session in a workspace whose roles do not let the member sign in is
   refused (:mod:`.signin`): after the MFA steps, so a password alone tells
   nothing about the account's roles.

Every response to a signed-in user (static files aside) carries
``Cache-Control: no-store`` (:func:`no_store`).

Always reachable: static files, the two pages above, and the host's
sign-out (``RBAC_MFA_EXEMPT_ENDPOINTS``). API tokens skip step 1: a token
is a credential of its own, created by a session that passed the checks.
Anonymous requests pass untouched (the host's login decides). A request
without an endpoint (404) passes too: it reaches nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, current_app, flash, has_request_context, jsonify, redirect, request, session, url_for
from flask_login import logout_user, user_loaded_from_cookie, user_logged_in, user_logged_out
from werkzeug.routing import BuildError
from werkzeug.wrappers import Response

from ..config import RequestSettings, request_settings, setting
from ..decorators import wants_json
from ..identity import Visit, request_state, signed_in_user, visit
from ..interface import RBACProtocol
from ..proxies import current_flask_app
from . import device_gate, mfa, network, sessions, signin, stepup


def init_app(app: Flask) -> None:
    """Give ``app`` its session service (the extension's pass calls :func:`screen`) and
    :func:`no_store` on its responses."""
    sessions.init_app(app)
    app.after_request(no_store)


def no_store(response: Response) -> Response:
    """``after_request``: no cache keeps a response to a signed-in user.

    Such responses show secrets (the TOTP secret and its QR code, recovery
    codes, a new API token's plaintext, CSV exports) and the workspace's
    data; a shared computer's cache, a proxy or the back button after
    sign-out must not hand them to the next person. Marking every one,
    rather than a list of pages, covers the pages nobody thought of.
    ``Cache-Control: no-store`` replaces whatever the view set unless it
    says ``no-store`` already (a download's ``private, no-store`` stays);
    ``Pragma: no-cache`` is for HTTP/1.0 caches. Static files stay cacheable.
    """
    if _static(request.endpoint or "") or signed_in_user() is None:
        return response
    if "no-store" not in (response.headers.get("Cache-Control") or ""):
        response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


def watch_sign_in() -> None:
    """Open a server-side session at each Flask-Login sign-in (and remember-me
    restoration), end it at sign-out, and forget the session's MFA check.

    Called once by the extension (the signals are process-wide).
    """
    user_logged_out.connect(stepup.forget_check)
    user_logged_in.connect(session_started)
    user_loaded_from_cookie.connect(session_started)
    user_logged_out.connect(session_ended)


def session_started(sender: Any = None, *, user: Any = None, **extra: Any) -> None:
    """Flask-Login ``user_logged_in``/``user_loaded_from_cookie`` receiver: a new session
    id and row; the pre-login session's keys go, but Flask-Login's.

    The MFA check goes too: a sign-in needs a new code, whatever check the
    cookie carried (a copy of a dead session's cookie carries one). Only when
    ``user`` signs in again over this browser's live session of theirs (the
    profile does after a password change) does the check that session passed
    move to the new id: it is the same person in the same session.
    """
    if not has_request_context():
        return
    rbac = sessions.rbac_or_none()
    carried = None
    if rbac is not None and user is not None:
        if sessions.is_live_here(rbac, rbac.user_pk(user)):
            carried = stepup.session_check(user)
        # The cap waits for the MFA code when one is owed (stepup.record_check applies it).
        sessions.start(rbac, user, cap=not mfa.is_enrolled(rbac, rbac.user_pk(user)))
    session.pop(stepup.SESSION_KEY, None)
    request_state().mfa = None
    if carried is not None:
        stepup.record_check(user, carried)


def session_ended(sender: Any = None, **extra: Any) -> None:
    """Flask-Login ``user_logged_out`` receiver: revoke this session's row (``signed_out``)."""
    rbac = sessions.rbac_or_none()
    if rbac is not None and has_request_context():
        sessions.end_current(rbac, "signed_out")
        session.pop(setting("RBAC_SESSION_ID_KEY"), None)


def _static(endpoint: str) -> bool:
    return endpoint == "static" or endpoint.endswith(".static")


#: What a signed-out browser reads on the login page, by the reason its session ended.
ENDED_MESSAGES = {
    "revoked": "Your session ended: it was signed out. Sign in again to continue.",
    "idle": "Your session ended after {minutes} minutes without activity. Sign in again.",
    "expired": "Your session ended: it reached its maximum length of {hours} hours. "
               "Sign in again.",
}


def check_session(rbac: RBACProtocol, state: stepup.MfaState, facts: Visit) -> Any:
    """Step 0: adopt a session without an id, end a dead one, note a live one's activity."""
    record = state.session
    if record is None or getattr(current_flask_app(), "login_manager", None) is None:
        return None
    if not record.has_id:
        sessions.start(rbac, facts.user, clear=False)
        return None
    at = sessions.now()
    reason = sessions.verdict(record, state.lifetimes, at, request_settings().session_touch)
    if reason is None:
        sessions.touch(rbac, record, state.lifetimes, at)
        return None
    if reason != "revoked":
        sessions.end_current(rbac, reason)
    message = ENDED_MESSAGES[reason].format(minutes=state.lifetimes.idle_minutes,
                                            hours=state.lifetimes.absolute_minutes // 60)
    return end_session(reason, message)


def check_switch(rbac: RBACProtocol, workspace_id: Any) -> Any:
    """End the session before it enters ``workspace_id`` if it has idled or lived longer
    than that workspace allows; None when it may enter.

    Every request judges the session by the workspace it is in, and that
    request has just counted as activity: without this, a session idle past a
    strict workspace's timeout (its Owner's 30 minutes) would be judged by a
    lenient one (a member's 8 hours) and then switch into the strict one. The
    session's times are those read before this request noted its activity.
    """
    state = stepup.mfa_state()
    record = state.session if state is not None else None
    if record is None or not record.has_id:
        return None
    lifetimes = sessions.account_lifetimes(rbac, rbac.user_pk(signed_in_user()), workspace_id)
    if lifetimes is None:  # not an active member there: the switch refuses it
        return None
    reason = sessions.verdict(record, lifetimes, sessions.now(), request_settings().session_touch)
    if reason is None:
        return None
    if reason != "revoked":
        sessions.end_current(rbac, reason)
    return end_session(reason, ENDED_MESSAGES[reason].format(
        minutes=lifetimes.idle_minutes, hours=lifetimes.absolute_minutes // 60))


def end_session(reason: str, message: str) -> Any:
    """Sign the user out; a browser goes to the login page, a JSON client gets a 401."""
    logout_user()
    request_state().mfa = None
    view = getattr(current_app.login_manager, "login_view", None)  # type: ignore[attr-defined]
    if not wants_json() and view:
        try:
            target = url_for(view, next=stepup.return_path())
        except BuildError:
            target = None
        if target is not None:
            flash(message, "warning")
            return redirect(target)
    response = jsonify(error="session_ended", reason=reason, message=message)
    response.status_code = 401
    return response


#: What a member owing an enrolment reads on the enrolment page.
ENROL_MESSAGE = "This workspace requires two-factor authentication: set it up to continue."


def _flash_once(message: str) -> None:
    """Flash ``message`` unless it waits already (one per visit, however many redirects)."""
    if all(text != message for _, text in session.get("_flashes", ())):
        flash(message, "warning")


def screen(rbac: RBACProtocol, endpoint: str, facts: Visit | None,
           settings: RequestSettings) -> Any:
    """The IP allowlist, the device policy, then the gate, for a request to ``endpoint``;
    ``facts`` is the request's :class:`~..identity.Visit` (None: nobody signed in yet)."""
    if _static(endpoint):
        return None
    if not network.exempt(endpoint, settings.exempt_endpoints):
        state = facts.state if facts is not None else request_state()
        if network.load_token(rbac, endpoint, state):
            facts = visit(rbac, settings)
        if facts is not None:
            refused = network.check(facts)
            if refused is None:
                refused = device_gate.check(facts)
            if refused is not None:
                return refused
    if facts is None:
        return None
    return gate(rbac, endpoint, facts)


def gate(rbac: RBACProtocol, endpoint: str, facts: Visit) -> Any:
    """End a dead session; send one that owes an MFA check or an enrolment to the page
    that settles it."""
    state = stepup.mfa_state_of(rbac, facts)
    token = facts.state.token_auth
    if not token:
        ended = check_session(rbac, state, facts)
        if ended is not None:
            return ended
    if endpoint in facts.settings.exempt_endpoints:
        return None
    if state.must_verify and not token:
        if endpoint == stepup.VERIFY_ENDPOINT:
            return None
        return stepup.refuse("mfa_verification_required",
                             "Enter the code from your authenticator app to continue.",
                             stepup.VERIFY_ENDPOINT, status=401)
    if state.must_enrol and endpoint not in (stepup.ENROL_ENDPOINT, stepup.VERIFY_ENDPOINT):
        if not token and request.method == "GET" and not wants_json():
            _flash_once(ENROL_MESSAGE)
        return stepup.refuse("mfa_required",
                             "This workspace requires two-factor authentication. Turn it on "
                             "in your account settings before using the API.",
                             stepup.ENROL_ENDPOINT)
    if token:
        return signin.refuse_token(rbac)
    return signin.refuse_session(rbac, endpoint, facts)
