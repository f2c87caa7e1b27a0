"""Certification runs: a reviewer marks each privileged member, and each member with
access to a chosen resource, "keep" or "revoke".

Who reviews: an active member who may read the reviews (``settings.view``,
as every review page and API read needs) and manage roles
(``roles.manage``): Owners and Admins in the built-in roles. A run lists
members with their roles, so starting or answering one is reading it too.
The list a run starts with:

* every active **privileged** member, as the step-up rule defines it
  (:func:`..security.sessions.is_privileged`: an Owner, or ``manage`` on
  members, roles or settings), with the roles in force that make them so;
* every active member who may **view the chosen resource** now, as
  "who can" answers it (:func:`..oversight.history.who_can`, the live
  decision), with the roles in force that grant it.

A line's roles are the member's own assignments and the roles their
department gives them, each with its source (:mod:`.lines`). The run's
lines follow the roles in force while it is open: viewing a run shows what
changed since its lines were listed (:func:`.lines.pending_changes`, no
write), and a reviewer brings the lines up to date (:func:`refresh`, a POST
and an audit event). A decision is about the line the reviewer saw, so
deciding a line whose roles changed since it was listed is a 409 naming the
change (refresh the run: the line shows the roles in force and is reviewed
again), and a run is completed only once its lines show every role in force
(409 naming what is not shown yet).

Deciding:

* **keep** records the decision and signs the member's access off
  (:func:`..oversight.review.sign_off`, so the Access review page shows it);
* **revoke** takes the item's assignments away through
  :func:`..roles.remove_role`, so the escalation rules (only an Owner takes
  Owner or Admin away), the last-Owner rule, the one-role rule and the audit
  trail all apply. A refusal is rolled back (a savepoint: the other items
  and the run stay), stored as the item's outcome ("refused: ...") and
  shown on the item; it is not an error of the page. A revoke of a line
  with a role given by the member's department is a 409 naming it: the
  role is the department's, so it is taken away from the department (or
  the member moved out of it) on the Departments page, and the line is then
  decided again.

Segregation of duties: nobody decides their own item; another reviewer
does (a 403). A decision is final (a second one is a 409), a completed run
takes no more decisions (409), and a run is completed only once every item
is decided (409 naming the undecided ones). Completing it sets the
schedule's last review date. Every step is an audit event
(``certification.*``); the caller commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import PermissionDenied, RuleConflict, ValidationError
from ..locking import write_lock
from ..models import utcnow
from ..models.certification import DECISIONS
from ..oversight import review
from ..policy import Access
from ..roles import remove_role, require, same_workspace
from .lines import candidates, label, line_changes, pending_changes, refresh_run
from .schedule import ensure_row

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The permissions that make a member a reviewer: reading the reviews, managing roles.
READER = ("settings", "view")
REVIEWER = ("roles", "manage")
REASON_MAX = 500


def require_reviewer(rbac: RBACProtocol, actor: Access | None) -> Access:
    """Refuse (403) anyone who may not read the reviews or may not manage roles."""
    return require(rbac, require(rbac, actor, *READER), *REVIEWER)


def _name(rbac: RBACProtocol, membership_id: int | None) -> str:
    membership = (rbac.db.session.get(rbac.models.Membership, membership_id)
                  if membership_id is not None else None)
    return str(membership.display_name) if membership is not None else ""


def start_run(rbac: RBACProtocol, actor: Access | None, resource: str = "") -> Any:
    """Start a run over the privileged members and, with ``resource``, its viewers."""
    actor = require_reviewer(rbac, actor)
    resource = (resource or "").strip()
    if resource:
        try:
            resource = rbac.registry.check_action(resource, "view").name
        except (KeyError, LookupError, ValueError):
            raise ValidationError(f"unknown resource {resource!r}", field="resource") from None
    m = rbac.models
    run = m.CertificationRun(workspace_id=actor.workspace_id, resource=resource, status="open",
                             started_at=utcnow(), started_by_membership_id=actor.membership_id,
                             started_by_name=_name(rbac, actor.membership_id))
    for c in candidates(rbac, actor.workspace_id, resource):
        run.items.append(m.CertificationItem(
            membership_id=c["membership"].id, member_name=c["membership"].display_name,
            why=",".join(c["why"]), roles=c["roles"], decided_by_name="", outcome="",
            reason=""))
    rbac.db.session.add(run)
    rbac.db.session.flush()
    rbac.audit("certification.started", workspace_id=actor.workspace_id, resource="members",
               actor_ids=(actor.user_id, actor.membership_id),
               target=f"certification run #{run.id}", run_id=run.id, items=len(run.items),
               chosen_resource=resource or None)
    return run


def _locked(rbac: RBACProtocol, model: Any, ident: int) -> Any:
    """Re-read a row under a lock (:func:`..locking.write_lock`), so two reviewers
    deciding at once decide once."""
    write_lock(rbac.db.session, model, model.id == ident)
    return rbac.db.session.scalars(
        sa.select(model).where(model.id == ident)
        .execution_options(populate_existing=True)).one()


def _check_decision(rbac: RBACProtocol, actor: Access, item: Any, decision: str,
                    reason: str) -> None:
    if item.run.workspace_id != actor.workspace_id:
        raise PermissionDenied("That belongs to another workspace.")
    if decision not in DECISIONS:
        raise ValidationError("decision must be 'keep' or 'revoke'", field="decision")
    if len(reason) > REASON_MAX:
        raise ValidationError(f"the reason is longer than {REASON_MAX} characters",
                              field="reason")
    if item.run.status != "open":
        raise RuleConflict("This run is completed; it takes no more decisions.",
                           field="decision")
    if item.decision is not None:
        raise RuleConflict(f"{item.member_name} was already decided ({item.decision}).",
                           field="decision")
    if item.membership_id == actor.membership_id:
        raise PermissionDenied("You cannot certify your own access; another reviewer does.")


def _check_line_current(rbac: RBACProtocol, item: Any, membership: Any) -> None:
    """Refuse (409) deciding a line whose member's roles changed since it was listed."""
    if membership is None:
        return  # a removed member holds nothing: there is nothing to see
    listed = {c["membership"].id: c for c in candidates(rbac, item.run.workspace_id,
                                                        item.run.resource)}
    line = listed.get(membership.id)
    words = line_changes(item.roles, line["roles"] if line else [])
    if words:
        raise RuleConflict(
            f"{item.member_name}'s roles changed since this line was listed: {words}. Refresh "
            "the run's lines: the line shows the roles in force now and is reviewed again.",
            field="item")


