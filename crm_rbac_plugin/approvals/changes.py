"""Requests that change stored settings keep only what they change, and apply it only if still current.

A request to change a policy, the plan or a sharing agreement's terms does
not keep the whole new state: :func:`narrow` (called when the request is
recorded) keeps, under ``payload["fields"]``, each field the request changes
with the value the requester saw and the value asked for::

    {"fields": {"expiry_hours": {"before": 72, "after": 24}}}

Fields are as fine as the setting allows: one per approval-policy key and
per operation it names (``operations.export``), one per security-policy
setting, and for an agreement ``notes``, ``expires_at`` and one per shared
action (``permissions.deals.view``, its condition; ``None`` when not shared).

The approvers approve that change as it stood. :func:`replay` checks that
every field still holds its "before" value: when one moved since (another
member changed it), the approvers never saw the change it would now make,
so the replay raises :class:`StaleRequest` (a 409 naming the fields) and
nothing is applied. A field that moved to exactly the value asked for is no
conflict: nothing is undone by keeping it. Otherwise the replay passes the
fields still to change to the service; fields the request did not change
are never written, so a change made to them meanwhile stays.

A request recorded without "before" values (a whole-state payload) cannot
be checked against changes made since, so its replay fails the same way:
the requester asks again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import queries, sharing
from ..audit.events import jsonable
from ..errors import RuleConflict, ValidationError
from ..policy import Access
from ..roles import set_plan
from ..security import editing as security_editing
from ..security.mfa import is_enrolled
from ..security.policy import FIELDS as SECURITY_FIELDS
from ..security.policy import policy_for
from . import policy as approval_policy

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: How a refused stale replay's failure begins (see :func:`is_stale`).
STALE = "changed since the request"
_OPS = "operations."
_CELL = "permissions."


class StaleRequest(RuleConflict):
    """A field the request changes no longer holds the value the requester saw (a 409)."""

    def __init__(self, moved: list[str], why: str = "") -> None:
        why = why or (f"{', '.join(moved)} changed after the request was made, and approving "
                      "it would undo that later change")
        super().__init__(f"{STALE}: {why}; nothing was applied: ask again",
                         field=moved[0] if moved else "fields")
        self.moved = moved


def is_stale(failure: str | None) -> bool:
    """Whether a request's stored failure is a :class:`StaleRequest` (the routes answer 409)."""
    return STALE in (failure or "")[:60]


@dataclass(frozen=True)
class Kind:
    """One operation that changes stored settings: how to read, ask and apply its fields."""

    #: (rbac, access, payload) -> the stored values now, field by field.
    current: Callable[[RBACProtocol, Access, Mapping[str, Any]], dict[str, Any]]
    #: (current values, the service's payload) -> the values asked for, field by field.
    wanted: Callable[[dict[str, Any], Mapping[str, Any]], dict[str, Any]]
    #: (rbac, access, payload, {field: after}) -> None: run the service with those fields.
    apply: Callable[[RBACProtocol, Access, Mapping[str, Any], dict[str, Any]], None]


# -- the approval policy -------------------------------------------------------------


def _approval_flat(values: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in values.items() if k != "operations"}
    out.update({_OPS + name: t for name, t in (values.get("operations") or {}).items()})
    return out


def _approval_current(rbac: RBACProtocol, access: Access, _p: Mapping[str, Any]) -> dict[str, Any]:
    return _approval_flat(approval_policy.settings_for(rbac, access.workspace_id).to_json())


def _approval_apply(rbac: RBACProtocol, access: Access, _p: Mapping[str, Any],
                    after: dict[str, Any]) -> None:
    changes: dict[str, Any] = {k: v for k, v in after.items() if not k.startswith(_OPS)}
    if any(k.startswith(_OPS) for k in after):
        operations = dict(approval_policy.settings_for(rbac, access.workspace_id).operations)
        for key in (k for k in after if k.startswith(_OPS)):
            operations[key[len(_OPS):]] = after[key]
        changes["operations"] = {k: v for k, v in operations.items() if v is not None}
    approval_policy.save(rbac, access, changes)


# -- the security policy and the plan ------------------------------------------------


def _security_current(rbac: RBACProtocol, access: Access, _p: Mapping[str, Any]) -> dict[str, Any]:
    policy = policy_for(rbac, access.workspace_id)
    return {name: getattr(policy, name) for name in SECURITY_FIELDS}


def _security_apply(rbac: RBACProtocol, access: Access, _p: Mapping[str, Any],
                    after: dict[str, Any]) -> None:
    security_editing.save(rbac, access, after, ip=None, enrolled=is_enrolled(rbac, access.user_id))


def _plan_current(rbac: RBACProtocol, access: Access, _p: Mapping[str, Any]) -> dict[str, Any]:
    return {"plan": rbac.db.session.get(rbac.models.Workspace, access.workspace_id).plan}


