"""The team pages: the invitation link's public page, and the modules of the other team pages.

The team pages are thin views over :mod:`..team` on the settings blueprint,
one module per page group; importing this module registers them all:

- :mod:`.member_list_views`: the members list, its CSV export and bulk changes;
- :mod:`.member_views`: one member's status, department, team and reassignment;
- :mod:`.invite_views`: inviting, resending and revoking invitations;
- :mod:`.department_views`: the departments;
- :mod:`.profile_views`: the member's own profile;
- :mod:`.password_reset_views`: the public password-reset pages.
- :mod:`.picture_views`: the member's own picture, and the pictures colleagues see.

The service refuses with PermissionDenied (403) or ValidationError (400, or
its own status), and :func:`.blueprint.attempt` commits a change that
succeeds at once or rolls it back and shows the message. Every
state-changing form is a Flask-WTF form, so it carries a CSRF token.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import EqualTo, Length, Optional

from .. import team
from ..identity import set_workspace, sign_in, signed_in_user
from ..proxies import current_rbac
from . import (  # noqa: F401  (pages on the same blueprint)
    department_views,
    invitation_pages,
    invite_views,
    member_list_views,
    member_views,
    password_reset_views,
    picture_views,
    profile_views,
)
from .blueprint import attempt, bp, render


class AcceptForm(FlaskForm):
    name = StringField("Your name", validators=[Optional(), Length(max=120)])
    password = PasswordField("Choose a password", validators=[Optional(), Length(max=200)])
    confirm = PasswordField("Confirm the password", validators=[
        EqualTo("password", "The two passwords do not match.")])


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str) -> Any:
    """Public page of an invitation link: show it, then accept (create the account or join)."""
    rbac = current_rbac
    try:
        inv = team.invitation_for_token(rbac, token)
    except team.InvalidInvitation as exc:
        return invitation_pages.error_page(rbac, token, exc)
    workspace = rbac.db.session.get(rbac.models.Workspace, inv.workspace_id)
    form = AcceptForm()
    status, page_errors = 200, []
    signed_in_as = signed_in_user()
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: team.accept(rbac, inv, user=signed_in_as,
                                                  name=form.name.data,
                                                  password=form.password.data),
                              form, errors=page_errors)
            if outcome.ok:
                membership = outcome.value
                joined = signed_in_as is not None and rbac.user_pk(signed_in_as) == membership.user_id
                if not joined and not sign_in(membership.user):  # the new account
                    flash(f"You joined {workspace.name}: sign in to continue.", "success")
                    return redirect("/")
                set_workspace(membership.workspace_id)
                flash(f"Welcome to {workspace.name}.", "success")
                return redirect("/")
            status = outcome.status
        else:
            status = 400
    return render("team/accept.html", status, form=form, invitation=inv, invited_workspace=workspace,
                  signed_in_as=signed_in_as, needs_password=team.needs_password(inv),
                  page_errors=page_errors, **invitation_pages.page_context(rbac, inv, form))
