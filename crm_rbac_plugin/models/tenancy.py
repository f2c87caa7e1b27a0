"""The tenancy and policy tables: workspaces, departments, roles and their rules,
memberships, assignments, API tokens and sharing agreements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from .base import NEVER_REUSED, ck, fk, ix, pk, uq, user_key_column, utcnow


def define_workspace_models(db: Any) -> tuple[Any, Any]:
    """Create ``Workspace`` (a tenant) and ``Department`` (a group of its members)."""

    class Workspace(db.Model):  # type: ignore[name-defined,misc]
        """A tenant: every protected record belongs to exactly one workspace."""

        __tablename__ = "rbac_workspace"
        __table_args__ = (pk("rbac_workspace", "id"), uq("rbac_workspace", "slug"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        name: Mapped[str] = mapped_column(sa.String(120))
        slug: Mapped[str] = mapped_column(sa.String(120))
        plan: Mapped[str] = mapped_column(sa.String(40), default="enterprise")
        # Bumped by the flush listener on every change that alters access, so
        # every process can tell its cached access is stale (see loader.py).
        policy_version: Mapped[int] = mapped_column(default=1)
        #: The IANA time zone its business hours are read in (alert rules).
        timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC", server_default="UTC")
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        #: Set when an Owner deleted the workspace (:mod:`..lifecycle`): it is
        #: then hidden from every member, and purged after ``purge_after``
        #: unless an Owner restores it first (both back to None).
        deleted_at: Mapped[dt.datetime | None] = mapped_column(default=None)
        purge_after: Mapped[dt.datetime | None] = mapped_column(default=None)

        def __repr__(self) -> str:
            return f"<Workspace {self.id} {self.slug!r}>"

        def __str__(self) -> str:
            return self.name

    class Department(db.Model):  # type: ignore[name-defined,misc]
        """A group of members for the ``department`` data scope."""

        __tablename__ = "rbac_department"
        __table_args__ = (pk("rbac_department", "id"), uq("rbac_department", "workspace_id", "name"),
                          ix("rbac_department", "workspace_id"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_department.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        name: Mapped[str] = mapped_column(sa.String(120))
        workspace = relationship(Workspace)

        def __str__(self) -> str:
            return self.name

    return Workspace, Department


def define_role_models(db: Any, Workspace: Any) -> tuple[Any, Any]:
    """Create ``Role`` and its matrix's cells, ``Grant``."""

    class Role(db.Model):  # type: ignore[name-defined,misc]
        """A named set of grants in one workspace, built in or custom."""

        __tablename__ = "rbac_role"
        __table_args__ = (pk("rbac_role", "id"), uq("rbac_role", "workspace_id", "name"),
                          ix("rbac_role", "workspace_id"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_role.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        key: Mapped[str | None] = mapped_column(sa.String(40))  # "owner", "admin"... for built-ins
        name: Mapped[str] = mapped_column(sa.String(80))
        description: Mapped[str] = mapped_column(sa.Text, default="")
        builtin: Mapped[bool] = mapped_column(default=False)
        is_owner: Mapped[bool] = mapped_column(default=False)
        parent_id: Mapped[int | None] = mapped_column(
            fk("rbac_role.parent_id", "rbac_role.id", ondelete="SET NULL"))
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        #: When the role is in force for every holder (see :mod:`..role_conditions`).
        access_condition: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
        #: Whether its members may sign in (a browser session) and use API tokens; either
        #: off, the role works through the other alone (see :mod:`..security.signin`).
        sign_in: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
        api_access: Mapped[bool] = mapped_column(default=True, server_default=sa.true())

        workspace = relationship(Workspace)
        parent = relationship(lambda: Role, remote_side=[id])
        grants = relationship(lambda: Grant, back_populates="role",
                              cascade="all, delete-orphan", order_by=lambda: Grant.id)

        def __str__(self) -> str:
            return self.name

    class Grant(db.Model):  # type: ignore[name-defined,misc]
        """One cell of a role's matrix: resource × action → scope (+ condition)."""

        __tablename__ = "rbac_grant"
        __table_args__ = (
            pk("rbac_grant", "id"),
            uq("rbac_grant", "role_id", "resource", "action", "effect"),
            ck("rbac_grant", "scope", "scope in ('own', 'team', 'department', 'all')"),
            ck("rbac_grant", "effect", "effect in ('allow', 'deny')"),
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        role_id: Mapped[int] = mapped_column(fk("rbac_grant.role_id", "rbac_role.id", ondelete="CASCADE"))
        resource: Mapped[str] = mapped_column(sa.String(60))
        action: Mapped[str] = mapped_column(sa.String(40))
        scope: Mapped[str] = mapped_column(sa.String(16), default="all")
        effect: Mapped[str] = mapped_column(sa.String(8), default="allow")
        condition: Mapped[list[dict[str, Any]] | None] = mapped_column(sa.JSON)

        role = relationship(Role, back_populates="grants")

        @property
        def permission(self) -> str:
            return f"{self.resource}.{self.action}"

    return Role, Grant


def define_role_rule_models(db: Any, Role: Any) -> tuple[Any, Any]:
    """Create ``FieldRule`` (a role's field-level security) and ``RoleConflict``
    (segregation of duties)."""

    class FieldRule(db.Model):  # type: ignore[name-defined,misc]
        """Field-level security: a field of a resource hidden or read-only for a role."""

        __tablename__ = "rbac_field_rule"
        __table_args__ = (
            pk("rbac_field_rule", "id"),
            uq("rbac_field_rule", "role_id", "resource", "field"),
            ck("rbac_field_rule", "mode", "mode in ('hidden', 'readonly')"),
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        role_id: Mapped[int] = mapped_column(
            fk("rbac_field_rule.role_id", "rbac_role.id", ondelete="CASCADE"))
        resource: Mapped[str] = mapped_column(sa.String(60))
        field: Mapped[str] = mapped_column(sa.String(60))
        mode: Mapped[str] = mapped_column(sa.String(10), default="hidden")

        role = relationship(Role, backref=backref("field_rules", cascade="all, delete-orphan"))

    class RoleConflict(db.Model):  # type: ignore[name-defined,misc]
        """Segregation of duties: two roles no member may hold together."""

        __tablename__ = "rbac_role_conflict"
        __table_args__ = (pk("rbac_role_conflict", "id"),
                          uq("rbac_role_conflict", "workspace_id", "role_a_id", "role_b_id"),
                          NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_role_conflict.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        role_a_id: Mapped[int] = mapped_column(
            fk("rbac_role_conflict.role_a_id", "rbac_role.id", ondelete="CASCADE"))
        role_b_id: Mapped[int] = mapped_column(
            fk("rbac_role_conflict.role_b_id", "rbac_role.id", ondelete="CASCADE"))
        role_a = relationship(Role, foreign_keys=[role_a_id])
        role_b = relationship(Role, foreign_keys=[role_b_id])

    return FieldRule, RoleConflict


def define_membership_models(db: Any, user_model: type, Workspace: Any,
                             Department: Any, *, member_role: Callable[[], Any]) -> tuple[Any, Any]:
    """Create ``Membership`` and ``ManagerAssignment``; ``member_role()`` is ``MemberRole``."""

    class Membership(db.Model):  # type: ignore[name-defined,misc]
        """A user in a workspace: their status, department and roles there."""

        __tablename__ = "rbac_membership"
        __table_args__ = (
            pk("rbac_membership", "id"), uq("rbac_membership", "workspace_id", "user_id"),
            ix("rbac_membership", "user_id", "workspace_id", key="user_ws"),
            ix("rbac_membership", "workspace_id", "department_id", key="ws_dept"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_membership.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        user_id: Mapped[Any] = user_key_column(user_model, "rbac_membership.user_id", ondelete="CASCADE")
        status: Mapped[str] = mapped_column(sa.String(16), default="active")
        department_id: Mapped[int | None] = mapped_column(
            fk("rbac_membership.department_id", "rbac_department.id", ondelete="SET NULL"))
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        last_seen_at: Mapped[dt.datetime | None] = mapped_column()
        # The member's own notification preference (profile page).
        notify_email: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
        # Per-member data visibility cap (seed: All / Department / Own); None
        # means the roles' scopes apply as granted. Owners always see all.
        visibility: Mapped[str | None] = mapped_column(sa.String(16))

        workspace = relationship(Workspace)
        department = relationship(Department)
        user = relationship(user_model)
        member_roles = relationship(member_role, back_populates="membership",
                                    cascade="all, delete-orphan")

        @property
        def display_name(self) -> str:
            """How the workspace names this member: the invited address until they join.

            A pending membership may point to an account another workspace
            knows by name; the inviter has typed only the address, so only the
            address is shown (pages, API, audit, messages) until acceptance.
            """
            if self.status == "pending":
                return str(getattr(self.user, "email", "") or f"user #{self.user_id}")
            return str(self.user)

        def __str__(self) -> str:
            return f"{self.display_name} in {self.workspace}"

    class ManagerAssignment(db.Model):  # type: ignore[name-defined,misc]
        """A manager's assigned member, whose records the ``team`` scope covers."""

        __tablename__ = "rbac_manager_assignment"
        __table_args__ = (pk("rbac_manager_assignment", "manager_id", "member_id"),
                          ix("rbac_manager_assignment", "member_id"))
        manager_id: Mapped[int] = mapped_column(fk(
            "rbac_manager_assignment.manager_id", "rbac_membership.id", ondelete="CASCADE"), primary_key=True)
        member_id: Mapped[int] = mapped_column(fk(
            "rbac_manager_assignment.member_id", "rbac_membership.id", ondelete="CASCADE"), primary_key=True)

    return Membership, ManagerAssignment


def define_assignment_model(db: Any, Membership: Any, Role: Any) -> Any:
    """Create ``MemberRole``, a role held by a member."""

    class MemberRole(db.Model):  # type: ignore[name-defined,misc]
        """A role held by a member, optionally only between two instants (UTC)."""

        __tablename__ = "rbac_member_role"
        __table_args__ = (pk("rbac_member_role", "id"),
                          ix("rbac_member_role", "membership_id", key="membership"),
                          ix("rbac_member_role", "role_id"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        membership_id: Mapped[int] = mapped_column(
            fk("rbac_member_role.membership_id", "rbac_membership.id", ondelete="CASCADE"))
        role_id: Mapped[int] = mapped_column(
            fk("rbac_member_role.role_id", "rbac_role.id", ondelete="CASCADE"))
        starts_at: Mapped[dt.datetime | None] = mapped_column()
        expires_at: Mapped[dt.datetime | None] = mapped_column()
        #: When this assignment is in force (see :mod:`..role_conditions`).
        access_condition: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)

        membership = relationship(Membership, back_populates="member_roles")
        role = relationship(Role)

        def active_at(self, when: dt.datetime) -> bool:
            return ((self.starts_at is None or self.starts_at <= when)
                    and (self.expires_at is None or when < self.expires_at))

    return MemberRole


def define_token_model(db: Any, Membership: Any) -> Any:
    """Create ``ApiToken``, a member's personal API token."""

    class ApiToken(db.Model):  # type: ignore[name-defined,misc]
        """A personal API token: only its SHA-256 is stored; never wider than its member."""

        __tablename__ = "rbac_api_token"
        __table_args__ = (pk("rbac_api_token", "id"), uq("rbac_api_token", "token_hash"),
                          ix("rbac_api_token", "membership_id"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        membership_id: Mapped[int] = mapped_column(
            fk("rbac_api_token.membership_id", "rbac_membership.id", ondelete="CASCADE"))
        name: Mapped[str] = mapped_column(sa.String(80))
        token_hash: Mapped[str] = mapped_column(sa.String(64))
        prefix: Mapped[str] = mapped_column(sa.String(12))
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        last_used_at: Mapped[dt.datetime | None] = mapped_column()
        expires_at: Mapped[dt.datetime | None] = mapped_column()
        revoked_at: Mapped[dt.datetime | None] = mapped_column()

        membership = relationship(Membership)

    return ApiToken


def define_agreement_model(db: Any, user_model: type, Workspace: Any, *,
                           permission: Callable[[], Any]) -> Any:
    """Create ``SharingAgreement``; ``permission`` returns the ``SharingPermission`` class."""

    class SharingAgreement(db.Model):  # type: ignore[name-defined,misc]
        """One workspace (granting) lets another (receiving) reach some of its records.

        What a receiving member may do with a shared record is the
        intersection of the agreement's permissions and their own role (see
        :mod:`.policy`): an agreement never gives anyone more than their role.
        """

        __tablename__ = "rbac_sharing_agreement"
        __table_args__ = (
            pk("rbac_sharing_agreement", "id"),
            ck("rbac_sharing_agreement", "two_workspaces",
               "granting_workspace_id <> receiving_workspace_id"),
            ix("rbac_sharing_agreement", "receiving_workspace_id", "status", key="receiving"),
            ix("rbac_sharing_agreement", "granting_workspace_id", "status", key="granting"),
            NEVER_REUSED,
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        granting_workspace_id: Mapped[int] = mapped_column(
            fk("rbac_sharing_agreement.granting_workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        receiving_workspace_id: Mapped[int] = mapped_column(
            fk("rbac_sharing_agreement.receiving_workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        status: Mapped[str] = mapped_column(sa.String(16), default="pending")
        notes: Mapped[str] = mapped_column(sa.Text, default="")
        expires_at: Mapped[dt.datetime | None] = mapped_column()
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        created_by_id: Mapped[Any] = user_key_column(
            user_model, "rbac_sharing_agreement.created_by_id", ondelete="SET NULL", nullable=True)
        #: When it was accepted, declined, left or revoked (the last of these).
        decided_at: Mapped[dt.datetime | None] = mapped_column()

        granting_workspace = relationship(Workspace, foreign_keys=[granting_workspace_id])
        receiving_workspace = relationship(Workspace, foreign_keys=[receiving_workspace_id])
        created_by = relationship(user_model)
        permissions = relationship(permission, back_populates="agreement",
                                   cascade="all, delete-orphan",
                                   order_by=lambda: permission().id)

        def in_force(self, now: dt.datetime) -> bool:
            return self.status == "active" and (self.expires_at is None or self.expires_at > now)

        def __str__(self) -> str:
            return f"agreement #{self.id}"

    return SharingAgreement


def define_sharing_permission_model(db: Any, SharingAgreement: Any) -> Any:
    """Create ``SharingPermission``, one action an agreement shares."""

    class SharingPermission(db.Model):  # type: ignore[name-defined,misc]
        """One shared action on one resource, with an optional record condition."""

        __tablename__ = "rbac_sharing_permission"
        __table_args__ = (pk("rbac_sharing_permission", "id"),
                          uq("rbac_sharing_permission", "agreement_id", "resource", "action"))
        id: Mapped[int] = mapped_column(primary_key=True)
        agreement_id: Mapped[int] = mapped_column(
            fk("rbac_sharing_permission.agreement_id", "rbac_sharing_agreement.id", ondelete="CASCADE"))
        resource: Mapped[str] = mapped_column(sa.String(64))
        action: Mapped[str] = mapped_column(sa.String(64))
        # Same format as Grant.condition: [{"field", "op", "value"}, ...].
        condition: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
        agreement = relationship(SharingAgreement, back_populates="permissions")

        @property
        def permission(self) -> str:
            return f"{self.resource}.{self.action}"

    return SharingPermission
