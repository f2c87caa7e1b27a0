"""The plugin's own tables, defined on the host's Flask-SQLAlchemy ``db``.

The models are created by :func:`define_models` when the extension is built,
because they must live in the host's metadata (one ``db.create_all()``, one
Alembic history) and point at the host's own user table. The host reaches
them as ``rbac.models.Role`` and so on.

:mod:`.base` holds what the model modules share, :mod:`.tenancy` the
workspaces, roles, memberships and sharing tables, :mod:`.trail` the audit
trail and invitations, :mod:`.security` the account protection (security
policies, MFA, sessions, sign-in throttling), :mod:`.notify` the
notification outbox and preferences, :mod:`.approvals` the approval
workflows, :mod:`.alerts` the anomaly alerts, :mod:`.certification` the access
reviews and certification runs, :mod:`.groups` the roles given to departments,
:mod:`.quotas` the record caps per role, :mod:`.files` the attachments,
:mod:`.pictures` the members' profile pictures.
"""

from __future__ import annotations

from typing import Any

from .alerts import ALERT_SEVERITIES, ALERT_STATUSES, define_alert_models
from .approvals import REQUEST_STATUSES, define_approval_models
from .base import (
    AGREEMENT_STATUSES,
    EFFECTS,
    MEMBER_STATUSES,
    Models,
    naive_utc,
    user_key_column,
    user_pk_of,
    utcnow,
)
from .certification import define_certification_models
from .files import define_file_models
from .groups import define_group_models
from .notify import MAIL_STATES, define_notify_models
from .pictures import define_picture_model
from .quotas import define_quota_model
from .security import MFA_POLICIES, define_security_models
from .tenancy import (
    define_agreement_model,
    define_assignment_model,
    define_membership_models,
    define_role_models,
    define_role_rule_models,
    define_sharing_permission_model,
    define_token_model,
    define_workspace_models,
)
from .trail import define_audit_model, define_team_models

__all__ = ["AGREEMENT_STATUSES", "ALERT_SEVERITIES", "ALERT_STATUSES", "EFFECTS", "MAIL_STATES",
           "MEMBER_STATUSES", "MFA_POLICIES", "Models", "REQUEST_STATUSES", "define_models",
           "naive_utc", "user_key_column", "user_pk_of", "utcnow"]


def define_models(db: Any, user_model: type) -> Models:
    """Create the plugin's mapped classes on ``db.Model``.

    ``user_model`` is the host's user class; memberships point at its table's
    primary key, whatever its name and type (an integer ``id``, a UUID string
    ``uid``): every column holding a user id takes the key's type (see
    :func:`user_key_column`). Relationships name their target by the class
    itself (or a lambda returning it), never by a string: a host with its own
    ``Role`` or ``Membership`` class on the same ``db.Model`` would make a
    string ambiguous ("Multiple classes found for path").
    """
    Workspace, Department = define_workspace_models(db)
    Role, Grant = define_role_models(db, Workspace)
    FieldRule, RoleConflict = define_role_rule_models(db, Role)
    # A class may name one defined further down: the lambda is called at mapper
    # configuration, once every class exists.
    Membership, ManagerAssignment = define_membership_models(
        db, user_model, Workspace, Department, member_role=lambda: MemberRole)
    MemberRole = define_assignment_model(db, Membership, Role)
    SharingAgreement = define_agreement_model(db, user_model, Workspace,
                                              permission=lambda: SharingPermission)
    SharingPermission = define_sharing_permission_model(db, SharingAgreement)
    return Models(Workspace, Department, Membership, ManagerAssignment, Role, Grant, MemberRole,
                  FieldRule, RoleConflict, define_token_model(db, Membership), SharingAgreement,
                  SharingPermission, define_audit_model(db, user_pk_of(user_model).type),
                  define_team_models(db, Membership),
                  *define_security_models(db, user_model, Workspace),
                  *define_notify_models(db),
                  *define_approval_models(db, Membership),
                  *define_alert_models(db, Membership),
                  *define_certification_models(db, Workspace),
                  define_quota_model(db, Role),
                  *define_file_models(db),
                  DepartmentRole=define_group_models(db, Workspace, Department, Role),
                  ProfilePicture=define_picture_model(db, user_model))
