"""Profile pictures: the member's own upload and removal, and the picture as colleagues see it.

* ``POST /settings/profile/picture`` sets the signed-in member's picture
  and ``POST /settings/profile/picture/delete`` removes it: their own
  only (no id in the URL), CSRF-checked, refused while viewing as someone
  (view-as is read-only). A refused upload shows the profile page again
  with the error under the file field and nothing written.
* ``GET /settings/members/<membership_id>/picture`` serves a member's
  picture to a signed-in member of the same workspace
  (:func:`..team.shown_picture`); anything else is one 404, whether the
  member does not exist, belongs to another workspace or has no picture.
  The bytes are the plugin's own encoding, sent by :func:`..team.send_picture`
  with their stored type, ``X-Content-Type-Options: nosniff``,
  ``Cache-Control: private, no-store`` and the digest as ETag. The URLs the
  pages use carry the picture's version (``?v=``), so a new picture is a
  new URL and shows at once.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, url_for

from .. import team
from ..decorators import login_required
from ..pages import ConfirmForm, not_found
from ..proxies import current_rbac
from .blueprint import attempt, bp
from .member_forms import PictureForm
from .profile_views import not_a_member, own_membership, profile_page


@bp.route("/profile/picture", methods=["POST"])
@login_required
def profile_picture() -> Any:
    """Set one's own picture from the uploaded file (see :func:`..team.set_picture`)."""
    membership = own_membership()
    if membership is None:
        return not_a_member()
    form = PictureForm()
    status = 400
    if form.validate_on_submit():
        upload = form.picture.data
        outcome = attempt(lambda: team.set_picture(
            current_rbac, membership, upload.stream if upload else None, field="picture"),
            form, fallback=form.picture)
        if outcome.ok:
            flash("Your picture was saved.", "success")
            return redirect(url_for(".profile", _anchor="profile-picture"))
        status = outcome.status
    return profile_page(membership, picture_form=form, status=status)


@bp.route("/profile/picture/delete", methods=["POST"])
@login_required
def remove_profile_picture() -> Any:
    """Remove one's own picture; the initials show instead."""
    membership = own_membership()
    if membership is None:
        return not_a_member()
    if not ConfirmForm().validate_on_submit():
        flash("This form has expired: reload the page and try again.", "error")
        return profile_page(membership, status=400)
    outcome = attempt(lambda: team.remove_picture(current_rbac, membership))
    if outcome.ok:
        flash("Your picture was removed." if outcome.value else "You had no picture.", "success")
    return redirect(url_for(".profile", _anchor="profile-picture"))


@bp.get("/members/<int:membership_id>/picture")
@login_required
def member_picture(membership_id: int) -> Any:
    """A member's picture, to a member of the same workspace; anything else is a 404."""
    rbac = current_rbac
    picture = team.shown_picture(rbac, rbac.current_access(), membership_id)
    if picture is None:
        return not_found()
    return team.send_picture(picture)