def _check_revocable(item: Any) -> None:
    """Refuse (409) a revoke of a line holding a role the member's department gives."""
    given = [e for e in item.roles or [] if e.get("source") == "department"]
    if given:
        names = ", ".join(label(e) for e in given)
        departments = ", ".join(sorted({str(e.get("department")) for e in given}))
        raise RuleConflict(
            f"{item.member_name} holds {names}: a revoke takes away only roles given to the "
            f"member, and this one is given to everyone in {departments}. Take the role away "
            f"from the department, or move {item.member_name} out of it (Settings → "
            "Departments), then refresh the run's lines and decide again.", field="item")


def decide(rbac: RBACProtocol, actor: Access | None, item: Any, decision: str,
           reason: str = "") -> Any:
    """Record ``keep`` or ``revoke`` on ``item`` and carry it out; return the item.

    A revoke the role service refuses is stored as ``refused: <why>``.
    """
    actor = require_reviewer(rbac, actor)
    reason = (reason or "").strip()
    item = _locked(rbac, rbac.models.CertificationItem, item.id)
    _check_decision(rbac, actor, item, decision, reason)
    membership = rbac.db.session.get(rbac.models.Membership, item.membership_id)
    _check_line_current(rbac, item, membership)
    if decision == "revoke":
        _check_revocable(item)
    if decision == "keep":
        item.outcome = "kept"
        if (membership is not None and membership.status != "pending"
                and rbac.decide(actor, "view", "settings")):
            review.sign_off(rbac, actor, membership)
    else:
        item.outcome = _revoke(rbac, actor, item, membership, reason)
    item.decision, item.decided_at, item.reason = decision, utcnow(), reason
    item.decided_by_membership_id = actor.membership_id
    item.decided_by_name = _name(rbac, actor.membership_id)
    rbac.db.session.flush()
    return item


