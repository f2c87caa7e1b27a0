"""Creating a workspace: any signed-in user may, and becomes its Owner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import workspaces
from ..errors import PermissionDenied, ValidationError
from ..loader import BYPASS
from ..security import signin

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: Longest workspace name (the column's length).
NAME_MAX = 120


def clean_name(name: Any) -> str:
    """Return ``name`` stripped, or refuse it (400 naming ``name``)."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("enter a name for the workspace", field="name")
    text = " ".join(name.split())
    if len(text) > NAME_MAX:
        raise ValidationError(f"the name is longer than {NAME_MAX} characters", field="name")
    return text


def free_slug(rbac: RBACProtocol, name: str) -> str:
    """A slug made from ``name`` that no workspace holds yet (``acme``, ``acme-2`` ...).

    A deleted workspace keeps its slug until it is purged, so that restoring
    it never collides.
    """
    W = rbac.models.Workspace
    base = workspaces.slugify(name)[:100]
    taken = set(rbac.db.session.scalars(
        sa.select(W.slug).where(sa.or_(W.slug == base, W.slug.like(f"{base}-%"))),
        execution_options=BYPASS))
    slug, n = base, 1
    while slug in taken:
        n += 1
        slug = f"{base}-{n}"
    return slug


def create_for_user(rbac: RBACProtocol, user: Any, name: Any) -> Any:
    """Create a workspace named ``name`` with its built-in roles; ``user`` is its Owner.

    Any signed-in user may, but an account deactivated everywhere (whose
    old session outlived its sign-in): a workspace is the user's own tenant,
    and its Owner role gives nothing anywhere else. The flush's audit listener
    records it (``workspace.created``). The caller commits.
    """
    if user is None:
        raise PermissionDenied("Sign in to create a workspace.")
    if signin.deactivated_everywhere(rbac, user):
        raise PermissionDenied("This account was deactivated in its workspaces: it cannot "
                               "create one.")
    if rbac.config("RBAC_SINGLE_TENANT"):
        raise ValidationError("this app runs in single-tenant mode (RBAC_SINGLE_TENANT): "
                              "it has one workspace", field="name")
    text = clean_name(name)
    return workspaces.create_workspace(rbac, text, owner=user, slug=free_slug(rbac, text))
