"""Sharing agreements: one workspace lets another reach some of its records.

The service behind the "Shared by you" / "Shared with you" pages, the JSON
API and the ``flask rbac sharing`` commands, so all three follow the same
rules:

* Only the **granting** workspace creates, edits, widens or revokes an
  agreement about its own data, through a member who may ``settings.manage``
  there who holds every action they share workspace-wide, every field too (nobody shares more).
* The **receiving** workspace (a member with ``settings.manage`` there)
  accepts or declines a pending agreement, and leaves an active one. Nothing
  is shared before it accepts, nor more than it accepted: widening an active
  agreement, or reviving an expired one, offers it again.
* Only records are shared, and never ``create`` or ``manage``: new records
  are always made in one's own workspace, and records keep their owners.
  Every shared action needs ``view`` shared too.

What a receiving member may do with a shared record is decided by
:mod:`.policy` (rule 7): the agreement's permissions intersected with their
own role. Every change bumps ``policy_version`` of both workspaces (see
:func:`.guard.workspaces_of`), so it is enforced on the next request in every
process, and is written to both workspaces' audit trails (:mod:`.audit`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import conditions, gate, inputs
from .errors import PermissionDenied, ValidationError
from .loader import BYPASS
from .models import naive_utc, utcnow
from .policy import Access
from .resolve import plan_modules
from .roles import GrantSpec, condition_clauses, covers, permission_items, require, withheld_fields
from .sharing_reading import (  # noqa: F401  (re-exported: sharing.state, sharing.to_json...)
    agreement_in,
    agreements,
    describe_permission,
    shared_from,
    state,
    to_json,
)

if TYPE_CHECKING:
    from .interface import RBACProtocol

#: Actions an agreement can never share (see the module docstring).
NOT_SHARED = frozenset({"create", "manage"})
#: Statuses in which an agreement is still open (it can change or be ended).
OPEN = ("pending", "active")
#: The permission a member needs, on either side, to act on agreements.
MANAGE = ("settings", "manage")


@dataclass(frozen=True)
class PermissionSpec:
    """One validated shared action."""

    resource: str
    action: str
    condition: tuple[conditions.Clause, ...] = ()

    @property
    def permission(self) -> str:
        return f"{self.resource}.{self.action}"

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "action": self.action,
                "condition": conditions.to_json(self.condition) or None}


# -- input -------------------------------------------------------------------------


_PERMISSION_KEYS = frozenset({"resource", "action", "condition"})


def parse_permissions(rbac: RBACProtocol, items: Any) -> list[PermissionSpec]:
    """Validate shared actions given as ``"clients.view"`` or ``{resource, action, condition}``."""
    out: dict[tuple[str, str], PermissionSpec] = {}
    for field, item, res in permission_items(rbac, items, _PERMISSION_KEYS):
        resource, action = item["resource"], item["action"]
        if res.model is None:
            raise ValidationError(f"{resource} has no records to share", field=field)
        if action in NOT_SHARED:
            raise ValidationError(f"{action} cannot be shared: records are created and "
                                  "reassigned only in their own workspace", field=field)
        clauses = condition_clauses(res, item.get("condition"), field)
        if (resource, action) in out:
            raise ValidationError(f"{resource}.{action} is listed twice", field=field)
        out[(resource, action)] = PermissionSpec(resource, action, clauses)
    if not out:
        raise ValidationError("share at least one action", field="permissions")
    missing = sorted({f"{r}.view" for r, _ in out if (r, "view") not in out})
    if missing:
        raise ValidationError(f"every shared action needs view on its records too: add "
                              f"{', '.join(missing)}", field="permissions")
    return list(out.values())


def _check_expiry(expires_at: Any) -> dt.datetime | None:
    if expires_at is None:
        return None
    if not isinstance(expires_at, dt.datetime):
        raise ValidationError("expires_at must be a date and time", field="expires_at")
    expires_at = naive_utc(expires_at)
    if expires_at <= utcnow():
        raise ValidationError("expires_at must be in the future", field="expires_at")
    return expires_at


def _check_notes(notes: Any) -> str:
    if notes is None:
        return ""
    if not isinstance(notes, str):
        raise ValidationError("notes must be text", field="notes")
    if len(notes) > 2000:
        raise ValidationError("notes are limited to 2000 characters", field="notes")
    return notes.strip()


# -- who may do what ---------------------------------------------------------------


def _require_manage(rbac: RBACProtocol, actor: Access | None) -> Access:
    return require(rbac, actor, *MANAGE)


def _require_side(actor: Access, agreement: Any, side: str) -> None:
    ws = (agreement.granting_workspace_id if side == "granting"
          else agreement.receiving_workspace_id)
    if ws != actor.workspace_id:
        who = "the workspace that shares its data" if side == "granting" else \
            "the workspace it is shared with"
        raise PermissionDenied(f"Only {who} can do that.", resource="settings", action="manage")


def _require_open(agreement: Any, *statuses: str) -> None:
    if agreement.status not in statuses:
        raise ValidationError(f"the agreement is {agreement.status}; this needs it "
                              f"{' or '.join(statuses)}", field="status")


def _require_held(actor: Access, specs: Iterable[PermissionSpec]) -> None:
    """Nobody shares more than they hold: workspace-wide, condition and fields included."""
    specs = list(specs)
    missing = sorted({s.permission for s in specs if not covers(
        actor, GrantSpec(s.resource, s.action, "all", "allow", s.condition))})
    why = (f"more than you hold workspace-wide ({', '.join(missing)})" if missing else next((
        f"{s.permission}: {w}, and the other workspace would see every field" for s in specs
        if (w := withheld_fields(actor, s.resource, s.action))), ""))
    if why:
        raise PermissionDenied(f"You cannot share {why}.", resource="settings", action="manage")


class OpenAgreementExists(ValidationError):
    """A second open agreement towards the same workspace (a 409); names the open one."""

    status = 409

    def __init__(self, message: str, agreement_id: int) -> None:
        super().__init__(message, field="workspace")
        self.agreement_id = agreement_id


def find_workspace(rbac: RBACProtocol, ref: Any, user_id: Any = None) -> Any:
    """The workspace ``ref`` names: its slug, its exact name, or the id of one the user
    ``user_id`` is an active member of; ValidationError if none.

    Who can learn what: the pages suggest only the workspaces the acting
    user is a member of (:func:`suggested_workspaces`), and an id names only
    one of those, since ids can be counted through; any other workspace
    must be typed exactly, by slug or by full name (case aside). There is no
    search, prefix match or list of the server's workspaces, and an unknown
    name, a name several workspaces share, and a typo all get the same
    answer, "No workspace named X": someone probing learns only that an exact
    name they already knew exists, and only a member who may manage sharing
    can ask at all. Offering an agreement to a workspace reveals nothing of
    it beyond its name until it accepts.
    """
    W = rbac.models.Workspace
    ws = None
    if isinstance(ref, int) and not isinstance(ref, bool):
        M = rbac.models.Membership
        ws = rbac.db.session.scalar(sa.select(W).join(M, M.workspace_id == W.id).where(
            W.id == ref, M.user_id == user_id, M.status == "active"),
            execution_options=BYPASS) if 0 < ref <= inputs.MAX_ID and user_id is not None \
            else None
    elif isinstance(ref, str) and ref.strip():
        text = ref.strip()
        ws = rbac.db.session.scalar(sa.select(W).where(W.slug == text.lower()),
                                    execution_options=BYPASS)
        if ws is None:
            named = rbac.db.session.scalars(sa.select(W).where(
                sa.func.lower(W.name) == text.lower()).limit(2),
                execution_options=BYPASS).all()
            ws = named[0] if len(named) == 1 else None
    if ws is None or ws.deleted_at is not None:
        shown = ref.strip()[:120] if isinstance(ref, str) else ref
        raise ValidationError(f"No workspace named {shown}.", field="workspace")
    return ws


def suggested_workspaces(rbac: RBACProtocol, user_id: Any, exclude_id: int) -> list[Any]:
    """Workspaces the user is an active member of, but ``exclude_id``: the only ones the
    sharing form suggests (see :func:`find_workspace` on enumeration)."""
    W, M = rbac.models.Workspace, rbac.models.Membership
    return list(rbac.db.session.scalars(
        sa.select(W).join(M, M.workspace_id == W.id)
        .where(M.user_id == user_id, M.status == "active", W.id != exclude_id,
               W.deleted_at.is_(None))
        .order_by(W.name), execution_options=BYPASS))


def plan_gaps(rbac: RBACProtocol, workspace: Any, resources: Iterable[str]) -> list[str]:
    """Labels of ``resources`` whose module the receiving ``workspace``'s plan leaves out.

    Such a share saves, but the receiving members get nothing from it: every
    decision first asks whether their own plan includes the module.
    """
    modules = plan_modules(rbac.config("RBAC_PLANS"), workspace.plan)
    if modules is None:
        return []
    out = []
    for name in dict.fromkeys(resources):
        res = rbac.registry.get(name)
        if res.module not in modules:
            out.append(res.label)
    return out


def pending_count(rbac: RBACProtocol, workspace_id: int) -> int:
    """Agreements waiting for ``workspace_id`` to accept or decline them."""
    SA = rbac.models.SharingAgreement
    return int(rbac.db.session.scalar(
        sa.select(sa.func.count()).select_from(SA).where(
            SA.receiving_workspace_id == workspace_id, SA.status == "pending"),
        execution_options=BYPASS) or 0)


def shared_counts(rbac: RBACProtocol, agreement: Any) -> dict[str, int]:
    """How many records the agreement shares (``view``), by resource label.

    Counted in the granting workspace, condition applied: what the receiving
    side loses when the agreement ends.
    """
    out: dict[str, int] = {}
    for perm in agreement.permissions:
        if perm.action != "view" or perm.resource not in rbac.registry:
            continue
        res = rbac.registry.get(perm.resource)
        if res.model is None or res.workspace_column is None:
            continue
        model: Any = res.model
        where = [getattr(model, res.workspace_column) == agreement.granting_workspace_id]
        if perm.condition:
            where.append(conditions.to_sql(model, conditions.stored(model, perm.condition)))
        out[res.label] = int(rbac.db.session.scalar(
            sa.select(sa.func.count()).select_from(model).where(*where),
            execution_options=BYPASS) or 0)
    return out


# -- changes -----------------------------------------------------------------------


def _set_permissions(rbac: RBACProtocol, agreement: Any, specs: list[PermissionSpec]) -> None:
    SP = rbac.models.SharingPermission
    wanted = {(s.resource, s.action): s for s in specs}
    for perm in list(agreement.permissions):
        spec = wanted.pop((perm.resource, perm.action), None)
        if spec is None:
            agreement.permissions.remove(perm)
        else:
            condition = conditions.to_json(spec.condition) or None
            if perm.condition != condition:
                perm.condition = condition
    for spec in wanted.values():
        agreement.permissions.append(SP(resource=spec.resource, action=spec.action,
                                        condition=conditions.to_json(spec.condition) or None))


def create_agreement(rbac: RBACProtocol, actor: Access | None, *, workspace: Any, permissions: Any,
                     notes: Any = "", expires_at: Any = None) -> Any:
    """Offer ``workspace`` (slug, id or instance) access to the actor's workspace's data.

    The agreement is pending until the receiving workspace accepts it. In
    single-tenant mode there is no other workspace to share with, and
    resources without a workspace column could not tell shared rows apart,
    so sharing is refused.
    """
    if rbac.config("RBAC_SINGLE_TENANT"):
        raise ValidationError("sharing needs several workspaces; this app runs in "
                              "single-tenant mode (RBAC_SINGLE_TENANT)", field="workspace")
    actor = _require_manage(rbac, actor)
    # The terms first: a refusal of them must not tell whether the workspace exists.
    specs = parse_permissions(rbac, permissions)
    expires = _check_expiry(expires_at)
    text = _check_notes(notes)
    _require_held(actor, specs)
    target = workspace if isinstance(workspace, rbac.models.Workspace) else \
        find_workspace(rbac, workspace, actor.user_id)
    if target.id == actor.workspace_id:
        raise ValidationError("a workspace cannot share with itself", field="workspace")
    SA = rbac.models.SharingAgreement
    open_one = rbac.db.session.scalar(sa.select(SA.id).where(
        SA.granting_workspace_id == actor.workspace_id,
        SA.receiving_workspace_id == target.id, SA.status.in_(OPEN)))
    if open_one is not None:
        raise OpenAgreementExists(f"agreement #{open_one} with {target.name} is still open; "
                                  "edit it instead", open_one)
    gate.require(rbac, actor, "sharing",
                 {"create": True, "workspace": target.id, "notes": text, "expires_at": expires,
                  "permissions": [s.to_json() for s in specs]},
                 summary=f"Share data with {target.name}")
    agreement = SA(granting_workspace_id=actor.workspace_id, receiving_workspace_id=target.id,
                   status="pending", notes=text, expires_at=expires,
                   created_by_id=actor.user_id)
    rbac.db.session.add(agreement)
    _set_permissions(rbac, agreement, specs)
    rbac.db.session.flush()
    return agreement


_UNSET: Any = object()


def _widens(agreement: Any, specs: list[PermissionSpec] | None, expires: Any) -> bool:
    """Whether the new permissions or expiry share more than the agreement does now.

    A cell is no wider when the agreement already shares it with a condition
    whose clauses are all among the new one's (more clauses, fewer rows); a
    later expiry, or none where there was one, is wider.
    """
    if expires is not _UNSET and agreement.expires_at is not None and (
            expires is None or expires > agreement.expires_at):
        return True
    if specs is None:
        return False
    old = {(p.resource, p.action): list(p.condition or []) for p in agreement.permissions}
    for spec in specs:
        before = old.get((spec.resource, spec.action))
        new = conditions.to_json(spec.condition) or []
        if before is None or any(clause not in new for clause in before):
            return True
    return False


def _shared_now(rbac: RBACProtocol, agreement: Any) -> list[PermissionSpec]:
    """The agreement's permissions as stored, conditions read failing closed."""
    models = {p.resource: rbac.registry.get(p.resource).model if p.resource in rbac.registry
              else None for p in agreement.permissions}
    return [PermissionSpec(p.resource, p.action, conditions.stored(models[p.resource], p.condition)
                           if models[p.resource] is not None and p.condition else ())
            for p in agreement.permissions]


