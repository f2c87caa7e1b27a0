"""The public password-reset pages: ask for a link by address, then set a new password.

A host adopts them with a link on its sign-in page to
``url_for("rbac_settings.forgot_password")``. Both pages are open to anyone
(the link is the capability), CSRF-protected Flask-WTF forms, and limited
per client IP (``RBAC_SIGN_IN_RATE_LIMIT``, :mod:`..security.limits`). The
service, its no-oracle rule and its single-use links are
:mod:`..team.password_reset`.

The token is in the reset page's URL, so that page loads and links to
nothing but the host's own origin (a host's ``Referrer-Policy`` of
``same-origin`` or stricter, as the demo's, then keeps it on the site).
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import DataRequired, EqualTo, Length

from .. import security, team
from ..config import setting
from ..proxies import current_rbac
from .blueprint import attempt, bp, render
from .invitation_pages import sign_in_url

#: The one answer to a request, whatever the address.
SENT = ("If an account uses that address, we sent it a link to choose a new password. "
        "The link works once, within {minutes} minutes.")


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired("Enter your email address."),
                                            Length(max=team.EMAIL_MAX)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[DataRequired("Choose a new password."),
                                                         Length(max=200)])
    confirm = PasswordField("Confirm the new password", validators=[
        DataRequired("Type the new password again."),
        EqualTo("password", "The two passwords do not match.")])


@bp.route("/password-reset", methods=["GET", "POST"])
def forgot_password() -> Any:
    """Ask for a reset link: the same answer for every well-formed address."""
    rbac = current_rbac
    form = ForgotPasswordForm()
    status, sent = 200, None
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: team.request_reset(rbac, form.email.data,
                                                         request.remote_addr), form)
            if outcome.ok:
                minutes = max(1, int(setting("RBAC_PASSWORD_RESET_MAX_AGE")) // 60)
                sent = SENT.format(minutes=minutes)
            status = outcome.status
        else:
            status = 400
    return render("account/forgot_password.html", status, form=form, sent=sent,
                  sign_in_url=sign_in_url())


@bp.route("/password-reset/<token>", methods=["GET", "POST"])
def reset_password(token: str) -> Any:
    """Set a new password from a mailed link; the account then signs in with it."""
    rbac = current_rbac
    try:
        user = team.user_for_reset_token(rbac, token)
    except team.InvalidResetLink as exc:
        return render("account/reset_error.html", exc.status, message=exc.message,
                      sign_in_url=sign_in_url())
    form = ResetPasswordForm()
    rules = security.password_rules_for_user(rbac, rbac.user_pk(user))
    form.password.description = security.describe_rules(rules)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: team.reset_password(rbac, user, form.password.data,
                                                          form.confirm.data), form)
            if outcome.ok:
                team.notify_reset(rbac, user)
                flash("Your password was changed and every session of your account ended. "
                      "Sign in with the new password.", "success")
                return redirect(sign_in_url() or url_for(".forgot_password"))
            status = outcome.status
        else:
            status = 400
    return render("account/reset_password.html", status, form=form, email=user.email,
                  password_min=rules.min_length)
