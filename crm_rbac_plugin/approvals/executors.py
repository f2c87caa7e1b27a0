"""Replaying an approved operation: one function per operation, called as the requester.

Each executor receives the requester's fresh :class:`~..policy.Access` (built
when the last approval comes, so a role taken away or a deactivation since
the request is in force) and the request's payload, loads the rows the
payload names *in the requester's workspace*, and calls the very service the
requester called. The service checks everything again; a refusal becomes
the request's failure reason. An executor returns None, or for an export an
:class:`ExportFile` for the requester to download.

Exports are the host's: its list export knows its columns and filters. The
host registers a producer with :func:`.setup.export_producer`; it is called
with the requester's access in force (``rbac.as_member``) and the payload
the host's view passed to the gate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app

from .. import bulk, queries, sharing
from ..errors import ValidationError
from ..policy import Access
from ..roles import assign_role, delete_role, grants_fingerprint
from ..team import reassign
from . import changes

if TYPE_CHECKING:
    from ..interface import RBACProtocol


@dataclass(frozen=True)
class ExportFile:
    """An export produced for an approved request: its file name and bytes."""

    filename: str
    content: bytes


#: An executor: (rbac, requester's access, payload) -> None or an ExportFile.
Executor = Callable[["RBACProtocol", Access, Mapping[str, Any]], "ExportFile | None"]
#: A host's export producer: (payload) -> ExportFile, run as the requester.
Producer = Callable[[Mapping[str, Any]], ExportFile]
#: ``app.extensions`` key of the host's export producers, by the payload's ``via``
#: (see :func:`.setup.export_producer`).
PRODUCERS_KEY = "rbac_approval_exports"


def replays_export(via: Any) -> bool:
    """Whether the app can produce an approved export of path ``via`` (a producer is registered)."""
    return str(via) in current_app.extensions.get(PRODUCERS_KEY, {})


def _gone(what: str) -> ValidationError:
    return ValidationError(f"{what} no longer exists in this workspace")


def _membership(rbac: RBACProtocol, access: Access, ident: Any) -> Any:
    found = queries.membership_in(rbac, access.workspace_id, ident)
    if found is None:
        raise _gone(f"member #{ident}")
    return found


def _role(rbac: RBACProtocol, access: Access, ident: Any) -> Any:
    found = queries.role_in(rbac, access.workspace_id, ident)
    if found is None:
        raise _gone(f"role #{ident}")
    return found


def _instant(value: Any) -> Any:
    return queries.parse_utc(value, "payload") if isinstance(value, str) else value


def run_assign(rbac: RBACProtocol, access: Access, payload: Mapping[str, Any]) -> None:
    """Give the role as it stood when asked: a role whose grants, field rules or condition
    changed since (:func:`..roles.grants_fingerprint`) is a stale request (409)."""
    role = _role(rbac, access, payload["role_id"])
    if payload.get("role_grants") != grants_fingerprint(role):
        raise changes.StaleRequest(["role_id"], f"{role.name} grants other permissions or "
                                   "field rules than when the request was made, and the "
                                   "approvers approved the role as it stood then")
    assign_role(rbac, access, _membership(rbac, access, payload["membership_id"]), role,
                starts_at=_instant(payload.get("starts_at")),
                expires_at=_instant(payload.get("expires_at")),
                condition=payload.get("condition"))


def run_delete_role(rbac: RBACProtocol, access: Access, payload: Mapping[str, Any]) -> None:
    move_to = payload.get("move_to_id")
    delete_role(rbac, access, _role(rbac, access, payload["role_id"]),
                move_to=_role(rbac, access, move_to) if move_to is not None else None)


def _settings(operation: str) -> Executor:
    """The executor of a settings change: its fields, if each still holds its "before" value."""
    def run(rbac: RBACProtocol, access: Access, payload: Mapping[str, Any]) -> None:
        changes.replay(rbac, access, operation, payload)
    return run


def run_reassign(rbac: RBACProtocol, access: Access, payload: Mapping[str, Any]) -> None:
    reassign(rbac, access, payload["from_user_id"], payload["to_user_id"],
             payload.get("resources"), payload.get("ids"))


def run_sharing(rbac: RBACProtocol, access: Access, payload: Mapping[str, Any]) -> None:
    if not payload.get("create"):
        changes.replay(rbac, access, "sharing", payload)
        return
    # The id was the requester's to name, checked when they asked (sharing.find_workspace).
    target = rbac.db.session.get(rbac.models.Workspace, payload["workspace"])
    if target is None or target.deleted_at is not None:
        raise ValidationError("the other workspace no longer exists", field="workspace")
    sharing.create_agreement(rbac, access, workspace=target,
                             permissions=payload["permissions"], notes=payload.get("notes", ""),
                             expires_at=_instant(payload.get("expires_at")))


def run_bulk_delete(rbac: RBACProtocol, access: Access, payload: Mapping[str, Any]) -> None:
    records = bulk.select(rbac, payload["resource"], payload["ids"], "delete")
    for record in records:
        rbac.db.session.delete(record)
    rbac.db.session.flush()


BUILT_IN: dict[str, Executor] = {
    "assign_privileged_role": run_assign, "delete_role": run_delete_role,
    "plan": _settings("plan"), "security_policy": _settings("security_policy"),
    "approval_policy": _settings("approval_policy"),
    "reassign": run_reassign, "sharing": run_sharing, "bulk_delete": run_bulk_delete,
}
