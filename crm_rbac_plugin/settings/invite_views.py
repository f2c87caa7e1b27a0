"""Inviting members: the invitation form, and resending or revoking an open invitation.

The invitee's roles are checkboxes; every role is offered and the service
(:func:`..team.invite`) refuses one the inviter may not give, and says why,
rather than the form hiding it. The department and the end date of the
access are optional. Sending, resending and revoking an invitation are
step-up actions, like every role assignment
(:func:`..security.stepup.require_recent_mfa`): a resend is a new link that
gives the roles again for another ``RBAC_INVITE_MAX_AGE``.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from .. import queries, team
from ..decorators import require_permission
from ..pages import ConfirmForm, acting_access, not_found
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from .blueprint import attempt, bp, render
from .forms import InviteForm, choices
from .member_list_views import render_members


def _invite_form() -> InviteForm:
    rbac, ws = current_rbac, acting_access().workspace_id
    form = InviteForm()
    # Plain pairs: ui.checkboxes renders (value, label) choices.
    form.roles.choices = [(r.id, r.name) for r in queries.workspace_roles(rbac, ws)]
    form.department_id.choices = choices([("", "— none —")] + [
        (d.id, d.name) for d in team.workspace_departments(rbac, ws)])
    return form


@bp.route("/members/invite", methods=["GET", "POST"])
@require_permission("members", "create")
@require_recent_mfa
def invite() -> Any:
    """Invite someone by email with one or more roles, a department and an optional end.

    Sending asks for a recent MFA check (step-up) as giving a role on a
    member's page does: an invitation gives its roles, an Owner or Admin
    role included, to whoever holds the address.
    """
    rbac, access = current_rbac, acting_access()
    form = _invite_form()
    hints = {r.id: r.description for r in queries.workspace_roles(rbac, access.workspace_id)
             if r.description}
    status, page_errors = 200, []
    if request.method == "POST":
        if form.validate_on_submit():
            chosen = [queries.role_in(rbac, access.workspace_id, rid) for rid in form.roles.data]
            dept = next((d for d in team.workspace_departments(rbac, access.workspace_id)
                         if d.id == form.department_id.data), None)
            outcome = attempt(lambda: team.invite(rbac, access, form.email.data or "",
                                                  [r for r in chosen if r], department=dept,
                                                  expires_at=form.expires_at.data),
                              form, errors=page_errors)
            if outcome.ok:
                flash(f"Invitation sent to {form.email.data}.", "success")
                return redirect(url_for(".members"))
            status = outcome.status
        else:
            status = 400
    return render("team/invite.html", status, form=form, page_errors=page_errors, hints=hints)


def _invitation_action(invitation_id: int, action: Any, done: str) -> Any:
    """Run ``action(rbac, actor, invitation)`` for a confirmed POST; flash ``done``.

    A refusal answers the members page with its status (403, 400) and reason.
    """
    rbac = current_rbac
    inv = team.invitation_in(rbac, acting_access().workspace_id, invitation_id)
    if inv is None:
        return not_found()
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".members"))
    page_errors: list[str] = []
    outcome = attempt(lambda: action(rbac, acting_access(), inv), errors=page_errors)
    if not outcome.ok:
        return render_members(outcome.status, page_errors)
    flash(done.format(email=inv.email), "success")
    return redirect(url_for(".members"))


@bp.post("/invitations/<int:invitation_id>/resend")
@require_permission("members", "create")
@require_recent_mfa
def resend_invitation(invitation_id: int) -> Any:
    return _invitation_action(invitation_id, team.resend,
                              "A new invitation link was sent to {email}.")


@bp.post("/invitations/<int:invitation_id>/revoke")
@require_permission("members", "create")
@require_recent_mfa
def revoke_invitation(invitation_id: int) -> Any:
    return _invitation_action(invitation_id, team.revoke,
                              "The invitation of {email} was revoked.")
