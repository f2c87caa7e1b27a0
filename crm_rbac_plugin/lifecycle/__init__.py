"""The workspace lifecycle: creating a workspace, transferring its ownership,
deleting it with a grace period, restoring it, and purging it.

- :func:`create_for_user` (:mod:`.creation`): any signed-in user creates a
  workspace and becomes its Owner.
- :func:`transfer_ownership` (:mod:`.ownership`): the Owner hands the workspace
  to an active member in one transaction; the member becomes Owner and the
  old Owner Admin, so the workspace always keeps an Owner.
- :func:`delete_workspace` and :func:`restore_workspace` (:mod:`.deletion`):
  an Owner deletes the workspace by typing its name; it is hidden from every
  member at once (the loader finds no membership in a deleted workspace), its
  sharing agreements end, and it stays restorable by its Owners for
  ``RBAC_WORKSPACE_GRACE_DAYS``.
- :func:`purge_due` (:mod:`.purge`): ``flask rbac workspaces purge`` deletes
  the workspaces whose grace period is over, the host's records included.
- :func:`export_zip` (:mod:`.export`): the full export offered before deletion.

Every change is a plain function that flushes and leaves the commit to the
caller (a page, the API, the CLI), and refuses bad input with a
:class:`~..errors.ValidationError` naming the field and a wrong actor with a
:class:`~..errors.PermissionDenied`, before anything is written.
"""

from __future__ import annotations

from .creation import create_for_user
from .deletion import (
    delete_workspace,
    owner_membership,
    restorable_workspaces,
    restore_workspace,
)
from .export import export_zip
from .ownership import transfer_candidates, transfer_ownership
from .purge import due_for_purge, purge_due, purge_workspace

__all__ = ["create_for_user", "delete_workspace", "due_for_purge", "export_zip",
           "owner_membership", "purge_due", "purge_workspace", "restorable_workspaces",
           "restore_workspace", "transfer_candidates", "transfer_ownership"]
