"""The MFA gate: a ``before_request`` hook that every request of a signed-in user passes.

In this order, for the request's user in the current workspace:

1. A session whose user has the plugin's TOTP on but has not entered a code
   since signing in (:attr:`.stepup.MfaState.must_verify`) reaches only the
   verification page: the password alone never opens a session of an
   enrolled account, whatever the host's login view does afterwards.
2. A member whom the workspace's policy requires to use MFA and who has not
   enrolled (:attr:`.stepup.MfaState.must_enrol`) reaches only the
   enrolment page: browsers are redirected there, an API token gets
   ``403 {"error": "mfa_required"}``.

Always reachable: static files, the two pages above, and the host's
sign-out (``RBAC_MFA_EXEMPT_ENDPOINTS``). API tokens skip step 1: a token
is a credential of its own, created by a session that passed the checks.
Anonymous requests pass untouched (the host's login decides). A request
without an endpoint (404) passes too: it reaches nothing.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, request, session
from flask_login import user_logged_in, user_logged_out

from ..config import setting
from ..decorators import wants_json
from ..identity import request_state
from . import network, stepup


def init_app(app: Flask) -> None:
    """Install the gate on ``app``; sign-ins and sign-outs forget the session's check."""
    app.before_request(network.check_address)  # the IP allowlist, before any MFA page
    app.before_request(gate)


def watch_sign_in() -> None:
    """Forget the session's MFA check whenever Flask-Login signs someone in or out.

    Called once by the extension (the signals are process-wide).
    """
    user_logged_in.connect(stepup.forget_other_check)
    user_logged_out.connect(stepup.forget_check)


def _exempt(endpoint: str) -> bool:
    return (endpoint == "static" or endpoint.endswith(".static")
            or endpoint in setting("RBAC_MFA_EXEMPT_ENDPOINTS"))


#: What a member owing an enrolment reads on the enrolment page.
ENROL_MESSAGE = "This workspace requires two-factor authentication: set it up to continue."


def _flash_once(message: str) -> None:
    """Flash ``message`` unless it waits already (one per visit, however many redirects)."""
    if all(text != message for _, text in session.get("_flashes", ())):
        flash(message, "warning")


def gate() -> Any:
    """Send a session that owes an MFA check or an enrolment to the page that settles it."""
    endpoint = request.endpoint
    if endpoint is None or _exempt(endpoint):
        return None
    state = stepup.mfa_state()
    if state is None:
        return None
    token = request_state().token_auth
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
    return None
