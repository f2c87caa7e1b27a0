"""The member's own profile: name, password and notifications (never roles or status).

Any signed-in member of the workspace reaches it, whatever their rights;
``/settings/`` sends a member without administration rights here.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for

from .. import team
from ..decorators import login_required
from ..identity import sign_in, signed_in_user
from ..policy import Decision
from ..proxies import current_rbac
from .blueprint import attempt, bp, render
from .member_forms import ProfileForm


def _sign_in_again(user: Any) -> None:
    """Renew this browser's session after a password change.

    A host may end every session when a password changes (the demo rotates
    the alternative id its ``get_id()`` returns); signing in again stores the
    new id, so only the *other* sessions end, and keeps this browser's
    remember-me cookie if it had one.
    """
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    sign_in(user, remember=remember in request.cookies)


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    """Edit one's own name, password and notifications (not one's roles or status)."""
    rbac = current_rbac
    access = rbac.current_access()
    if access is None or not access.active:
        return rbac.refuse(Decision(False, "You are not an active member of this workspace."))
    membership = rbac.db.session.get(rbac.models.Membership, access.membership_id)
    user = membership.user
    form = ProfileForm(data={"name": getattr(user, "name", ""),
                             "notify_email": membership.notify_email})
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: team.update_profile(
                rbac, membership, name=form.name.data,
                notify_email=bool(form.notify_email.data),
                current_password=form.current_password.data,
                new_password=form.new_password.data), form, fallback=form.name)
            if outcome.ok:
                if form.new_password.data and rbac.user_pk(signed_in_user()) == membership.user_id:
                    _sign_in_again(user)
                flash("Your profile was saved.", "success")
                return redirect(url_for(".profile"))
            status = outcome.status
        else:
            status = 400
    return render("team/profile.html", status, form=form, membership=membership)
