"""Flask-WTF forms of the settings pages.

The role form is built per registry (:func:`role_form_class`): one scope
select, one hidden condition input and one deny checkbox per resource and
action, and one mode select per restrictable field. Field names encode the
cell (``scope__deals__view``, ``field__deals__amount``) so the page keeps
working as a plain HTML form without JavaScript. A cell's condition is edited
by the builder rows of :mod:`.condition_form`; the hidden input carries the
clauses the builder cannot show, and the cell's condition errors.

Forms only check shapes (lengths, known choices); every rule about what a
role may grant is the service layer's (:mod:`..roles`), whose errors the
views put back on the matching field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..queries import restrictable_fields, scope_label
from ..registry import SCOPES, Registry, Resource
from ..roles.field_rules import field_labels
from .condition_fields import ConditionFields


def choices(pairs: Iterable[tuple[Any, str]]) -> list[SelectChoice]:
    """``(value, label)`` pairs as select choices."""
    return [SelectChoice(value, label) for value, label in pairs]


#: Resources without owners (administrative ones) have no narrower scope than "all";
#: "" means the role does not grant the cell.
FLAT_SCOPE_CHOICES = choices([("", "no access"), ("all", "granted")])
#: Field rule modes; "" (visible) means no rule.
FIELD_CHOICES = choices([("", "visible"), ("readonly", "read-only"), ("hidden", "hidden")])
#: datetime-local inputs, read as UTC.
DATETIME_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]

SEP = "__"


def optional_int(value: Any) -> int | None:
    """Coerce a select's value to an id, with "" meaning none."""
    if value is None or value == "" or value == "None":
        return None
    return int(value)


def optional_text(value: Any) -> str | None:
    """Coerce a select's value to text, with "" meaning none: for keys of any type
    (a host's user key may be an integer or a UUID string)."""
    if value is None or value == "" or value == "None":
        return None
    return str(value)


def cell_field(kind: str, resource: str, action: str) -> str:
    """Name of a matrix input: ``scope``, ``cond`` or ``deny`` of one cell."""
    return SEP.join((kind, resource, action))


def rule_field(resource: str, column: str) -> str:
    """Name of the mode select of one field rule."""
    return SEP.join(("field", resource, column))


def has_scopes(res: Resource) -> bool:
    """Whether own/team/department mean anything for the resource (it has owned records)."""
    return res.model is not None and res.owner_column is not None


def scope_choices(res: Resource, action: str = "view") -> list[SelectChoice]:
    """Choices of a cell's scope select, in words (:func:`..queries.scope_label`)."""
    if not has_scopes(res):
        return FLAT_SCOPE_CHOICES
    return choices([("", "no access"), *((s, scope_label(s, action)) for s in SCOPES)])


class RoleForm(FlaskForm):
    """Name, description and parent of a role; the matrix fields are added per registry."""

    name = StringField("Name", validators=[DataRequired(), Length(max=80)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    parent_id = SelectField("Inherits from", coerce=optional_int, choices=[],
                            description="The role also grants everything its parent grants.")
    # Ticked means "off", so a form that does not send the box leaves sign-in on.
    no_sign_in = BooleanField(
        "API tokens only",
        description="Members with this role may not sign in, as for an integration's "
                    "account; one holding another role that lets them sign in still may, "
                    "and Owner and Admin always may.")
    # Ticked means "off", so a form that does not send the box leaves API access on.
    no_api = BooleanField(
        "No API access",
        description="Members with this role may not use API tokens, only a browser; one "
                    "holding another role that allows the API still may, and Owners always may.")


def role_form_class(registry: Registry) -> type[RoleForm]:
    """Return the role form with a field per matrix cell and per restrictable field.

    Every label names the resource and the action ("Leads: export scope"):
    the matrix shows them as the controls' accessible names.
    """
    attrs: dict[str, Any] = {}
    for res in registry:
        name = res.label or res.name
        for action in res.actions:
            attrs[cell_field("scope", res.name, action)] = SelectField(
                f"{name}: {action} scope", choices=scope_choices(res, action), default="")
            if res.model is not None:
                attrs[cell_field("cond", res.name, action)] = StringField(
                    f"{name}: {action} condition", validators=[Optional(), Length(max=4000)])
            attrs[cell_field("deny", res.name, action)] = BooleanField(f"{name}: deny {action}")
        labels = field_labels(res)
        for column in restrictable_fields(res):
            attrs[rule_field(res.name, column)] = SelectField(
                labels.get(column, column), choices=FIELD_CHOICES, default="")
    return type("RoleMatrixForm", (RoleForm,), attrs)


class DeleteRoleForm(FlaskForm):
    move_to = SelectField("Move its members to", coerce=optional_int, choices=[])


class CompareForm(FlaskForm):
    """Read from the query string: no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    ids = SelectMultipleField("Roles", coerce=int, choices=[])
    filter = StringField("Permission contains", validators=[Optional(), Length(max=100)])


class GrantingForm(FlaskForm):
    class Meta:
        csrf = False

    permission = StringField("Permission", validators=[DataRequired(), Length(max=100)],
                             description="resource.action, e.g. deals.export")


class AssignRoleForm(ConditionFields, FlaskForm):
    role_id = SelectField("Role", coerce=optional_int, choices=[],
                          validators=[DataRequired(message="Choose a role.")])
    starts_at = DateTimeLocalField("From (UTC)", format=DATETIME_FORMATS,
                                   validators=[Optional()])
    expires_at = DateTimeLocalField("Until (UTC)", format=DATETIME_FORMATS,
                                    validators=[Optional()])


class InviteForm(FlaskForm):
    """An invitation: the address, the roles (checkboxes), a department and an end date.

    ``expires_at`` ends the role assignments the invitation gives; the link's
    own expiry is ``RBAC_INVITE_MAX_AGE``.
    """

    email = EmailField("Email", validators=[DataRequired(), Length(max=255)])
    roles = SelectMultipleField("Roles", coerce=int, choices=[],
                                validators=[DataRequired(message="Choose at least one role.")])
    department_id = SelectField("Department", coerce=optional_int, choices=[])
    expires_at = DateTimeLocalField(
        "Access ends (UTC, optional)", format=DATETIME_FORMATS, validators=[Optional()],
        description="The roles end then; leave empty for a permanent member.")


class ConflictForm(FlaskForm):
    role_a_id = SelectField("Role", coerce=int, choices=[])
    role_b_id = SelectField("cannot be held together with", coerce=int, choices=[])


class PlanForm(FlaskForm):
    plan = SelectField("Plan", choices=[])


class TokenForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=80)],
                       description="What the token is for, e.g. “Reporting script”.")
    expires_at = DateTimeLocalField("Expires (UTC, optional)", format=DATETIME_FORMATS,
                                    validators=[Optional()])
