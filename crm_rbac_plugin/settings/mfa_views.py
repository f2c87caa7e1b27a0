"""The member's two-factor authentication pages, the sign-in verification step, the Owner's reset.

* ``/account/mfa`` (tab "Two-factor authentication"): set-up with a QR code
  and the secret as text, confirmed by a code before MFA is on; then the
  status, new recovery codes and turning it off (step-up actions); turning
  it off also asks for the password, and a workspace that requires MFA of
  the member keeps it on (409).
* ``/account/verify``: the code asked after a password sign-in (the gate of
  :mod:`..security.enforce` sends the session here) and for step-up. It is
  not behind a login check: an anonymous request, an account without MFA
  and a wrong code all get the same page and the same 400, so the answer
  never tells whether the account exists or has MFA. Wrong codes are
  throttled like failed sign-ins (:mod:`..security.throttle`: per account and
  per IP, in the database, with a growing wait), so guessing six digits
  takes days, not minutes. The fifth wrong code in a row of a signed-in
  account (and each one after it, until a right code) ends the session
  (``session.revoked``, reason ``mfa_failed``): a new password sign-in comes
  first.
* ``/members/<id>/mfa/reset`` (POST): an Owner removes a member's MFA
  (audited ``auth.mfa_reset``); another workspace's member is a 404, a
  pending or deactivated member or an Owner of a workspace the actor does
  not own a 403 (:mod:`..security.standing`).

Templates can show the status through the blueprint's context:
``mfa_status_of(user_id)`` (a member's page shows it for an active member
only), ``mfa_can_reset(membership)`` and ``mfa_summary()`` (used by the includes
``rbac/settings/account/mfa_card.html`` and ``mfa_status.html``).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, redirect, request, session, url_for
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from .. import pages, team
from ..config import setting
from ..decorators import login_required, require_permission
from ..identity import signed_in_user
from ..models import utcnow
from ..pages import ConfirmForm, acting_access
from ..policy import Decision
from ..proxies import current_rbac
from ..security import enforce, mfa, sessions, standing, stepup, throttle, totp
from ..urls import safe_next
from .blueprint import attempt, bp, membership_or_404, render


class TurnOffForm(FlaskForm):
    """The password, asked again before two-factor authentication goes."""

    password = PasswordField("Your password", validators=[
        DataRequired(message="Enter your password."), Length(max=200)],
        render_kw={"autocomplete": "current-password"})


class CodeForm(FlaskForm):
    """One code: six digits from the app, or a recovery code."""

    code = StringField("Code", validators=[DataRequired(message="Enter a code."), Length(max=32)],
                       render_kw={"autocomplete": "one-time-code", "autocapitalize": "off",
                                  "spellcheck": "false"})


def add_tabs(app: Flask) -> None:
    """The personal tab, between Profile (200) and API tokens (210)."""
    pages.add_tab(app, f"{bp.name}.mfa", "Two-factor authentication", order=205,
                  group="personal", highlight=[f"{bp.name}.mfa_recovery_codes"])


@bp.context_processor
def _mfa_context() -> dict[str, Any]:
    """Lazy helpers for the MFA includes (nothing is read until a template calls them)."""
    def status_of(user_id: Any) -> str:
        return mfa.mfa_status(current_rbac, [user_id])[user_id]

    def summary() -> dict[str, Any]:
        uid = current_rbac.user_pk(signed_in_user())
        status = mfa.mfa_status(current_rbac, [uid])[uid]
        left = mfa.remaining_recovery_codes(current_rbac, uid) if status == "on" else 0
        return {"status": status, "recovery_codes_left": left}

    def can_reset(membership: Any) -> bool:
        access = current_rbac.current_access()
        return bool(access and access.is_owner) and standing.account_action_refusal(
            current_rbac, access, membership) is None
    return {"mfa_status_of": status_of, "mfa_summary": summary, "mfa_can_reset": can_reset}


def _uid() -> Any:
    return current_rbac.user_pk(signed_in_user())


#: Wrong codes in a row after which the session ends (each later one ends it too, until a
#: right code): whoever holds the password alone is signed out, not left guessing.
WRONG_CODES_END_SESSION = 5
TOO_MANY_CODES = "Too many wrong codes: you were signed out. Sign in again to continue."
#: Flask session key of this session's enrolment attempt (:func:`..security.mfa.enrolment_tag`).
ENROLMENT_KEY = "rbac_mfa_enrolment"


def _holder() -> str:
    """The SHA-256 of the server session's id: what a pending secret is bound to."""
    sid = sessions.current_sid()
    return sessions.sid_hash(sid) if sid is not None else ""


