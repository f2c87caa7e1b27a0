"""The inputs of a role condition (weekdays, a time window, networks), shared by the
assignment form, the role's condition page and the department's roles page.

The inputs are named as :mod:`..role_conditions` names the keys, so a refusal
(:class:`~..errors.ValidationError` with ``field="end"``...) lands under the
input at fault. Weekdays are not checked against the choices here: the
service refuses a bad one with a 400 naming ``weekdays``.
"""

from __future__ import annotations

from typing import Any

from wtforms import SelectMultipleField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from ..role_conditions import DAY_NAMES, Condition, stored


class ConditionFields:
    """Form fields of a condition, mixed into a ``FlaskForm``."""

    weekdays = SelectMultipleField("Weekdays", choices=[SelectChoice(d, d.capitalize()) for d in DAY_NAMES],
                                   validate_choice=False,
                                   description="None ticked: every day.")
    start = StringField("From (HH:MM)", description="In the workspace's time zone, set on the "
                                                   "Alerts page. Empty: the whole day.",
                        render_kw={"type": "time"})
    end = StringField("Until (HH:MM)", description="Before midnight; a window cannot cross it.",
                      render_kw={"type": "time"})
    networks = TextAreaField("Networks", description="One CIDR per line (203.0.113.0/24, "
                                                     "2001:db8::/32). Empty: any network.",
                             render_kw={"rows": 2})


def condition_data(form: Any) -> dict[str, Any]:
    """The condition a submitted form describes, for the service to validate."""
    return {"weekdays": list(form.weekdays.data or []), "start": form.start.data or "",
            "end": form.end.data or "", "networks": form.networks.data or ""}


def fill(form: Any, raw: Any) -> None:
    """Show a stored condition in the form's inputs."""
    cond: Condition = stored(raw)
    data = cond.to_json() or {}
    form.weekdays.data = data.get("weekdays", [])
    form.start.data = data.get("start", "")
    form.end.data = data.get("end", "")
    form.networks.data = "\n".join(data.get("networks", []))
