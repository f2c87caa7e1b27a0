"""The member's sessions on the profile page, and an admin's "sign out everywhere".

* The profile lists the member's live sessions (device, IP, created, last
  seen, "This browser") with "Sign out" each and "Sign out everywhere
  else" (:func:`sign_out_session`, :func:`sign_out_others`). A session id
  of another account is a 404: it is not the member's to know of.
* A member's page shows an admin holding ``members.manage`` the count of
  the member's live sessions and "Sign out everywhere"
  (:func:`member_sign_out_everywhere`, audited with reason ``admin``). An
  Owner's sessions are an Owner's to end: an Admin gets 403. The sessions
  are the account's, in every workspace: a pending or deactivated member's
  are neither counted nor ended here, nor those of an Owner of a workspace
  the actor does not own (403, :mod:`..security.standing`).

Every revocation is audited ``session.revoked`` by :mod:`..security.sessions`.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for
from flask_login import logout_user
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired

from ..decorators import login_required, require_permission
from ..identity import signed_in_user
from ..pages import ConfirmForm, acting_access, can, not_found
from ..policy import Decision
from ..proxies import current_rbac
from ..security import devices, sessions, standing
from .blueprint import bp, membership_or_404


@bp.context_processor
def _sessions_context() -> dict[str, Any]:
    """Lazy helpers for the session cards (nothing is read until a template calls them)."""
    def my_sessions() -> list[dict[str, Any]]:
        uid = current_rbac.user_pk(signed_in_user())
        return [{"row": s, "device": devices.describe(s.user_agent)}
                for s in sessions.list_sessions(current_rbac, uid)]

    def member_sessions(membership: Any) -> dict[str, Any]:
        if not can("members.manage") or not standing.is_active(membership):
            return {"visible": False, "count": 0, "can_sign_out": False}
        return {"visible": True, "count": sessions.live_count(current_rbac, membership.user_id),
                "can_sign_out": _may_sign_out(membership)}
    return {"my_sessions": my_sessions, "member_sessions": member_sessions}


def _is_owner(membership: Any) -> bool:
    return any(mr.role.is_owner for mr in membership.member_roles)


def _sign_out_refusal(membership: Any) -> str | None:
    """Why the acting member may not sign ``membership`` out everywhere (see the module),
    or None."""
    access = acting_access()
    if not can("members.manage"):
        return "You need the right to manage members to sign a member out."
    if _is_owner(membership) and not access.is_owner:
        return "Only an Owner can sign an Owner out."
    return standing.account_action_refusal(current_rbac, access, membership)


def _may_sign_out(membership: Any) -> bool:
    return _sign_out_refusal(membership) is None


def _to_profile() -> Any:
    return redirect(url_for(".profile") + "#sessions-card")


def _expired_form() -> Any:
    flash("The form expired; try again.", "error")
    return _to_profile()


class SessionForm(FlaskForm):
    """Which of the member's sessions to sign out (its id in the form, not the URL)."""

    session_id = IntegerField("Session", validators=[
        InputRequired(message="session_id: choose a session to sign out.")])


@bp.post("/account/sessions/sign-out")
@login_required
def sign_out_session() -> Any:
    """End one of the member's own sessions; ending this browser's signs it out here.

    A missing or malformed ``session_id`` is a 400 naming the field; an id
    that is not one of the member's live sessions is a 404.
    """
    rbac = current_rbac
    form = SessionForm()
    if not form.validate_on_submit():
        return rbac.refuse(Decision(False, "session_id: choose a session to sign out.",
                                    field="session_id"), 400)
    session_id = form.session_id.data
    uid = rbac.user_pk(signed_in_user())
    mine = {s.id: s for s in sessions.list_sessions(rbac, uid)}
    if session_id not in mine:
        return not_found()
    if mine[session_id].current:
        logout_user()  # revokes this session's row ("signed_out")
        flash("You have been signed out.", "info")
        return redirect(url_for(".profile"))
    sessions.revoke(rbac, session_id, by=None, reason="signed_out")
    rbac.db.session.commit()
    flash("That session was signed out.", "success")
    return _to_profile()


@bp.post("/account/sessions/sign-out-others")
@login_required
def sign_out_others() -> Any:
    """End every session of the member but this browser's."""
    if not ConfirmForm().validate_on_submit():
        return _expired_form()
    rbac = current_rbac
    count = sessions.revoke_all(rbac, rbac.user_pk(signed_in_user()), except_current=True,
                                by=None, reason="sign_out_everywhere")
    rbac.db.session.commit()
    flash(f"Signed out {count} other session{'' if count == 1 else 's'}.", "success")
    return _to_profile()


@bp.post("/members/<int:membership_id>/sessions/sign-out")
@require_permission("members", "manage")
def member_sign_out_everywhere(membership_id: int) -> Any:
    """An admin ends every session of a member (audited ``admin``); an Owner's only by an Owner."""
    rbac = current_rbac
    membership = membership_or_404(membership_id)
    refusal = _sign_out_refusal(membership)
    if refusal is not None:
        return rbac.refuse(Decision(False, refusal), 403)
    back = redirect(url_for(".team_member", membership_id=membership.id) + "#member-sessions")
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return back
    count = sessions.revoke_all(rbac, membership.user_id, except_current=False,
                                by=acting_access(), reason="admin")
    rbac.db.session.commit()
    flash(f"{membership.display_name} was signed out of {count} "
          f"session{'' if count == 1 else 's'}.", "success")
    return back
