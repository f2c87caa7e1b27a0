"""The member's own profile: name, picture, password and notifications (never roles or status).

Any signed-in member of the workspace reaches it, whatever their rights;
``/settings/`` sends a member without administration rights here. The
picture's routes are :mod:`.picture_views`; they render this page again
(:func:`profile_page`) when an upload is refused.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, redirect, request, url_for

from .. import roles, security, team
from ..config import setting
from ..decorators import login_required
from ..identity import sign_in, signed_in_user
from ..pages import ConfirmForm
from ..policy import Decision
from ..proxies import current_rbac
from ..security import sessions
from . import session_views  # noqa: F401  (the sessions card's routes, same blueprint)
from .blueprint import attempt, bp, render
from .member_forms import PictureForm, ProfileForm


def _sign_in_again(user: Any) -> None:
    """Renew this browser's session after a password change.

    A host may end every session when a password changes (the demo rotates
    the alternative id its ``get_id()`` returns); signing in again stores the
    new id, so only the *other* sessions end, and keeps this browser's
    remember-me cookie if it had one.
    """
    remember = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    sign_in(user, remember=remember in request.cookies)


def _save(membership: Any, form: ProfileForm) -> None:
    """Save the profile; a new password with the box ticked ends the member's other sessions."""
    rbac = current_rbac
    team.update_profile(rbac, membership, name=form.name.data,
                        notify_email=bool(form.notify_email.data),
                        current_password=form.current_password.data,
                        new_password=form.new_password.data)
    if form.new_password.data and form.sign_out_others.data:
        sessions.revoke_all(rbac, membership.user_id, except_current=True, by=None,
                            reason="password_changed")


def _confirmed(form: ProfileForm) -> bool:
    """Whether the new password was typed the same twice.

    The page's form always sends the confirmation, so a typo in either box
    never becomes the account's password; a client that posts no
    confirmation field at all (a script) is not asked for one.
    """
    field = form.confirm_new_password
    if not form.new_password.data or field.name not in request.form:
        return True
    if field.data == form.new_password.data:
        return True
    field.errors = [*field.errors, "The two passwords do not match."]
    return False


def own_membership() -> Any | None:
    """The signed-in member's active membership of the current workspace, or None."""
    rbac = current_rbac
    access = rbac.current_access()
    if access is None or not access.active:
        return None
    return rbac.db.session.get(rbac.models.Membership, access.membership_id)


def not_a_member() -> Any:
    """The refusal of a profile route to someone with no active membership here."""
    return current_rbac.refuse(Decision(False, "You are not an active member of this workspace."))


def profile_page(membership: Any, *, form: ProfileForm | None = None,
                 picture_form: PictureForm | None = None, status: int = 200) -> Any:
    """Render the profile page; the forms given keep what was typed and their errors."""
    rbac = current_rbac
    if form is None:
        form = ProfileForm(data={"name": getattr(membership.user, "name", ""),
                                 "notify_email": membership.notify_email})
    form.new_password.description = security.describe_rules(
        security.password_rules_for_user(rbac, membership.user_id))
    picture_form = picture_form or PictureForm()
    megabytes = int(setting("RBAC_PROFILE_PICTURE_MAX_BYTES")) / (1024 * 1024)
    picture_form.picture.description = (
        f"PNG, JPEG, GIF or WebP, up to {megabytes:.3g} MB. It is cropped to a square, and "
        "nothing of the file but its pixels is kept (no location or camera details).")
    picture_url = team.picture_urls(rbac, rbac.current_access(), [membership]).get(membership.id)
    return render("team/profile.html", status, form=form, membership=membership,
                  picture_form=picture_form, picture_url=picture_url,
                  remove_picture_form=ConfirmForm(),
                  own_roles=roles.assignments_in_force(membership),
                  department_roles=roles.department_role_list(rbac, membership.department_id))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile() -> Any:
    """Edit one's own name, password and notifications (not one's roles or status).

    The new-password field states the rules in force (the strictest of the
    member's workspaces); "Sign out my other sessions" (ticked by default)
    ends every other session when the password changes.
    """
    membership = own_membership()
    if membership is None:
        return not_a_member()
    if request.method != "POST":
        return profile_page(membership)
    form = ProfileForm()
    status = 400
    if form.validate_on_submit() and _confirmed(form):
        outcome = attempt(lambda: _save(membership, form), form, fallback=form.name)
        if outcome.ok:
            if form.new_password.data and \
                    current_rbac.user_pk(signed_in_user()) == membership.user_id:
                _sign_in_again(membership.user)
            flash("Your profile was saved.", "success")
            return redirect(url_for(".profile"))
        status = outcome.status
    return profile_page(membership, form=form, status=status)