def update_agreement(rbac: RBACProtocol, actor: Access | None, agreement: Any, *,
                     permissions: Any = _UNSET, notes: Any = _UNSET,
                     expires_at: Any = _UNSET) -> Any:
    """Change an open agreement (granting side only); narrowing and widening alike.

    Widening shares anew: a later expiry (or none) needs the current permissions held.
    An active agreement whose permissions widen, or an expired one given a new expiry,
    is offered again (``pending``): the receiving workspace accepted what it shared
    then, and nothing more is shared before it accepts again. Narrowing, and a later
    expiry of an agreement still running, apply at once.
    """
    actor = _require_manage(rbac, actor)
    _require_side(actor, agreement, "granting")
    _require_open(agreement, *OPEN)
    specs = parse_permissions(rbac, permissions) if permissions is not _UNSET else None
    if specs is not None:
        _require_held(actor, specs)
    text = _check_notes(notes) if notes is not _UNSET else _UNSET
    expires = _check_expiry(expires_at) if expires_at is not _UNSET else _UNSET
    reoffer = agreement.status == "active" and (
        _widens(agreement, specs, _UNSET)
        or (expires is not _UNSET and state(agreement) == "expired"))
    if _widens(agreement, specs, expires):
        if specs is None:
            _require_held(actor, _shared_now(rbac, agreement))
        gate.require(rbac, actor, "sharing",
                     {"agreement_id": agreement.id, **({"permissions": [s.to_json() for s in specs]}
                                                       if specs is not None else {}),
                      **({"notes": text} if text is not _UNSET else {}),
                      **({"expires_at": expires} if expires is not _UNSET else {})},
                     summary=f"Widen sharing agreement #{agreement.id}")
    if specs is not None:
        _set_permissions(rbac, agreement, specs)
    if text is not _UNSET:
        agreement.notes = text
    if expires is not _UNSET:
        agreement.expires_at = expires
    if reoffer:
        agreement.status, agreement.decided_at = "pending", None
    rbac.db.session.flush()
    return agreement


