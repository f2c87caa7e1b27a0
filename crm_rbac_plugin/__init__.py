"""crm_rbac_plugin: granular, per-workspace access control for Flask CRMs."""

from __future__ import annotations

from .context import SYSTEM, MemberHandle
from .decorators import get_or_404, record_required, require_permission
from .errors import (
                     ConfigurationError,
                     InvalidCondition,
                     NoAccessContext,
                     PermissionDenied,
                     RBACError,
                     UnknownResource,
)
from .extension import RBAC
from .mixins import OwnedMixin, WorkspaceMixin
from .policy import Access, Decision, Rule
from .registry import SCOPES, STANDARD_ACTIONS, Resource
from .signals import access_denied, member_changed, role_changed

__all__ = [
    "RBAC", "SYSTEM", "MemberHandle", "Access", "Decision", "Rule", "Resource", "SCOPES", "STANDARD_ACTIONS",
    "require_permission", "record_required", "get_or_404",
    "RBACError", "ConfigurationError", "InvalidCondition", "NoAccessContext",
    "PermissionDenied", "UnknownResource",
    "access_denied", "role_changed", "member_changed", "WorkspaceMixin", "OwnedMixin",
]
