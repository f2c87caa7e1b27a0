"""Flask-WTF forms of the team pages: members list, bulk changes, one member, departments, profile.

Forms check shapes only (lengths, known choices); every rule about who may
change whom is the service layer's (:mod:`..team`, :mod:`..roles`), whose
errors the views put back on the matching field.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
)
from wtforms.validators import DataRequired, Length, Optional

from ..models import MEMBER_STATUSES
from .forms import choices, optional_int, optional_text

__all__ = ["BulkForm", "DepartmentForm", "FilterForm", "MemberDepartmentForm", "PictureForm",
           "ProfileForm", "ReassignForm", "TeamForm"]


class FilterForm(FlaskForm):
    """Read from the query string: no CSRF token (it changes nothing)."""

    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=100)],
                    description="Name, email, role or department")
    status = SelectField("Status", choices=choices(
        [("", "any status"), *((s, s.title()) for s in MEMBER_STATUSES)]), default="")
    role = SelectField("Role", coerce=optional_int, choices=[])
    department = SelectField("Department", coerce=optional_int, choices=[])


class BulkForm(FlaskForm):
    """One change for the members ticked on the list (``members`` holds their ids).

    Ids are not checked against the choices: the view looks each one up in
    the workspace, so an id of another workspace is a 404 as on every page.
    """

    members = SelectMultipleField("Members", coerce=int, choices=[], validate_choice=False,
                                  validators=[DataRequired(message="Select at least one member.")])
    action = SelectField("Change", choices=choices([
        ("add_role", "Add a role"), ("remove_role", "Remove a role"),
        ("department", "Move to a department"), ("deactivate", "Deactivate"),
        ("reactivate", "Reactivate")]))
    role_id = SelectField("Role", coerce=optional_int, choices=[], validate_choice=False)
    department_id = SelectField("Department", coerce=optional_int, choices=[],
                                validate_choice=False)


class DepartmentForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])


class MemberDepartmentForm(FlaskForm):
    department_id = SelectField("Department", coerce=optional_int, choices=[])
    visibility = SelectField("Visibility", choices=choices([
        ("", "As the roles grant"), ("all", "All records"),
        ("department", "Department's records"), ("own", "Own records only")]), default="")


class TeamForm(FlaskForm):
    member_id = SelectField("Assign a member", coerce=optional_int, choices=[],
                            validators=[DataRequired(message="Choose a member.")])


class ReassignForm(FlaskForm):
    to_user_id = SelectField("New owner", coerce=optional_text, choices=[],
                             validators=[DataRequired(message="Choose the new owner.")])
    resources = SelectMultipleField("Records", choices=[],
                                    description="None chosen: every kind of record.")


class ProfileForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    notify_email = BooleanField("Email me notifications")
    current_password = PasswordField("Current password", validators=[Optional()])
    new_password = PasswordField("New password", validators=[Optional(), Length(max=200)])
    confirm_new_password = PasswordField("Type the new password again",
                                         validators=[Optional(), Length(max=200)])
    #: Ticked by default: a password is usually changed because it may be known.
    sign_out_others = BooleanField("Sign out my other sessions", default=True)


class PictureForm(FlaskForm):
    """One file; what it must be is the service's to check (:func:`..team.set_picture`)."""

    picture = FileField("New picture")