def _setup_page(form: CodeForm, status: int = 200) -> tuple[str, int]:
    """The set-up page with this session's pending secret (a new one unless this session
    drew it and it has not expired)."""
    rbac, user = current_rbac, signed_in_user()
    holder = _holder()
    cred = mfa.start_enrolment(rbac, _uid(), tag=session.get(ENROLMENT_KEY) or "",
                               holder=holder)
    rbac.db.session.commit()
    session[ENROLMENT_KEY] = mfa.enrolment_tag(cred, holder)
    account = str(getattr(user, "email", None) or _uid())
    issuer = setting("RBAC_MFA_ISSUER") or request.host.split(":")[0]
    uri = totp.provisioning_uri(cred.secret, account, issuer)
    return render("account/mfa.html", status, mode="setup", form=form, qr=totp.qr_svg(uri),
                  secret=totp.grouped(cred.secret), codes=None, next=_next(), confirm=ConfirmForm())


def _next() -> str:
    return safe_next(request.values.get("next"), "")


def _codes_page(codes: list[str], title: str) -> tuple[str, int]:
    return render("account/mfa.html", mode="codes", codes=codes, codes_title=title,
                  next=_next() or url_for(".mfa"), form=None, confirm=ConfirmForm())


@bp.route("/account/mfa", methods=["GET", "POST"], endpoint="mfa")
@login_required
def mfa_page() -> Any:
    """Set up TOTP (QR code, secret, confirming code), or see its status."""
    rbac, uid = current_rbac, _uid()
    summary = mfa.mfa_status(rbac, [uid])[uid]
    if summary == "on":
        return _on_page(TurnOffForm(formdata=None))
    form = CodeForm()
    if request.method == "GET":
        return _setup_page(form)
    if not form.validate_on_submit():
        return _setup_page(form, 400)
    outcome = attempt(lambda: mfa.confirm_enrolment(
        rbac, uid, form.code.data or "", tag=session.get(ENROLMENT_KEY) or "",
        holder=_holder()), form)
    if not outcome.ok:
        return _setup_page(form, outcome.status)
    session.pop(ENROLMENT_KEY, None)
    stepup.record_check(signed_in_user())  # the member just showed they hold the secret
    flash("Two-factor authentication is on.", "success")
    return _codes_page(outcome.value or [], "Save your recovery codes")


@bp.post("/account/mfa/recovery-codes")
@login_required
@stepup.require_recent_mfa
def mfa_recovery_codes() -> Any:
    """Replace the recovery codes; the new ones are shown once."""
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".mfa"))
    outcome = attempt(lambda: mfa.regenerate_recovery_codes(current_rbac, _uid()))
    if not outcome.ok:
        return redirect(url_for(".mfa"))
    return _codes_page(outcome.value or [], "Your new recovery codes")


def _on_page(off_form: TurnOffForm, status: int = 200) -> tuple[str, int]:
    """The status page of an enrolled member: codes left, new codes, turning it off."""
    rbac, uid = current_rbac, _uid()
    return render("account/mfa.html", status, mode="on", form=None, codes=None, next=_next(),
                  left=mfa.remaining_recovery_codes(rbac, uid), confirm=ConfirmForm(),
                  off_form=off_form, required_by=mfa.requiring_workspaces(rbac, uid))