def _plan_apply(rbac: RBACProtocol, access: Access, _p: Mapping[str, Any],
                after: dict[str, Any]) -> None:
    if "plan" in after:
        set_plan(rbac, access, rbac.db.session.get(rbac.models.Workspace, access.workspace_id),
                 after["plan"])


# -- a sharing agreement's terms -----------------------------------------------------


def _agreement(rbac: RBACProtocol, access: Access, payload: Mapping[str, Any]) -> Any:
    agreement = sharing.agreement_in(rbac, access.workspace_id, payload.get("agreement_id"))
    if agreement is None:
        raise ValidationError(f"sharing agreement #{payload.get('agreement_id')} no longer "
                              "exists in this workspace", field="agreement_id")
    return agreement


def _terms_current(rbac: RBACProtocol, access: Access,
                   payload: Mapping[str, Any]) -> dict[str, Any]:
    agreement = _agreement(rbac, access, payload)
    out = {"notes": agreement.notes or "", "expires_at": agreement.expires_at}
    out.update({f"{_CELL}{p.resource}.{p.action}": list(p.condition or [])
                for p in agreement.permissions})
    return out


def _terms_wanted(current: dict[str, Any], payload: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(current)
    if "permissions" in payload:
        out = {k: v for k, v in out.items() if not k.startswith(_CELL)}
        out.update({f"{_CELL}{p['resource']}.{p['action']}": list(p.get("condition") or [])
                    for p in payload["permissions"]})
    out.update({k: payload[k] for k in ("notes", "expires_at") if k in payload})
    return out


def _terms_apply(rbac: RBACProtocol, access: Access, payload: Mapping[str, Any],
                 after: dict[str, Any]) -> None:
    agreement = _agreement(rbac, access, payload)
    changes: dict[str, Any] = {k: after[k] for k in ("notes",) if k in after}
    if "expires_at" in after:
        value = after["expires_at"]
        changes["expires_at"] = (queries.parse_utc(value, "expires_at")
                                 if isinstance(value, str) else value)
    if any(k.startswith(_CELL) for k in after):
        cells = {f"{_CELL}{p.resource}.{p.action}": list(p.condition or [])
                 for p in agreement.permissions}
        cells.update({k: v for k, v in after.items() if k.startswith(_CELL)})
        changes["permissions"] = [
            {"resource": key[len(_CELL):].rpartition(".")[0],
             "action": key.rpartition(".")[2], "condition": condition or None}
            for key, condition in cells.items() if condition is not None]
    sharing.update_agreement(rbac, access, agreement, **changes)


KINDS: dict[str, Kind] = {
    "approval_policy": Kind(_approval_current, lambda _c, p: _approval_flat(p["changes"]),
                            _approval_apply),
    "security_policy": Kind(_security_current, lambda c, p: {**c, **p["changes"]},
                            _security_apply),
    "plan": Kind(_plan_current, lambda _c, p: {"plan": p["plan"]}, _plan_apply),
    "sharing": Kind(_terms_current, _terms_wanted, _terms_apply),
}


def _kind(operation: str, payload: Mapping[str, Any]) -> Kind | None:
    """The settings kind of ``operation``; None for operations that act rather than set
    (a new sharing agreement has no earlier terms to keep)."""
    if operation == "sharing" and payload.get("create"):
        return None
    return KINDS.get(operation)


def narrow(rbac: RBACProtocol, access: Access, operation: str,
           payload: dict[str, Any]) -> dict[str, Any]:
    """The payload to keep for a request: for a settings kind, its changed fields only,
    each ``{"before": seen, "after": asked}``; any other payload as it is."""
    kind = _kind(operation, payload)
    if kind is None:
        return payload
    before = jsonable(kind.current(rbac, access, payload))
    after = jsonable(kind.wanted(before, payload))
    fields = {name: {"before": before.get(name), "after": after.get(name)}
              for name in sorted(set(before) | set(after)) if before.get(name) != after.get(name)}
    kept = {k: v for k, v in payload.items() if k == "agreement_id"}
    return {**kept, "fields": fields}


def replay(rbac: RBACProtocol, access: Access, operation: str, payload: Mapping[str, Any]) -> None:
    """Apply the request's fields if each still holds its "before" value; else StaleRequest."""
    kind = _kind(operation, payload)
    if kind is None:
        raise ValidationError(f"{operation} keeps no fields to replay", field="operation")
    fields = payload.get("fields")
    if not isinstance(fields, Mapping):
        raise StaleRequest([], "the request was recorded without the values it changes from, "
                               "so changes made since cannot be told apart")
    now = jsonable(kind.current(rbac, access, payload))
    moved = sorted(name for name, change in fields.items()
                   if not isinstance(change, Mapping) or "before" not in change
                   or now.get(name) not in (change["before"], change.get("after")))
    if moved:
        raise StaleRequest(moved)
    # A field moved meanwhile to exactly the value asked for is no conflict: it holds the
    # change already, and only the fields still at their "before" value are written.
    due = {name: change["after"] for name, change in fields.items()
           if now.get(name) != change["after"]}
    if due:
        kind.apply(rbac, access, payload, due)
