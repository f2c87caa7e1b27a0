"""The approval gate: the one call a service makes before an operation that may need approval.

A workspace's approval policy (:mod:`.approvals`) names sensitive operations.
The services that perform them call :func:`require` once every other check
passed (so a request is recorded only for an operation the member may ask
for), with the acting member, the operation's name, the JSON payload that
replays it and, for exports and bulk deletes, the number of rows. When the
policy asks for approval, the gate records a pending request and raises
:class:`ApprovalPending`: the page shows "pending approval", the API answers
202, the CLI prints the request id, and nothing has changed.

The gate sits in the core layer so that every service can call it; the
approvals package, a layer above the services, installs the function that
reads the policy and records the request (:func:`install`, at ``init_app``).
An app without it installed needs no approval for anything.

A GET (or HEAD) changes nothing, and a link on another site can make a
member's browser send one: so a gate reached by a safe request records
nothing and raises :class:`ApprovalRequired` instead, which the approvals
package answers with a form that asks for the request with a POST (an
export over the threshold is a link).

When the last approval comes, the approvals package replays the operation
as the requester inside :func:`approved`, in this thread only (a context
variable): the gate lets that operation through, and that operation only.
Any other gate the replay reaches is asked again as at any time, because the
approvers approved one operation as it stood, not what it reaches now
(deleting a role moves its holders to a role that may have become
privileged since): when that gate needs approval, the replay is refused with
a conflict naming the operation, and the approvals package stores it as the
request's failure. That the replay runs once is the approvals package's rule
(a request leaves ``pending`` by one conditional UPDATE), not the gate's.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flask import current_app, has_app_context

from .context import SYSTEM, change_reason, current_override, current_reason
from .errors import PermissionDenied, RBACError, RuleConflict
from .identity import served_method
from .inputs import SAFE_METHODS
from .policy import Access

if TYPE_CHECKING:
    from .interface import RBACProtocol

__all__ = ["OPERATIONS", "ApprovalPending", "ApprovalRequired", "approved", "install", "require",
           "with_reason"]

#: The operations a policy can name, with their labels. Those in
#: :data:`COUNTED` take a row threshold ("more than N rows").
OPERATIONS: dict[str, str] = {
    "assign_privileged_role": "Assigning a privileged role",
    "sharing": "Creating or widening a sharing agreement",
    "export": "Exports over N rows in 24 hours",
    "bulk_delete": "Bulk deletes over N rows in 24 hours",
    "delete_role": "Deleting a role",
    "reassign": "Reassigning all of a member's records",
    "plan": "Changing the plan",
    "security_policy": "Changing the security policy",
    "approval_policy": "Changing the approval policy",
}
COUNTED: frozenset[str] = frozenset({"export", "bulk_delete"})

#: ``app.extensions`` key of the installed gate function.
EXTENSION_KEY = "rbac_approval_gate"

#: Whether the actor's workspace policy makes an operation wait: (rbac, actor, operation,
#: count) -> bool.
NeedsFunction = Callable[["RBACProtocol", Access, str, "int | None"], bool]
#: Record the request: (rbac, actor, operation, payload, count, summary, reason) -> None,
#: raising :class:`ApprovalPending`.
RecordFunction = Callable[["RBACProtocol", Access, str, dict[str, Any], "int | None", str, str],
                          None]


class ApprovalPending(RBACError):
    """The operation was recorded as a request awaiting approval; nothing changed.

    ``request`` is the approval request row, ``request_id`` its id.
    """

    def __init__(self, request: Any) -> None:
        self.request = request
        self.request_id = int(request.id)
        self.message = (f"Pending approval: request #{self.request_id} "
                        f"({request.summary}) waits for an approver.")
        super().__init__(self.message)


class ApprovalRequired(RBACError):
    """The operation needs approval, and a safe request (GET, HEAD) reached it: nothing
    was recorded.

    Carries what :func:`require` would have recorded (``operation``, ``payload``,
    ``count``, ``summary``) for the approvals package's answer, which offers to
    ask for it with a POST.
    """

    status = 409

    def __init__(self, operation: str, payload: dict[str, Any], count: int | None,
                 summary: str) -> None:
        self.operation, self.payload, self.count, self.summary = operation, payload, count, summary
        self.message = (f"{summary} needs approval. Ask for it, with your reason, and the "
                        "approvers are told.")
        super().__init__(self.message)


@dataclass(frozen=True)
class _Pass:
    operation: str
    request_id: int


_approved: contextvars.ContextVar[_Pass | None] = contextvars.ContextVar(
    "rbac_approved_operation", default=None)


def install(app: Any, needs: NeedsFunction, record: RecordFunction) -> None:
    """Make ``needs`` and ``record`` the app's gate (the approvals package does, at ``init_app``)."""
    app.extensions[EXTENSION_KEY] = (needs, record)


