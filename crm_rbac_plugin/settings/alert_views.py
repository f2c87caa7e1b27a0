"""The Alerts page, ``/settings/alerts``: the workspace's anomaly alerts and their thresholds.

Lists the alerts, newest first, filtered by status and severity (``?status=open
&severity=high``); each open or acknowledged one has Acknowledge and Resolve
buttons (``POST /settings/alerts/acknowledge`` and ``/resolve`` with
``alert_id``, CSRF-protected, confirmed). Below, the thresholds, business
hours and time zone, which an Owner saves (``POST /settings/alerts/settings``).

Access: Owners and members holding ``settings.manage`` (Admins) see the page
and handle alerts; anyone else gets an audited 403, and so does a thresholds
POST by anyone but an Owner. Every rule (who, valid values, the statuses, the
audit events) lives in :mod:`..alerts`, shared with the API and the CLI: an
out-of-range value is a 400 shown at its input, another workspace's alert a 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectMultipleField, StringField
from wtforms.widgets import NumberInput

from .. import alerts, pages
from ..alerts import thresholds as alert_thresholds
from ..decorators import EXEMPT_METHODS, login_required
from ..errors import ValidationError
from ..models import ALERT_SEVERITIES, ALERT_STATUSES
from ..pages import ConfirmForm
from ..policy import Decision
from ..proxies import current_rbac
from ..security import stepup
from .blueprint import attempt, bp, render

F = TypeVar("F", bound=Callable[..., Any])

LABELS = {
    "export_rows_per_hour": "Rows exported by one member in an hour",
    "refusals_per_10_minutes": "Refusals of one member in 10 minutes",
    "deletions_per_hour": "Records deleted by one member in an hour",
    "new_address_days": "New address: not used for (days)",
    "business_days": "Business days",
    "business_start_hour": "Business hours start (hour)",
    "business_end_hour": "Business hours end (hour)",
    "timezone": "Time zone",
}
HELP = {
    "business_days": "No day selected: the off-hours rule is off.",
    "business_end_hour": "Activity from the end hour to the next start raises one alert "
                         "per member per day.",
    "timezone": "An IANA name such as Europe/Paris, America/New_York or UTC.",
}
DAY_CHOICES = [SelectChoice(name, name.capitalize()) for name in alert_thresholds.DAY_NAMES]


def _number(name: str) -> StringField:
    low, high = alert_thresholds.LIMITS[name]
    return StringField(LABELS[name], description=HELP.get(name, ""),
                       widget=NumberInput(min=low, max=high), render_kw={"inputmode": "numeric"})


class ThresholdsForm(FlaskForm):
    """The thresholds as the page posts them; :mod:`..alerts.thresholds` checks the values."""

    export_rows_per_hour = _number("export_rows_per_hour")
    refusals_per_10_minutes = _number("refusals_per_10_minutes")
    deletions_per_hour = _number("deletions_per_hour")
    new_address_days = _number("new_address_days")
    business_days = SelectMultipleField(LABELS["business_days"], choices=DAY_CHOICES,
                                        description=HELP["business_days"], validate_choice=False)
    business_start_hour = _number("business_start_hour")
    business_end_hour = _number("business_end_hour")
    timezone = StringField(LABELS["timezone"], description=HELP["timezone"],
                           render_kw={"autocapitalize": "off", "spellcheck": "false"})

    def changes(self) -> dict[str, Any]:
        return {name: self[name].data if name != "business_days" else (self[name].data or [])
                for name in alert_thresholds.FIELDS}


def add_tabs(app: Flask) -> None:
    """The "Alerts" tab, before Security (120): Owners and Admins see it."""
    pages.add_tab(app, f"{bp.name}.alerts_page", "Alerts", order=115, permission="settings.manage")


def alerts_access(view: F) -> F:
    """Let Owners and ``settings.manage`` holders in (else an audited 403)."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        rbac = current_rbac
        access = rbac.current_access()
        if request.method not in EXEMPT_METHODS and not alerts.may_read(rbac, access):
            reason = "Only Owners and Admins can see alerts."
            rbac.signal_denied(access, "manage", "settings", None, reason)
            return rbac.refusal(Decision(False, reason), 403)
        return current_app.ensure_sync(view)(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


def _form_for(values: alert_thresholds.Thresholds) -> ThresholdsForm:
    data = {name: getattr(values, name) for name in alert_thresholds.FIELDS}
    data["business_days"] = [alert_thresholds.DAY_NAMES[d] for d in values.business_days]
    return ThresholdsForm(data=data)


def _page(form: ThresholdsForm | None = None, status: int = 200,
          errors: list[str] | None = None) -> Any:
    rbac = current_rbac
    access = rbac.current_access()
    errors = list(errors or [])
    try:
        filters = alerts.parse_filters(request.args.get("status"), request.args.get("severity"))
    except ValidationError as exc:  # a bad filter: every alert, the reason, and a 400
        filters = {}
        errors.append(f"{exc.field}: {exc.message}")
        status = 400
    if form is None:
        form = _form_for(alerts.thresholds_for(rbac, access.workspace_id))
    found = alerts.alerts_for(rbac, access, status=filters.get("status"),
                              severity=filters.get("severity"))
    return render("alerts.html", status, alerts=found, form=form, filters=filters,
                  statuses=ALERT_STATUSES, severities=ALERT_SEVERITIES, titles=alerts.TITLES,
                  can_edit=alert_thresholds.may_edit(access), labels=LABELS,
                  confirm=ConfirmForm(), errors=errors)


@bp.get("/alerts")
@login_required
@alerts_access
def alerts_page() -> Any:
    """The workspace's alerts (filtered) and its thresholds."""
    return _page()


def _move(action: str) -> Any:
    rbac = current_rbac
    access = rbac.current_access()
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".alerts_page"))
    errors: list[str] = []
    outcome = attempt(lambda: alerts.set_status(rbac, access, request.form.get("alert_id"),
                                                action), errors=errors)
    if outcome.status == 404:
        return pages.not_found()
    if not outcome.ok:
        return _page(status=outcome.status, errors=errors)
    alert = outcome.value
    flash(f"Alert #{alert.id} {alert.status}.", "success")
    return redirect(url_for(".alerts_page", **{k: v for k, v in request.args.items()
                                              if k in ("status", "severity")}))