def _end(rbac: RBACProtocol, agreement: Any, status: str) -> Any:
    agreement.status = status
    agreement.decided_at = utcnow()
    rbac.db.session.flush()
    return agreement


def revoke(rbac: RBACProtocol, actor: Access | None, agreement: Any) -> Any:
    """End an agreement from the granting side (effective on the next request)."""
    actor = _require_manage(rbac, actor)
    _require_side(actor, agreement, "granting")
    _require_open(agreement, *OPEN)
    return _end(rbac, agreement, "revoked")


def accept(rbac: RBACProtocol, actor: Access | None, agreement: Any) -> Any:
    """Accept a pending agreement (receiving side): the shared records appear."""
    actor = _require_manage(rbac, actor)
    _require_side(actor, agreement, "receiving")
    _require_open(agreement, "pending")
    return _end(rbac, agreement, "active")


def decline(rbac: RBACProtocol, actor: Access | None, agreement: Any) -> Any:
    """Decline a pending agreement (receiving side)."""
    actor = _require_manage(rbac, actor)
    _require_side(actor, agreement, "receiving")
    _require_open(agreement, "pending")
    return _end(rbac, agreement, "declined")


def leave(rbac: RBACProtocol, actor: Access | None, agreement: Any) -> Any:
    """Leave an active agreement (receiving side): the shared records disappear."""
    actor = _require_manage(rbac, actor)
    _require_side(actor, agreement, "receiving")
    _require_open(agreement, "active")
    return _end(rbac, agreement, "left")


#: Actions on an agreement by name, for the pages, the API and the CLI.
ACTIONS = {"revoke": revoke, "accept": accept, "decline": decline, "leave": leave}
