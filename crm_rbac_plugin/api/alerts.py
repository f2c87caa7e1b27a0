"""API endpoints for anomaly alerts: list, acknowledge, resolve; read and change thresholds.

* ``GET /alerts?status=&severity=&rule=``: the workspace's alerts, newest first.
* ``POST /alerts/acknowledge`` and ``POST /alerts/resolve`` with ``{"alert_id": n}``:
  move one alert on (409 if it already moved past; 404 for an id of another workspace).
* ``GET`` and ``PATCH /alert-settings``: the thresholds, business hours and time
  zone; a bad or unknown value is a 400 naming its field and nothing is saved.

The same services as the Alerts page (:mod:`..alerts`): Owners and
``settings.manage`` holders read and handle alerts, only Owners change the
settings (and, enrolled, after a recent MFA check, as on the Security page).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from .. import alerts
from ..alerts import thresholds as alert_thresholds
from ..policy import Access
from ..proxies import current_rbac
from ..security import stepup
from .blueprint import (
    REASON_KEY,
    active_access,
    bp,
    check_keys,
    forbidden,
    id_of,
    integers,
    json_body,
    not_found,
)

F = TypeVar("F", bound=Callable[..., Any])

READ_REFUSAL = "Only Owners and Admins can see alerts."


def _refuse(access: Access, reason: str) -> NoReturn:
    """Refuse with a 403, audited as ``access.denied`` like every refused permission."""
    current_rbac.signal_denied(access, "manage", "settings", None, reason)
    raise forbidden(reason)


def _reader() -> Access:
    access = active_access()
    if not alerts.may_read(current_rbac, access):
        _refuse(access, READ_REFUSAL)
    return access


@bp.get("/alerts")
def list_alerts() -> ResponseReturnValue:
    """The workspace's alerts, newest first, filtered by status, severity and rule."""
    access = _reader()
    filters = alerts.parse_filters(request.args.get("status"), request.args.get("severity"),
                                   request.args.get("rule"))
    found = alerts.alerts_for(current_rbac, access, **filters)
    return jsonify({"alerts": [alerts.alert_json(a) for a in found]})


def _move(action: str) -> ResponseReturnValue:
    access = _reader()
    body = json_body()
    check_keys(body, frozenset({"alert_id"}))
    alert_id = id_of(body.get("alert_id"), "alert_id")
    rbac = current_rbac
    try:
        alert = alerts.set_status(rbac, access, alert_id, action)
    except alerts.AlertNotFound:
        raise not_found("alert") from None
    rbac.db.session.commit()
    return jsonify({"alert": alerts.alert_json(alert)})


@bp.post("/alerts/acknowledge")
def acknowledge_alert() -> ResponseReturnValue:
    """Mark an open alert acknowledged."""
    return _move("acknowledge")


@bp.post("/alerts/resolve")
def resolve_alert() -> ResponseReturnValue:
    """Mark an open or acknowledged alert resolved."""
    return _move("resolve")


def settings_json(values: alert_thresholds.Thresholds, workspace_id: int) -> dict[str, Any]:
    return {"settings": values.as_json(), "workspace_id": workspace_id}


@bp.get("/alert-settings")
def alert_settings() -> ResponseReturnValue:
    """The thresholds, business hours and time zone (Owners and Admins)."""
    access = _reader()
    return jsonify(settings_json(alerts.thresholds_for(current_rbac, access.workspace_id),
                                 access.workspace_id))


def owner_only(view: F) -> F:
    """Refuse (403) anyone but an active Owner before the step-up check runs."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        access = active_access()
        if not alert_thresholds.may_edit(access):
            _refuse(access, "Only an Owner can change the alert settings.")
        return current_app.ensure_sync(view)(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


@bp.patch("/alert-settings")
@owner_only
@stepup.require_recent_mfa
def update_alert_settings() -> ResponseReturnValue:
    """Change the keys sent (Owners only); answer the settings and ``{field: [old, new]}``.

    A ``reason`` is taken as by every other write (the audit trail reads it);
    :func:`..alerts.save` names any other unknown key.
    """
    access = active_access()
    body = json_body()
    check_keys(body, frozenset(body) - {REASON_KEY})  # the reason's type only
    values = {k: v for k, v in body.items() if k != REASON_KEY}
    integers(values, alert_thresholds.LIMITS)
    rbac = current_rbac
    changes = alerts.save(rbac, access, values)
    rbac.db.session.commit()
    return jsonify({**settings_json(alerts.thresholds_for(rbac, access.workspace_id),
                                    access.workspace_id), "changes": changes})

