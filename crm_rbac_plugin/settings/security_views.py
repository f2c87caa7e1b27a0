"""The Security page, ``/settings/security``: the workspace's security policy.

One form over every field of :class:`..security.policy.Policy` (MFA, step-up,
session lifetimes, the session cap, the IP allowlist, the allowed device
types, password rules), in two steps: **Preview** shows whom the change
would affect (members who would have to enrol in MFA, sessions the new
limits end at once, members last seen from outside the new allowlist or on
a refused device), then **Save** writes it. A POST with
``step=save`` saves without a preview (a script may); the page shows its
Save button only after a preview.

Access: Owners edit; members holding ``settings.manage`` (Admins) read the
page without controls; anyone else gets a 403, and so does a POST by anyone
but an Owner. POSTs need a recent MFA check (step-up). Every rule about the
values, the lockouts and the audit event belongs to
:mod:`..security.editing`, shared with the API and the CLI; refusals come
back at the field they name (400 for a bad value, 409 for a lockout).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import (
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.widgets import NumberInput

from .. import pages
from ..decorators import EXEMPT_METHODS, login_required
from ..policy import Decision
from ..proxies import current_rbac
from ..security import editing, stepup
from ..security.devices import NAMES, describe, device_type
from ..security.policy import FIELDS, LIMITS, MAX_ALLOWLIST_LINES, Policy, policy_for
from .blueprint import attempt, bp, render

F = TypeVar("F", bound=Callable[..., Any])

#: The MFA choices, each with its one-line explanation.
MFA_CHOICES = [
    ("nobody", "Nobody is required",
     "Members may turn on two-factor authentication for themselves."),
    ("privileged", "Privileged members",
     "Owners, Admins and any role that manages members, roles or settings must use it."),
    ("everyone", "Everyone", "Every member must set it up before using the workspace."),
]
#: The device types, each with its label and what it covers.
DEVICE_CHOICES = [
    ("desktop", "Desktop and laptop computers",
     "Any browser that is not a phone's or a tablet's (Windows, macOS, Linux, ChromeOS)."),
    ("mobile", "Phones", "iPhone, Android phones and other mobile browsers."),
    ("tablet", "Tablets", "iPad, Android tablets. An iPad asking for the desktop site "
                          "counts as a computer."),
]
#: zxcvbn's scores in words.
SCORE_CHOICES = [
    ("0", "0: any password of the minimum length"),
    ("1", "1: refuse only the most guessable (very weak)"),
    ("2", "2: refuse easily guessed passwords (weak)"),
    ("3", "3: safely unguessable (recommended)"),
    ("4", "4: very unguessable (strongest)"),
]
#: What each field is called on the page, the preview and the flash.
LABELS = {
    "mfa": "Who must use two-factor authentication",
    "step_up_minutes": "Step-up window (minutes)",
    "idle_minutes_privileged": "Idle timeout, privileged members (minutes)",
    "absolute_minutes_privileged": "Absolute session lifetime, privileged members (minutes)",
    "idle_minutes_member": "Idle timeout, other members (minutes)",
    "absolute_minutes_member": "Absolute session lifetime, other members (minutes)",
    "max_sessions": "Most sessions at once per member",
    "ip_allowlist": "Allowed networks",
    "allowed_devices": "Devices that may use the workspace",
    "password_min_length": "Minimum password length (characters)",
    "password_min_score": "Minimum password strength",
}
#: Where each field's help text explains the unit and the default.
HELP = {
    "step_up_minutes": "Sensitive actions (this page, role changes, view-as) need a code "
                       "entered within this many minutes. Default 15.",
    "idle_minutes_privileged": "Signed out after this long without a request. Default 30 "
                               "(half an hour).",
    "absolute_minutes_privileged": "Signed out this long after signing in, however active. "
                                   "Default 720 (12 hours).",
    "idle_minutes_member": "Default 480 (8 hours).",
    "absolute_minutes_member": "Default 10080 (7 days).",
    "max_sessions": "Leave empty for no limit. Signing in beyond it ends the oldest session.",
    "ip_allowlist": "One network per line in CIDR form, IPv4 or IPv6 (203.0.113.0/24, "
                    f"2001:db8::/32); up to {MAX_ALLOWLIST_LINES}. Empty: any address. "
                    "Applies to pages and API tokens.",
    "allowed_devices": "Read from each browser's user agent at sign-in and on every "
                       "request; a refused member sees why. API tokens are not devices and "
                       "are not checked. Default: all.",
    "password_min_length": "Applies to new passwords. Default 12.",
}


def _number(name: str) -> StringField:
    low, high = LIMITS[name]
    return StringField(LABELS[name], description=HELP.get(name, ""),
                       widget=NumberInput(min=low, max=high),
                       render_kw={"inputmode": "numeric"})


class SecurityPolicyForm(FlaskForm):
    """The policy's fields as the page posts them; :mod:`..security.policy` checks the values."""

    mfa = RadioField(LABELS["mfa"], choices=[SelectChoice(v, label) for v, label, _ in MFA_CHOICES],
                     validate_choice=False)
    step_up_minutes = _number("step_up_minutes")
    idle_minutes_privileged = _number("idle_minutes_privileged")
    absolute_minutes_privileged = _number("absolute_minutes_privileged")
    idle_minutes_member = _number("idle_minutes_member")
    absolute_minutes_member = _number("absolute_minutes_member")
    max_sessions = _number("max_sessions")
    ip_allowlist = TextAreaField(LABELS["ip_allowlist"], description=HELP["ip_allowlist"],
                                 render_kw={"rows": 5, "spellcheck": "false",
                                            "autocapitalize": "off"})
    allowed_devices = SelectMultipleField(
        LABELS["allowed_devices"], description=HELP["allowed_devices"],
        choices=[SelectChoice(v, label) for v, label, _ in DEVICE_CHOICES], validate_choice=False)
    password_min_length = _number("password_min_length")
    password_min_score = SelectField(LABELS["password_min_score"],
                                     choices=[SelectChoice(v, label) for v, label in SCORE_CHOICES],
                                     validate_choice=False)

    def changes(self) -> dict[str, Any]:
        """Every policy field as posted (no device box ticked: an empty list, refused)."""
        changes = {name: self[name].data for name in FIELDS}
        changes["allowed_devices"] = list(changes["allowed_devices"] or [])
        return changes