def _revoke(rbac: RBACProtocol, actor: Access, item: Any, membership: Any, reason: str) -> str:
    """Take the item's assignments away in a savepoint; the outcome in words."""
    if membership is None:
        return "revoked (the member was already removed)"
    session = rbac.db.session
    MR = rbac.models.MemberRole
    taken: list[str] = []
    try:
        with session.begin_nested():
            for entry in item.roles:
                mr = session.get(MR, entry.get("member_role_id"))
                if mr is None or mr.membership_id != membership.id:
                    continue  # already gone: nothing to take
                same_workspace(actor, mr.membership)
                remove_role(rbac, actor, mr)
                taken.append(str(entry.get("role")))
            rbac.audit("certification.revoked", workspace_id=actor.workspace_id,
                       actor_ids=(actor.user_id, actor.membership_id),
                       resource="members", target=item.member_name, run_id=item.run_id,
                       item_id=item.id, membership_id=membership.id, roles=taken,
                       reason=reason or f"Certification run #{item.run_id}: access revoked")
    except (PermissionDenied, ValidationError) as exc:
        return f"refused: {getattr(exc, 'message', None) or exc}"
    return f"revoked: {', '.join(taken)}" if taken else "revoked (nothing left to take)"


def refresh(rbac: RBACProtocol, actor: Access | None, run: Any) -> list[str]:
    """Bring an open run's lines up to the roles in force (:func:`.lines.refresh_run`);
    return what changed, in words.

    A reviewer's step, as deciding is (a 403 for anyone else): the lines are
    what the decisions are about. A change is a ``certification.refreshed``
    audit event naming it; a run already up to date writes nothing, and a
    completed run keeps the lines it was decided on (409).
    """
    actor = require_reviewer(rbac, actor)
    same_workspace(actor, run)
    run = _locked(rbac, rbac.models.CertificationRun, run.id)
    if run.status != "open":
        raise RuleConflict("This run is completed; it keeps the lines it was decided on.",
                           field="run")
    words = refresh_run(rbac, run)
    if words:
        rbac.audit("certification.refreshed", workspace_id=actor.workspace_id,
                   resource="members", actor_ids=(actor.user_id, actor.membership_id),
                   target=f"certification run #{run.id}", run_id=run.id, changes=words)
    return words


def complete_run(rbac: RBACProtocol, actor: Access | None, run: Any) -> Any:
    """Close the run once every item is decided; set the schedule's last review date."""
    actor = require_reviewer(rbac, actor)
    same_workspace(actor, run)
    run = _locked(rbac, rbac.models.CertificationRun, run.id)
    if run.status != "open":
        raise RuleConflict("This run is already completed.", field="run")
    unseen = pending_changes(rbac, run)
    if unseen:
        raise RuleConflict(
            "Roles changed since the run's lines were listed: "
            f"{'; '.join(c.words for c in unseen)}. Refresh the run's lines to review them, "
            "then complete it.", field="items")
    undecided = [i.member_name for i in run.items if i.decision is None]
    if undecided:
        raise RuleConflict(f"Decide every item first; undecided: {', '.join(undecided)}.",
                           field="items")
    now = utcnow()
    run.status, run.completed_at = "completed", now
    run.completed_by_membership_id = actor.membership_id
    run.completed_by_name = _name(rbac, actor.membership_id)
    ensure_row(rbac, run.workspace_id).last_reviewed_at = now
    rbac.audit("certification.completed", workspace_id=actor.workspace_id, resource="members",
               actor_ids=(actor.user_id, actor.membership_id),
               target=f"certification run #{run.id}", run_id=run.id,
               kept=sum(i.decision == "keep" for i in run.items),
               revoked=sum(i.outcome.startswith("revoked") for i in run.items),
               refused=sum(i.outcome.startswith("refused") for i in run.items))
    rbac.db.session.flush()
    return run


def runs_of(rbac: RBACProtocol, workspace_id: int) -> list[Any]:
    """The workspace's runs, newest first."""
    R = rbac.models.CertificationRun
    return list(rbac.db.session.scalars(sa.select(R).where(R.workspace_id == workspace_id)
                                        .order_by(R.started_at.desc(), R.id.desc())))


def run_in(rbac: RBACProtocol, workspace_id: int, run_id: int) -> Any:
    """The run ``run_id`` of the workspace, or None (another workspace's is None too)."""
    run = rbac.db.session.get(rbac.models.CertificationRun, run_id)
    return run if run is not None and run.workspace_id == workspace_id else None


def item_in(rbac: RBACProtocol, run: Any, item_id: int) -> Any:
    """The item ``item_id`` of ``run``, or None."""
    item = rbac.db.session.get(rbac.models.CertificationItem, item_id)
    return item if item is not None and item.run_id == run.id else None
