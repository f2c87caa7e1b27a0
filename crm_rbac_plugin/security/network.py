"""The IP allowlist: a check of the client's address before every request.

The extension's ``before_request`` pass runs it (:func:`check`) after the
last-activity stamp and before the session and MFA gate
(:func:`.enforce.screen`), so a refused address reaches no MFA page either.

A workspace whose security policy lists networks (``ip_allowlist``, one CIDR
per line) is reachable only from them. The check applies to every request
of a signed-in member and to every API-token request acting in such a
workspace; anonymous requests (the sign-in page, an invitation link, static
files) are not checked, since they reach no workspace's data. The host's
sign-out (``RBAC_MFA_EXEMPT_ENDPOINTS``) and the workspace switch stay
reachable, so a refused member can leave or move to a workspace that admits
them.

* **The address** is ``request.remote_addr`` and nothing else: an
  ``X-Forwarded-For`` header is never read here, because any client can send
  one. Behind reverse proxies the host wraps its app in Werkzeug's
  ``ProxyFix(app.wsgi_app, x_for=N)`` with N the number of proxies it runs,
  which sets ``remote_addr`` from the N-th hop counted from the right; a
  hop a client adds to the left is never believed. An IPv4-mapped IPv6
  address (``::ffff:203.0.113.7``) counts as its IPv4 address; an address
  that does not parse is refused.
* **A refusal** is a 403: the page ``rbac/ip_refused.html`` (the address, and
  whom to ask), or ``{"error": "ip_not_allowed", "ip": ...}`` for an API
  token or a JSON client. It is audited ``access.ip_refused`` with the
  ``ip`` column and ``detail = {"path", "via": "page" | "token"}``, at most
  once per address and member per minute, so a refused client cannot flood
  the trail.
* **Cost**: the allowlist comes with the user from ``load_user``'s one
  query (the :class:`~..identity.Visit`'s account row; else
  :func:`current_policy` reads it once per request) and an allowlist's text
  is parsed once per process (:func:`networks_of`, cached by text).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from flask import jsonify, render_template, request

from .. import audit
from ..decorators import wants_json
from ..identity import RequestState, Visit, request_state
from ..interface import RBACProtocol
from ..loader import BYPASS
from ..models import utcnow
from ..proxies import get_rbac
from ..role_conditions import address_in
from .policy import Policy, parse_allowlist, policy_for

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Endpoints a refused member still reaches besides static files and the sign-out.
ALWAYS_REACHABLE = frozenset({"rbac_settings.switch_workspace"})
#: One ``access.ip_refused`` event per address and member within this window.
AUDIT_WINDOW = dt.timedelta(minutes=1)
#: The template of the refusal page.
REFUSED_TEMPLATE = "rbac/ip_refused.html"


@lru_cache(maxsize=256)
def networks_of(allowlist: str) -> tuple[Network, ...]:
    """The networks of an allowlist's text, parsed once per distinct text.

    The cache is keyed by the text itself, so an edited list is a new key and
    no entry is ever stale.
    """
    return tuple(parse_allowlist(allowlist))


def address_allowed(address: str | None, networks: tuple[Network, ...] | list[Network]) -> bool:
    """Whether ``address`` falls in one of ``networks`` (no networks: every address).

    An IPv4-mapped IPv6 address is compared as its IPv4 address; a missing or
    malformed address is refused when there is a list.
    """
    return not networks or address_in(address, networks)


def current_policy() -> Policy:
    """The security policy of the request's workspace, read once per request.

    No workspace (an anonymous request, a user without membership) gives the
    defaults, whose allowlist is empty.
    """
    state = request_state()
    if state.security_policy is None:
        rbac = get_rbac()
        ws = rbac.current_workspace_id()
        state.security_policy = policy_for(rbac, ws) if ws is not None else Policy()
    return state.security_policy  # type: ignore[no-any-return]


def _allowlist(facts: Visit) -> tuple[int | None, str]:
    """The request's workspace and its allowlist's text: read with the user by
    ``load_user`` when it could (no query), else through :func:`current_policy`."""
    if facts.account is not None:
        return facts.workspace_id, facts.account.ip_allowlist or ""
    policy = current_policy()
    return policy.workspace_id, policy.ip_allowlist


def exempt(endpoint: str, exempt_endpoints: frozenset[str]) -> bool:
    """Whether ``endpoint`` is reachable from any address: static files, the workspace
    switch and the host's sign-out (``RBAC_MFA_EXEMPT_ENDPOINTS``)."""
    return (endpoint == "static" or endpoint.endswith(".static") or endpoint in ALWAYS_REACHABLE
            or endpoint in exempt_endpoints)


def load_token(rbac: RBACProtocol, endpoint: str, state: RequestState) -> bool:
    """Let an API request's bearer token decide whose workspace is checked; True when
    it signed a user in (the request's facts changed).

    The API authenticates its token in its own ``before_request``, after this
    check; a host without Flask-Login's ``request_loader`` would otherwise
    have the token's workspace checked too late.
    """
    if (endpoint.rpartition(".")[0] == "rbac_api" and not state.token_auth
            and "Authorization" in request.headers):
        if rbac.load_user_from_request(request) is not None:
            state.reset()
            return True
    return False


def check(facts: Visit) -> Any:
    """Refuse a request from outside the workspace's allowlist (see the module docstring).

    The caller skips :func:`exempt` endpoints and has run :func:`load_token`.
    """
    workspace_id, allowlist = _allowlist(facts)
    if not allowlist:
        return None
    ip = request.remote_addr
    if address_allowed(ip, networks_of(allowlist)):
        return None
    user = facts.user
    token = facts.state.token_auth
    audit_refusal("access.ip_refused", workspace_id, user, ip=ip,
                  via="token" if token else "page")
    message = (f"Your address, {ip}, is not on this workspace's list of allowed networks. "
               "Ask an Owner of the workspace to add it.")
    if token or wants_json():
        response = jsonify(error="ip_not_allowed", ip=ip, message=message)
        response.status_code = 403
        return response
    return render_template(REFUSED_TEMPLATE, ip=ip, message=message), 403


def audit_refusal(action: str, workspace_id: Any, user: Any, *, ip: str | None = None,
                  **detail: Any) -> None:
    """Write ``action`` (a refusal of the member's request: ``access.ip_refused``,
    ``access.device_refused``) unless this member, from this address when ``ip`` is
    given, had one in the last minute; a refused request may repeat many times."""
    rbac = get_rbac()
    A, M = rbac.models.AuditEvent, rbac.models.Membership
    uid = rbac.user_pk(user)
    session = rbac.db.session
    recent = session.scalar(sa.select(A.id).where(
        A.action == action, A.workspace_id == workspace_id, A.actor_user_id == uid,
        *((A.ip == ip,) if ip is not None else ()),
        A.at >= utcnow() - AUDIT_WINDOW).limit(1), execution_options=BYPASS)
    if recent is not None:
        return
    membership_id = session.scalar(sa.select(M.id).where(
        M.workspace_id == workspace_id, M.user_id == uid), execution_options=BYPASS)
    email = str(getattr(user, "email", "") or "").strip().lower()
    event = audit.record(rbac, action, workspace_id=workspace_id, resource="account",
                         target=email, actor_ids=(uid, membership_id), path=request.path,
                         **detail)
    if ip is not None:
        event.ip = ip
    session.commit()
