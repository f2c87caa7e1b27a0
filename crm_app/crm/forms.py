"""Forms of the CRM records.

Forms never carry ``workspace_id``: the RBAC flush guard fills it (and the
owner, when left empty) from the current member. ``owner_id`` exists on every
form but the view removes it unless the member may reassign records
(``manage``), and ``client_id``'s choices are filled by the view from a
filtered query, so a member can only link records to clients they can see.
"""

from __future__ import annotations

from typing import Any

from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
)

from crm_rbac_plugin.inputs import numeric_problem

from ..models import DEAL_STAGES, LEAD_SOURCES, LEAD_STATUSES, REGIONS, TASK_STATUSES, Deal

#: Lenient on purpose: the demo uses reserved domains (``.test``) that strict
#: validators refuse. Flask-Admin's panels check emails with this same validator.
EMAIL = Regexp(r"^[^@\s]+@[^@\s]+$", message="Enter an email address such as ana@example.com.")


class StorableNumber:
    """Refuse a number its column cannot store exactly, before any other check.

    ``DecimalField`` accepts ``1000.004``, ``NaN`` and ``Infinity``; a
    ``Numeric(12, 2)`` column holds none of them as given (SQLite keeps the
    extra decimals that the ORM then rounds away on reading, so the list
    filter and record checks would compare different amounts). The
    plugin's flush check refuses them too; this puts the message at the field.
    """

    def __init__(self, column: Any, label: str) -> None:
        self.column_type = column.type
        self.label = label

    def __call__(self, form: FlaskForm, field: Any) -> None:
        problem = numeric_problem(field.data, self.column_type)
        if problem is not None:
            raise StopValidation(f"{self.label} {problem}.")


def optional_int(value: Any) -> int | None:
    """Coerce a select's value to an id, with "" meaning "none"."""
    if value is None or value == "" or value == "None":
        return None
    return int(value)


def _choices(values: tuple[str, ...], blank: str | None = None) -> list[SelectChoice]:
    out = [SelectChoice("", blank)] if blank is not None else []
    return out + [SelectChoice(v, v.replace("_", " ").title()) for v in values]


class RecordForm(FlaskForm):
    """Fields shared by every record form (the template shows the owner in its own section)."""

    owner_id = SelectField("Owner", coerce=optional_int)


def client_select() -> Any:
    """The "Client" select of deals, tasks and notes (choices come from the view).

    A function rather than a base class so the field sits after each form's
    own fields: WTForms orders fields by declaration.
    """
    return SelectField("Client", coerce=optional_int)


class LeadForm(RecordForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    company = StringField("Company", validators=[Optional(), Length(max=200)])
    email = StringField("Email", validators=[Optional(), Length(max=255), EMAIL])
    status = SelectField("Status", choices=_choices(LEAD_STATUSES), default="new")
    source = SelectField("Source", choices=_choices(LEAD_SOURCES, "—"), default="")


class DealForm(RecordForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    client_id = client_select()
    stage = SelectField("Stage", choices=_choices(DEAL_STAGES), default="new")
    amount = DecimalField("Amount", places=2, default=0,
                          validators=[InputRequired(message="Enter an amount (0 is fine)."),
                                      StorableNumber(Deal.amount, "The amount"),
                                      NumberRange(min=0, max=9_999_999_999)])
    close_date = DateField("Expected close", validators=[Optional()])


class ClientForm(RecordForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = StringField("Email", validators=[Optional(), Length(max=255), EMAIL])
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])
    region = SelectField("Region", choices=_choices(REGIONS, "—"), default="")


class TaskForm(RecordForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    client_id = client_select()
    status = SelectField("Status", choices=_choices(TASK_STATUSES), default="open")
    due_date = DateField("Due", validators=[Optional()])


class NoteForm(RecordForm):
    client_id = client_select()
    body = TextAreaField("Note", validators=[DataRequired(), Length(max=5000)])
