"""The built-in roles every new workspace starts with.

Each entry is plain data: a key, a name, a description and a list of grants
``(resource, action, scope, condition)``. Grants on resources the host has not
registered are skipped, so the same table works for any host. ``"*"`` as the
resource means every registered resource with a model (the CRM data), and
``"*"`` as the action every action of that resource.

A grant whose scope the resource does not take is skipped: own, team and
department need an owner column, so on a resource without one (tags, say) the
Member's ``own`` grants give no access rather than ``all`` (fail closed). The
Owner, and roles granting ``all``, still reach such a resource.

The plugin's table holds the four roles any app needs (Owner, Admin, Member,
Viewer). A host replaces or extends it with the ``RBAC_ROLE_TEMPLATES`` key,
for example with :data:`MANAGER`, as the demo CRM does with it and its sales
roles (``crm_app/roles.py``).
"""

from __future__ import annotations

from typing import Any

from .registry import Registry

#: Administrative resources the extension itself protects (no model).
ADMIN_RESOURCES: tuple[tuple[str, str], ...] = (
    ("members", "Team members"),
    ("roles", "Roles and permissions"),
    ("settings", "Workspace settings"),
)
#: The administrative resource of approval requests and its actions: ``decide``
#: (approve or reject others' requests, the default approver permission) and ``view``.
APPROVALS_RESOURCE: tuple[str, str, tuple[str, ...]] = (
    "approvals", "Approval requests", ("view", "decide"))

CRUD = ("view", "create", "edit", "delete")

ROLE_TEMPLATES: list[dict[str, Any]] = [
    {"key": "owner", "name": "Owner", "is_owner": True,
     "description": "Full control of the workspace, its billing and its members. "
                    "Always sees everything the plan includes.",
     "grants": []},
    {"key": "admin", "name": "Admin",
     "description": "Full control except transferring ownership.",
     "grants": [("*", "*", "all", None), ("members", "*", "all", None),
                ("roles", "*", "all", None), ("settings", "*", "all", None),
                ("approvals", "*", "all", None)]},
    {"key": "member", "name": "Member",
     "description": "Works their own pipeline and sees their own data.",
     "grants": [("*", a, "own", None) for a in CRUD]},
    {"key": "viewer", "name": "Viewer",
     "description": "Read-only access to every record.",
     "grants": [("*", "view", "all", None)]},
]


#: A role a host may add to its templates (the demo does): the whole pipeline of
#: the members assigned to the holder (the team scope).
MANAGER: dict[str, Any] = {
    "key": "manager", "name": "Manager",
    "description": "Works the whole pipeline of the members assigned to them.",
    "grants": [("*", a, "team", None) for a in (*CRUD, "export")]
              + [("members", "view", "all", None)]}


def expand_grants(registry: Registry, template: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """Return a template's grants for the resources ``registry`` knows.

    A grant is left out where the resource does not take its scope
    (:attr:`.registry.Resource.scopes`): no access, never a wider scope.
    """
    out: list[tuple[str, str, str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for resource, action, scope, condition in template["grants"]:
        if resource == "*":
            targets = [r for r in registry if r.is_model]
        elif resource in registry:
            targets = [registry.get(resource)]
        else:
            continue
        for res in targets:
            actions = res.actions if action == "*" else (action,)
            for act in actions:
                if act in res.actions and scope in res.scopes and (res.name, act) not in seen:
                    seen.add((res.name, act))
                    out.append((res.name, act, scope, condition))
    return out
