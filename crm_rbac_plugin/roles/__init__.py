"""Role management with the rules that keep roles safe.

Every function takes the *actor* (the :class:`~.policy.Access` of whoever asks)
and refuses, with :class:`~.errors.PermissionDenied` (403) or
:class:`~.errors.ValidationError` (400), before changing anything:

- nobody but an Owner creates, edits or assigns a role that grants more than
  they hold themselves, nor touches a role wider than their own;
- only an Owner gives or takes the Owner or Admin role, and a workspace keeps
  at least one active Owner, also under concurrent requests (the workspace row
  is written first, which serialises such changes on every backend);
- the Owner and Admin roles keep their full access (they cannot be edited);
- every member keeps at least one role assignment *in force now*: a change
  that would leave a member only expired or not-yet-started assignments
  (which give no access) is refused with :class:`~.errors.RuleConflict`
  (409), by :func:`ensure_role_remains`, the one place that counts them;
- pairs of roles declared in conflict (segregation of duties) are never held
  together.

Functions add to the session and flush; the caller commits, so a view's whole
change is one transaction, and a refusal leaves nothing behind (the caller
rolls back).

Layout: :mod:`.grants` (specs and parsing), :mod:`.escalation` (who may
touch what), :mod:`.locks` (serialising writers), :mod:`.invariants` (a role
in force per member, an Owner per workspace), :mod:`.field_rules`,
:mod:`.assignments` (and segregation of duties), :mod:`.groups` (department
roles, role conditions), :mod:`.editing` (create,
edit, clone, delete), :mod:`.plan`, :mod:`.reading` (matrix, compare,
preview). This module only re-exports their public names.
"""

from __future__ import annotations

from .assignments import (
    add_conflict,
    assign_role,
    grants_fingerprint,
    holders,
    needs_approval_as_privileged,
    remove_conflict,
    remove_role,
    set_assignment_condition,
)
from .editing import clone_role, create_role, delete_role, update_role
from .escalation import (
    PRIVILEGED_KEYS,
    capped,
    covers,
    department_in_scope,
    has_full_access,
    is_privileged,
    manages_everyone,
    member_in_scope,
    require,
    require_member_in_scope,
    require_role_covered,
    same_workspace,
    withheld_fields,
)
from .field_rules import FIELD_MODES, set_field_rules
from .grants import (
    SCOPE_RANK,
    GrantSpec,
    condition_clauses,
    effective_specs,
    merge_specs,
    parse_grants,
    permission_items,
    specs_of,
)
from .groups import (
    check_joining,
    department_roles,
    give_department_role,
    member_group_roles,
    remove_department_role,
    set_role_condition,
)
from .invariants import (
    ROLE_REMAINS_RULE,
    active_owner_count,
    assignments_in_force,
    ensure_owner_remains,
    ensure_role_remains,
    in_force,
)
from .plan import set_plan
from .reach import department_role_list, held_roles
from .reading import compare, matrix, preview, roles_granting, summary

__all__ = [
    "FIELD_MODES",
    "GrantSpec",
    "PRIVILEGED_KEYS",
    "ROLE_REMAINS_RULE",
    "SCOPE_RANK",
    "active_owner_count",
    "add_conflict",
    "assign_role",
    "assignments_in_force",
    "check_joining",
    "clone_role",
    "compare",
    "condition_clauses",
    "covers",
    "create_role",
    "capped",
    "department_in_scope",
    "delete_role",
    "department_role_list",
    "department_roles",
    "effective_specs",
    "ensure_owner_remains",
    "ensure_role_remains",
    "give_department_role",
    "held_roles",
    "holders",
    "has_full_access",
    "in_force",
    "grants_fingerprint", "is_privileged",
    "matrix",
    "member_group_roles",
    "manages_everyone",
    "member_in_scope",
    "merge_specs",
    "needs_approval_as_privileged",
    "parse_grants",
    "permission_items",
    "preview",
    "remove_conflict",
    "remove_department_role",
    "remove_role",
    "require",
    "require_member_in_scope",
    "require_role_covered",
    "roles_granting",
    "same_workspace",
    "withheld_fields",
    "set_assignment_condition",
    "set_field_rules",
    "set_plan",
    "set_role_condition",
    "specs_of",
    "summary",
    "update_role",
]