def add_tabs(app: Flask) -> None:
    """The "Security" tab, last of the workspace's (after Access review, 110): Owners and
    Admins see it."""
    pages.add_tab(app, f"{bp.name}.security", "Security", order=120,
                  permission="settings.manage")


def _refusal_reason(access: Any) -> str | None:
    """Why this request is refused (None: it may go on): reading needs an Owner or
    ``settings.manage``, anything but reading an Owner."""
    if request.method in EXEMPT_METHODS:
        return None
    if not editing.may_read(current_rbac, access):
        return "Only Owners and Admins can see the security policy."
    if request.method not in ("GET", "HEAD") and not editing.may_edit(access):
        return "Only an Owner can change the security policy."
    return None


def security_access(view: F) -> F:
    """Let Owners and ``settings.manage`` holders read, and only Owners post (else an
    audited 403)."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        rbac = current_rbac
        access = rbac.current_access()
        reason = _refusal_reason(access)
        if reason is not None:  # audited as access.denied, like every refused permission
            rbac.signal_denied(access, "manage", "settings", None, reason)
            return rbac.refusal(Decision(False, reason), 403)
        return current_app.ensure_sync(view)(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


def _form_for(policy: Policy) -> SecurityPolicyForm:
    values = {name: getattr(policy, name) for name in FIELDS}
    values["password_min_score"] = str(policy.password_min_score)
    values["allowed_devices"] = list(policy.allowed_devices)
    return SecurityPolicyForm(data=values)


def _page(form: SecurityPolicyForm, status: int = 200, *, preview: Any = None) -> Any:
    rbac = current_rbac
    access = rbac.current_access()
    agent = request.user_agent.string
    return render("security.html", status, form=form, preview=preview,
                  can_edit=editing.may_edit(access), your_ip=request.remote_addr,
                  your_device=device_type(agent), your_browser=describe(agent), device_names=NAMES,
                  mfa_choices=MFA_CHOICES, device_hints={v: h for v, _, h in DEVICE_CHOICES},
                  labels=LABELS)


def _preview(access: Any, changes: dict[str, Any]) -> editing.Preview:
    """The preview, refused as Save would refuse it: a lockout shows before the Save button."""
    result = editing.preview(current_rbac, access.workspace_id, changes)
    editing.check_lockout(result.policy, access, ip=request.remote_addr, enrolled=_enrolled(),
                          agent=request.user_agent.string)
    return result


def _enrolled() -> bool:
    state = stepup.mfa_state()
    return bool(state is not None and state.enrolled)


@bp.route("/security", methods=["GET", "POST"])
@login_required
@security_access
@stepup.require_recent_mfa
def security() -> Any:
    """Show the policy; preview a change (``step=preview``) or save it (``step=save``)."""
    rbac = current_rbac
    access = rbac.current_access()
    if request.method == "GET":
        return _page(_form_for(policy_for(rbac, access.workspace_id)))
    form = SecurityPolicyForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    changes = form.changes()
    if request.form.get("step") == "preview":
        outcome = attempt(lambda: _preview(access, changes), form, commit=False)
        return _page(form, outcome.status, preview=outcome.value)
    saved = attempt(lambda: editing.save(rbac, access, changes, ip=request.remote_addr,
                                         enrolled=_enrolled(), agent=request.user_agent.string),
                    form)
    if not saved.ok or saved.value is None:
        return _page(form, saved.status)
    changed = saved.value.changes
    if changed:
        names = ", ".join(LABELS[name].split(" (")[0].lower() for name in changed)
        flash(f"Security policy saved: {names}.", "success")
    else:
        flash("Nothing changed: the policy already had these values.", "info")
    return redirect(url_for(".security"))
