"""Read-only panels of the plugin's own tables, for Owners and Admins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .formatting import member_name
from .views import RBACModelView

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["AuditEventView", "ReadOnlyRBACModelView", "SharingAgreementView", "plugin_views"]


class ReadOnlyRBACModelView(RBACModelView):
    """A read-only panel (the plugin's own tables: changes go through the settings pages,
    where the service layer's rules apply)."""

    can_create = False  # type: ignore[assignment]
    can_edit = False  # type: ignore[assignment]
    can_delete = False  # type: ignore[assignment]
    can_export = False  # type: ignore[assignment]


class AuditEventView(ReadOnlyRBACModelView):
    """The audit trail as stored, for whoever manages settings (Owners, Admins).

    A narrower reader of the trail (``settings.view`` only) reads an event about
    a record they may not view without the record's name, id or path
    (:func:`..audit.as_read_by`): on the audit page, its CSV and the API. This
    panel shows rows as stored, so it opens only to those who read them so
    anyway (``settings.manage``).
    """

    access_action = "manage"


class SharingAgreementView(ReadOnlyRBACModelView):
    """Agreements the current workspace grants or receives (both sides see them);
    changes go through the sharing pages, where only the granting side widens."""

    def scope_query(self, query: Any) -> Any:
        access = self._access()
        if access is None:
            return query.filter(sa.false())
        SA = self.model
        return query.filter(sa.or_(SA.granting_workspace_id == access.workspace_id,
                                   SA.receiving_workspace_id == access.workspace_id))


def plugin_views(rbac: RBACProtocol, db: Any, category: str = "Access") -> list[RBACModelView]:
    """Read-only panels of roles (``roles.view``), members and departments
    (``members.view``), sharing agreements (``settings.view``) and audit events
    (``settings.manage``)."""
    m = rbac.models
    return [
        SharingAgreementView(m.SharingAgreement, db, rbac=rbac, resource="settings",
                             name="Sharing agreements", endpoint="rbac_admin_sharing",
                             category=category,
                             column_list=["granting_workspace", "receiving_workspace",
                                          "status", "expires_at", "notes", "created_at"],
                             column_default_sort=("id", True)),
        ReadOnlyRBACModelView(m.Role, db, rbac=rbac, resource="roles", name="Roles",
                              endpoint="rbac_admin_roles", category=category,
                              column_list=["name", "key", "builtin", "description"]),
        ReadOnlyRBACModelView(m.Membership, db, rbac=rbac, resource="members",
                              name="Members", endpoint="rbac_admin_members", category=category,
                              column_list=["display_name", "status", "department",
                                           "last_seen_at"],
                              column_details_list=["display_name", "status", "department",
                                                   "last_seen_at", "created_at"],
                              column_labels={"display_name": "Member"}),
        ReadOnlyRBACModelView(m.Department, db, rbac=rbac, resource="members",
                              name="Departments", endpoint="rbac_admin_departments",
                              category=category, column_list=["name"]),
        AuditEventView(rbac.models.AuditEvent, db, rbac=rbac, resource="settings",
                              name="Audit events", endpoint="rbac_admin_audit",
                              category=category,
                              column_list=["at", "action", "resource", "target",
                                           "actor_membership_id"],
                              column_labels={"actor_membership_id": "By", "at": "When"},
                              column_formatters={"actor_membership_id": member_name},
                              column_details_exclude_list=["id", "workspace_id",
                                                           "actor_user_id"],
                              column_default_sort=("at", True)),
    ]