@bp.post("/alerts/acknowledge")
@login_required
@alerts_access
def acknowledge_alert() -> Any:
    """Mark an open alert acknowledged (someone is looking into it)."""
    return _move("acknowledge")


@bp.post("/alerts/resolve")
@login_required
@alerts_access
def resolve_alert() -> Any:
    """Mark an open or acknowledged alert resolved."""
    return _move("resolve")


@bp.post("/alerts/settings")
@login_required
@alerts_access
@stepup.require_recent_mfa
def alert_settings() -> Any:
    """Save the thresholds, business hours and time zone (Owners only)."""
    rbac = current_rbac
    access = rbac.current_access()
    if not alert_thresholds.may_edit(access):
        reason = "Only an Owner can change the alert settings."
        rbac.signal_denied(access, "manage", "settings", None, reason)
        return rbac.refusal(Decision(False, reason), 403)
    form = ThresholdsForm()
    if not form.validate_on_submit():
        return _page(form, 400)
    saved = attempt(lambda: alert_thresholds.save(rbac, access, form.changes()), form)
    if not saved.ok:
        return _page(form, saved.status)
    if saved.value:
        names = ", ".join(LABELS[name].lower() for name in saved.value)
        flash(f"Alert settings saved: {names}.", "success")
    else:
        flash("Nothing changed: the settings already had these values.", "info")
    return redirect(url_for(".alerts_page") + "#alert-settings")