@contextmanager
def approved(operation: str, request_id: int) -> Iterator[None]:
    """Let the replay of approved request ``request_id`` (``operation``) through the gate."""
    token = _approved.set(_Pass(operation, request_id))
    try:
        yield
    finally:
        _approved.reset(token)


#: The reason a request records when the code inside asks for approval: the
#: same reason a permission change stores on its audit event (the CLI's
#: ``--reason``, a form's or a JSON body's ``reason``).
with_reason = change_reason


def require(rbac: RBACProtocol, actor: Access | None, operation: str, payload: dict[str, Any], *,
            count: int | None = None, summary: str = "",
            refusal: tuple[str, str] | None = None) -> None:
    """Return when ``operation`` may run now; raise :class:`ApprovalPending` when it must wait.

    The system context (trusted maintenance code, seeds), an app without the
    approvals package installed and the replay of an approved request of this
    very ``operation`` (:func:`approved`) pass. Inside the replay of another
    operation the policy is asked as always, and an operation that needs
    approval is refused (409 naming it): it needs its own request, and
    recording one would end the replay's transaction.
    ``refusal`` (message, field) is for a call whose request could not be
    replayed on its own (a role given inside an invitation): when approval is
    needed it is refused with that 409 instead of recorded. In a GET or HEAD
    request the app serves nothing is recorded: :class:`ApprovalRequired` is
    raised instead (code that pushed a request context to call a service
    records as outside a request).
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown approval operation {operation!r}")
    if actor is None or current_override() is SYSTEM or not has_app_context():
        return
    functions = current_app.extensions.get(EXTENSION_KEY)
    if functions is None:
        return
    replay = _approved.get()
    if replay is not None and replay.operation == operation:
        return
    needs, record = functions
    if not needs(rbac, actor, operation, count):
        return
    if replay is not None:
        raise RuleConflict(
            f"{OPERATIONS[operation]} ({operation}) needs its own approval, which request "
            f"#{replay.request_id} does not cover"
            + (f": {refusal[0]}" if refusal is not None else ""), field="operation")
    if refusal is not None:
        raise RuleConflict(refusal[0], field=refusal[1])
    if served_method() in SAFE_METHODS:
        raise ApprovalRequired(operation, payload, count, summary or OPERATIONS[operation])
    record(rbac, actor, operation, payload, count, summary or OPERATIONS[operation],
           current_reason() or "")


def require_export(rbac: RBACProtocol, access: Access, resource: str, payload: dict[str, Any], *,
                   count: int, summary: str, what: str) -> None:
    """Pass a file that takes ``resource``'s data out of the workspace: ``export`` on it
    (403 naming ``what`` without), then :func:`require` (operation ``export``).

    The permission comes first: a member who may not export gets a refusal,
    not an offer to ask for approval. ``payload["via"]`` names the producer
    that makes the file once approved.
    """
    decision = rbac.decide(access, "export", resource)
    if not decision:
        raise PermissionDenied(f"{what} needs {resource}.export: {decision.reason}",
                               resource=resource, action="export")
    require(rbac, access, "export", {**payload, "resource": resource}, count=count,
            summary=summary)
