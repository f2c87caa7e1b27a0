"""Mail: the invitation and password-reset emails, sent through Flask-Mail.

Every mail is rendered from ``rbac/mail/<template>.txt`` and ``.html`` (a
host overrides them as any template). ``RBAC_MAIL_CONSOLE`` also prints it
to the console or appends it to a file, so a checkout without an SMTP server
still shows invitation links. Links are absolute, on the site's address
(:func:`..urls.external_base`: ``RBAC_BASE_URL``, ``SERVER_NAME`` or a host
``TRUSTED_HOSTS`` vetted), never on the ``Host`` header a request sent.

Flask-Mail is optional (the ``crm-rbac[mail]`` extra): mail goes out only
through a ``Mail`` extension the host registered. Without one, the mail is
printed (the default) and a warning is logged when it would otherwise go
nowhere or when ``MAIL_SERVER`` says the host expected it to be sent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import click
import sqlalchemy as sa
from flask import current_app, has_request_context, render_template, url_for

from ..config import setting
from ..urls import absolute_url, external_base

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["notify_mfa_turned_off", "send_invitation", "send_mail", "send_mfa_turned_off",
           "send_password_changed", "send_password_reset"]

log = logging.getLogger(__name__)


def _external_url(endpoint: str, **values: Any) -> str:
    """The absolute URL of ``endpoint`` on the site's address (:func:`..urls.external_base`),
    never on the request's ``Host`` header."""
    if has_request_context():
        return absolute_url(url_for(endpoint, **values))
    with current_app.test_request_context(base_url=external_base()):
        return url_for(endpoint, _external=True, **values)


def _configured_url(endpoint: str, **values: Any) -> str:
    """An absolute URL from ``RBAC_BASE_URL``; unset, on the site's address as every mail
    link is (:func:`_external_url`), never on an unchecked request ``Host``."""
    base = setting("RBAC_BASE_URL")
    if not base:
        return _external_url(endpoint, **values)
    parts = urlsplit(base)
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/",
                                       url_scheme=parts.scheme or "https")
    return adapter.build(endpoint, values, force_external=True)


def send_mail(subject: str, recipient: str, template: str, **context: Any) -> Any:
    """Send a mail through Flask-Mail (``rbac/mail/<template>.txt``/``.html``).

    Also printed to the console, or appended to the file ``RBAC_MAIL_CONSOLE``
    names (default: the console when no ``MAIL_SERVER`` is configured or no
    Flask-Mail extension is registered). Returns the Flask-Mail ``Message``
    sent, or ``None`` when the app has no Flask-Mail extension.
    """
    body = render_template(f"rbac/mail/{template}.txt", **context)
    html = render_template(f"rbac/mail/{template}.html", **context)
    mail = current_app.extensions.get("mail")
    message = None
    if mail is not None:
        # Flask-Mail is an optional extra; an app that registered it has it installed.
        from flask_mail import Message  # noqa: PLC0415

        message = Message(subject=subject, recipients=[recipient], body=body, html=html)
        mail.send(message)
    console = setting("RBAC_MAIL_CONSOLE")
    if console is None:
        console = "MAIL_SERVER" not in current_app.config or mail is None
    if mail is None and (not console or "MAIL_SERVER" in current_app.config):
        current_app.logger.warning(
            "crm_rbac_plugin: the mail to %s was %s: no Flask-Mail extension is registered "
            "(install crm-rbac[mail] and register flask_mail.Mail on the app).",
            recipient, "printed, not sent" if console else "not sent")
    text = f"--- mail to {recipient}: {subject}\n{body}\n---\n"
    if isinstance(console, str):
        with open(console, "a", encoding="utf-8") as out:
            out.write(text)
    elif console:
        click.echo(text, err=True, nl=False)
    return message


def send_invitation(rbac: RBACProtocol, invitation: Any, token: str) -> Any:
    ws = rbac.db.session.get(rbac.models.Workspace, invitation.workspace_id)
    inviter = invitation.invited_by.user if invitation.invited_by is not None else None
    Role = rbac.models.Role
    role_names = list(rbac.db.session.scalars(
        sa.select(Role.name).where(Role.id.in_(invitation.role_ids or [-1])).order_by(Role.id)))
    link = _external_url("rbac_settings.accept_invitation", token=token)
    return send_mail(f"You are invited to {ws.name}", invitation.email, "invitation",
                     workspace=ws, inviter=inviter, roles=role_names, link=link,
                     expires_at=invitation.expires_at)


def send_password_reset(rbac: RBACProtocol, user: Any, token: str, max_age: int) -> Any:
    """Mail ``user`` the link that sets a new password (valid ``max_age`` seconds, once)."""
    link = _configured_url("rbac_settings.reset_password", token=token)
    return send_mail("Reset your password", user.email, "password_reset", user=user,
                     link=link, minutes=max(1, max_age // 60))


def send_password_changed(rbac: RBACProtocol, user: Any) -> Any:
    """Tell ``user`` their password was just changed by a reset link, and what to do
    if it was not them."""
    link = _configured_url("rbac_settings.forgot_password")
    return send_mail("Your password was changed", user.email, "password_changed", user=user,
                     link=link)


def send_mfa_turned_off(rbac: RBACProtocol, user: Any) -> Any:
    """Tell ``user`` their two-factor authentication was just turned off, and what to do
    if it was not them."""
    link = _configured_url("rbac_settings.forgot_password")
    return send_mail("Two-factor authentication was turned off", user.email, "mfa_turned_off",
                     user=user, link=link)


def notify_mfa_turned_off(rbac: RBACProtocol, user: Any) -> None:
    """:func:`send_mfa_turned_off` once the change is committed; a mail server that fails
    is logged, never a failed page: two-factor authentication is already off."""
    try:
        send_mfa_turned_off(rbac, user)
    except Exception:
        log.exception("the two-factor notice to %s could not be sent",
                      getattr(user, "email", "?"))
