"""The full path of one decision, for the explain page and ``flask rbac explain``.

Besides the decision's steps it says, in words, the scope of the grant that
decided (:func:`..queries.scope_label`): "own" reads "own records and
unassigned ones" for ``view`` while ``RBAC_UNOWNED_VISIBLE`` is on, because
such a grant then also reaches records without an owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..policy import DENY, Access, Decision
from ..queries import scope_label
from ..resolve import plan_modules

if TYPE_CHECKING:
    from ..interface import RBACProtocol


@dataclass
class Explanation:
    """A decision with its steps, and the field rules that apply to the member."""

    decision: Decision
    resource: str
    action: str
    record_id: Any
    plan: str
    plan_includes: bool
    hidden: list[str] = field(default_factory=list)
    readonly: list[str] = field(default_factory=list)
    #: The sharing agreements in force towards the member's workspace that
    #: cover this resource, described ("agreement #3 from 'Acme': clients.view ...").
    sharing: list[str] = field(default_factory=list)
    #: The reach of the grant that decided, in words ("" when no grant decided).
    scope: str = ""

    @property
    def path(self) -> list[str]:
        """The decision's steps, ending with its reason (early refusals omit it from steps)."""
        steps = list(self.decision.steps)
        if not steps or steps[-1] != self.decision.reason:
            steps.append(self.decision.reason)
        return steps

    def lines(self) -> list[str]:
        """Return the explanation as text lines (the CLI prints them)."""
        out = ["ALLOWED" if self.decision.allowed else "DENIED"]
        out += [f"  - {step}" for step in self.path]
        out.append(f"  plan: {self.plan} ({'includes' if self.plan_includes else 'excludes'} "
                   f"{self.resource})")
        if self.scope:
            out.append(f"  scope: {self.scope}")
        out.append(f"  hidden fields: {', '.join(self.hidden) or 'none'}")
        out.append(f"  read-only fields: {', '.join(self.readonly) or 'none'}")
        if self.decision.agreement_id is not None:
            out.append(f"  allowed through sharing agreement #{self.decision.agreement_id}")
        out += [f"  sharing: {text}" for text in self.sharing]
        return out


def explain(rbac: RBACProtocol, access: Access | None, action: str, resource: str,
            record: Any = None) -> Explanation:
    """Decide for ``access`` and collect the plan and the field rules with the path."""
    res = rbac.registry.check_action(resource, action)
    decision = rbac.decide(access, action, resource, record)
    plan = ""
    includes = False
    if access is not None:
        ws = rbac.db.session.get(rbac.models.Workspace, access.workspace_id)
        plan = ws.plan if ws is not None else ""
        includes = access.in_plan(res)
        if plan_modules(rbac.config("RBAC_PLANS"), plan) is None:
            includes = True
    shares = [
        f"{share.describe()}: " + ", ".join(sorted(
            f"{r}.{a}" for (r, a) in share.permissions if r == resource))
        for share in (access.shares if access is not None else ())
        if any(r == resource for r, _ in share.permissions)]
    return Explanation(
        decision, resource, action, getattr(record, "id", None), plan, includes,
        hidden=sorted(rbac.hidden_fields(resource, access=access)),
        readonly=sorted(rbac.readonly_fields(resource, access=access)), sharing=shares,
        scope=deciding_scope(access, decision, action))


def deciding_scope(access: Access | None, decision: Decision, action: str) -> str:
    """The reach of the grant behind ``decision``, in words.

    An allow reads as the scopes it reaches for the member (their visibility
    level may cut it down); an explicit deny as its own scope, marked. An
    Owner reaches every record. A refusal that no single grant made (no
    grant, out of scope, out of plan) has no scope to show: "".
    """
    rule = decision.rule
    if access is not None and access.is_owner and decision.allowed:
        return scope_label("all", action)
    if rule is None:
        return ""
    if rule.effect == DENY:
        return f"{scope_label(rule.scope, action)} (explicit deny)"
    if not decision.allowed or access is None:
        return ""
    return ", ".join(scope_label(scope, action) for scope in access.scopes_for(rule))
