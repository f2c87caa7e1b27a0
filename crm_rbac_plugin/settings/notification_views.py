"""The member's notifications page: the list, opening one, marking read, and the channels.

Under "Your account": every active member reaches it, and only their own
rows (:mod:`..notify.inbox` filters on the member's own membership, so
another member's id is a 404). "Open" marks the notification read and goes
to the page it links to, only ever a path on this site. The channels per
category are saved by :func:`..notify.preferences.save`, which refuses
switching an Owner's security alerts off (400 at that field).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectField

from .. import pages
from ..decorators import login_required
from ..notify import inbox, preferences
from ..notify.setup import bell
from ..pages import ConfirmForm, not_found
from ..policy import Decision
from ..proxies import current_rbac
from .blueprint import attempt, bp, render
from .forms import choices


class PreferencesForm(FlaskForm):
    """One channel per category (fields named by category, as the service names them)."""


for _key, _label in preferences.CATEGORIES.items():
    setattr(PreferencesForm, _key, SelectField(_label, choices=choices(preferences.CHANNELS.items())))


def add_tabs(app: Flask) -> None:
    """The page's tab, under "Your account"."""
    pages.add_tab(app, f"{bp.name}.notifications", "Notifications", order=202, group="personal",
                  badge=_unread_badge, badge_label="unread")


def _unread_badge() -> int | None:
    """The tab's badge: the bell's count (one query per page for both)."""
    state = bell(current_rbac)
    return state["count"] if state else None


def _my_membership() -> Any:
    """The signed-in member's own membership (their own, also while viewing as another)."""
    rbac = current_rbac
    access = inbox.own_access(rbac)
    if access is None:
        return rbac.refuse(Decision(False, "You are not an active member of this workspace."))
    return rbac.db.session.get(rbac.models.Membership, access.membership_id)


def _preferences_form(prefs: dict[str, dict[str, Any]], formdata: Any = None) -> PreferencesForm:
    form = PreferencesForm(formdata=formdata,
                           data={key: p["channel"] for key, p in prefs.items()})
    for key, p in prefs.items():
        if p["locked"]:
            field = getattr(form, key)
            field.choices = choices((k, v) for k, v in preferences.CHANNELS.items() if k != "off")
            field.description = "Security alerts always reach Owners: they cannot be switched off."
    return form


def _page(membership: Any, form: PreferencesForm, status: int = 200) -> Any:
    rbac = current_rbac
    unread_only = request.args.get("unread") == "1"
    rows = inbox.list_for(rbac, membership.id, unread_only=unread_only)
    return render("notifications.html", status, rows=rows, form=form, confirm=ConfirmForm(),
                  unread_only=unread_only, unread=inbox.unread_count(rbac, membership.id),
                  categories=preferences.CATEGORIES)


@bp.get("/account/notifications", endpoint="notifications")
@login_required
def notifications_page() -> Any:
    """The member's notifications, newest first, and how they receive each category."""
    membership = _my_membership()
    return _page(membership, _preferences_form(preferences.preferences_of(current_rbac, membership)))


@bp.post("/account/notifications/preferences")
@login_required
def save_notification_preferences() -> Any:
    """Save the member's channel per category."""
    rbac = current_rbac
    membership = _my_membership()
    form = _preferences_form(preferences.preferences_of(rbac, membership), request.form)
    if not form.validate_on_submit():
        return _page(membership, form, 400)
    values = {key: getattr(form, key).data for key in preferences.CATEGORIES}
    outcome = attempt(lambda: preferences.save(rbac, membership, values), form)
    if not outcome.ok:
        return _page(membership, form, outcome.status)
    flash("Your notification settings were saved.", "success")
    return redirect(url_for(".notifications") + "#notification-settings")


def _mark(notification_id: int) -> Any:
    """Mark the member's notification read; None when it is not theirs."""
    rbac = current_rbac
    membership = _my_membership()
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return False
    row = inbox.mark_read(rbac, membership.id, notification_id)
    if row is not None:
        rbac.db.session.commit()
    return row


@bp.post("/account/notifications/<int:notification_id>/read")
@login_required
def read_notification(notification_id: int) -> Any:
    """Mark one of one's notifications read."""
    row = _mark(notification_id)
    if row is None:
        return not_found()
    return redirect(url_for(".notifications"))


@bp.post("/account/notifications/<int:notification_id>/open")
@login_required
def open_notification(notification_id: int) -> Any:
    """Mark one of one's notifications read and go to the page it links to."""
    row = _mark(notification_id)
    if row is None:
        return not_found()
    link = inbox.safe_link(row.link) if row else None
    return redirect(link or url_for(".notifications"))


@bp.post("/account/notifications/read-all")
@login_required
def read_all_notifications() -> Any:
    """Mark every one of one's notifications read."""
    rbac = current_rbac
    membership = _my_membership()
    if ConfirmForm().validate_on_submit():
        count = inbox.mark_all_read(rbac, membership.id)
        rbac.db.session.commit()
        flash(f"{count} notification(s) marked read.", "success")
    else:
        flash("The form expired; try again.", "error")
    return redirect(url_for(".notifications"))