@bp.post("/account/mfa/turn-off")
@login_required
@stepup.require_recent_mfa
def mfa_turn_off() -> Any:
    """Turn one's own MFA off, with the password; mailed to the account as a notice."""
    rbac, user = current_rbac, signed_in_user()
    if not mfa.is_enrolled(rbac, _uid()):
        flash("Two-factor authentication is not on.", "info")
        return redirect(url_for(".mfa"))
    form = TurnOffForm()
    if not form.validate_on_submit():
        return _on_page(form, 400)
    outcome = attempt(lambda: mfa.turn_off(rbac, user, form.password.data), form,
                      fallback=form.password)
    if not outcome.ok:
        return _on_page(form, outcome.status)
    team.notify_mfa_turned_off(rbac, user)
    flash("Two-factor authentication is off: signing in asks for your password alone.",
          "success")
    return redirect(url_for(".mfa"))


@bp.route("/account/verify", methods=["GET", "POST"])
def mfa_verify() -> Any:
    """Ask for a code; the same page and answer whoever asks (see the module's docstring)."""
    form = CodeForm()
    if request.method == "GET":
        return render("account/verify.html", form=form, next=_next())
    if not form.validate_on_submit():
        return render("account/verify.html", 400, form=form, next=_next())
    rbac, user = current_rbac, signed_in_user()
    name, ip = mfa.throttle_name(_uid() if user is not None else None), request.remote_addr
    waiting = throttle.claim(rbac, name, ip, kind=throttle.MFA)
    if not waiting.allowed:  # the code is not checked
        return _refuse_code(form, waiting.message, 429)
    rbac.db.session.commit()  # counted before the code is checked: a burst sees it
    method = None
    if user is not None:
        method = attempt(lambda: mfa.verify(rbac, _uid(), form.code.data or "")).value
    else:
        totp.matching_step(totp.new_secret(), form.code.data or "", utcnow(), None)
    if method is None:
        throttle.record_failure(rbac, name, ip, kind=throttle.MFA, claimed=waiting.claimed)
        rbac.db.session.commit()
        if user is not None and _wrong_codes_in_a_row(name) >= WRONG_CODES_END_SESSION:
            sessions.end_current(rbac, "mfa_failed")
            return enforce.end_session("mfa_failed", TOO_MANY_CODES)
        return _refuse_code(form, mfa.INVALID_CODE, 400)
    throttle.release(rbac, waiting.claimed)
    throttle.reset_account(rbac, name, kind=throttle.MFA)
    rbac.db.session.commit()
    stepup.record_check(user)
    if method == "recovery":
        left = mfa.remaining_recovery_codes(rbac, _uid())
        flash(f"Recovery code accepted; {left} left. Regenerate them if you are running low.",
              "warning")
    return redirect(safe_next(request.values.get("next"), url_for(".mfa")))


def _wrong_codes_in_a_row(name: str) -> int:
    """The account's wrong codes since its last right one (the throttle's count, which
    every session of the account adds to and a right code resets)."""
    row = throttle.failures_of(current_rbac, throttle.account_key(name, throttle.MFA))
    return int(row.failures) if row is not None else 0


def _refuse_code(form: CodeForm, message: str, status: int) -> Any:
    """Refuse a code with the same page and ``message`` for everyone."""
    form.code.errors = [*form.code.errors, message]
    return render("account/verify.html", status, form=form, next=_next())


@bp.post("/members/<int:membership_id>/mfa/reset")
@require_permission("members", "view")
@stepup.require_recent_mfa
def mfa_reset(membership_id: int) -> Any:
    """Remove a member's MFA (Owners only; audited); they set it up again at next sign-in."""
    access = acting_access()
    membership = membership_or_404(membership_id)
    if not access.is_owner:
        return current_rbac.refuse(Decision(False, "Only an Owner can reset two-factor "
                                                   "authentication."), 403)
    refusal = standing.account_action_refusal(current_rbac, access, membership)
    if refusal is not None:
        return current_rbac.refuse(Decision(False, refusal), 403)
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
    elif attempt(lambda: mfa.reset(current_rbac, access, membership)).ok:
        flash(f"{membership.display_name}'s two-factor authentication was reset.", "success")
    target = url_for(".team_member", membership_id=membership.id)
    return redirect(safe_next(request.form.get("next"), target))
