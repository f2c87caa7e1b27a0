"""The device policy: a check of the session's device type before every request.

A workspace whose security policy leaves a device type out of
``allowed_devices`` is not usable from that type: the extension's
``before_request`` pass runs :func:`check` right after the IP allowlist's
(:func:`.enforce.screen`), with the same reach and the same exemptions, so
the two policies answer alike:

* **Who is checked**: every request of a signed-in member acting in such a
  workspace, Owners included (the IP allowlist exempts nobody either).
  Signing in is one of them: the sign-in itself is anonymous, and the first
  page it leads to is refused, so a member on a refused device never reaches
  the workspace. A session that signed in before the policy changed is
  refused on its next request: the policy is read with the user on every
  request. Anonymous requests (the sign-in page, an invitation link, static
  files), the host's sign-out (``RBAC_MFA_EXEMPT_ENDPOINTS``) and the
  workspace switch are never checked, so a refused member can leave or move
  to a workspace that admits their device.
* **API tokens are no device**: a request signed in by a bearer token is not
  checked. A token is a credential of its own, made by an Owner or a member
  on an allowed device, listed and revoked on the tokens page, and it serves
  scripts and integrations, which have no device type.
* **The device type** is :func:`.devices.device_type` of the request's
  ``User-Agent``. An agent that names no browser (curl or a script holding a
  session cookie, no agent at all) is :data:`.devices.OTHER`, which a policy
  that leaves any type out refuses. The agent is the client's own claim:
  see :mod:`.devices` for what this policy does and does not stop.
* **A refusal** is a 403: the page ``rbac/device_refused.html`` (the device
  type, the allowed ones, and whom to ask), or ``{"error":
  "device_not_allowed", "device": ..., "allowed": [...]}`` for a JSON
  client. It is audited ``access.device_refused`` (resource ``account``,
  target the member's address, ``detail = {"path", "device", "user_agent"}``),
  at most once per member per minute, so a refused client cannot flood the
  trail.
* **Cost**: nothing for a workspace that allows every type (the default):
  ``allowed_devices`` comes with the user from ``load_user``'s one query
  (the :class:`~..identity.Visit`'s account row; else
  :func:`.network.current_policy` reads the policy once per request) and is
  compared with the stored text of "every type". Otherwise the agent is
  classified by a scan of a few substrings, and no query runs unless the
  request is refused.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flask import jsonify, render_template, request

from ..decorators import wants_json
from ..identity import Visit
from ..models.security import ALL_DEVICES
from .devices import NAMES, describe, device_allowed, device_type
from .network import audit_refusal, current_policy
from .policy import devices_text, parse_devices

__all__ = ["allowed_devices_of", "check", "devices_of", "refusal_message"]

#: The template of the refusal page.
REFUSED_TEMPLATE = "rbac/device_refused.html"


@lru_cache(maxsize=64)
def devices_of(text: str | None) -> tuple[str, ...]:
    """The device types of a stored ``allowed_devices``, parsed once per distinct text."""
    return parse_devices(text)


def allowed_devices_of(facts: Visit) -> tuple[Any, str | None]:
    """The request's workspace and its stored ``allowed_devices``: read with the user by
    ``load_user`` when it could (no query), else through :func:`.network.current_policy`."""
    if facts.account is not None:
        return facts.workspace_id, facts.account.allowed_devices
    policy = current_policy()
    return policy.workspace_id, devices_text(policy.allowed_devices)


def refusal_message(kind: str, allowed: tuple[str, ...]) -> str:
    """What a refused member reads: their device type and the allowed ones."""
    names = " and ".join(NAMES[k] for k in allowed)
    return (f"This workspace cannot be used from {NAMES.get(kind, kind)}: its Owners allow "
            f"only {names}. Switch device, or ask an Owner of the workspace to allow this one.")


def check(facts: Visit) -> Any:
    """Refuse a session's request from a device type its workspace does not allow (see
    the module docstring); None lets it through.

    The caller skips :func:`.network.exempt` endpoints and has run
    :func:`.network.load_token`.
    """
    if facts.state.token_auth:
        return None
    workspace_id, stored = allowed_devices_of(facts)
    if stored is None or stored == ALL_DEVICES:
        return None
    allowed = devices_of(stored)
    agent = request.user_agent.string
    kind = device_type(agent)
    if device_allowed(kind, allowed):
        return None
    audit_refusal("access.device_refused", workspace_id, facts.user, device=kind)
    message = refusal_message(kind, allowed)
    if wants_json():
        response = jsonify(error="device_not_allowed", device=kind, allowed=list(allowed),
                           message=message)
        response.status_code = 403
        return response
    return render_template(REFUSED_TEMPLATE, device=kind, label=describe(agent),
                           allowed=allowed, names=NAMES, message=message), 403
