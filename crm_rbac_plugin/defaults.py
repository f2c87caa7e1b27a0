"""The built-in roles every new workspace starts with.

Each entry is plain data: a key, a name, a description and a list of grants
``(resource, action, scope, condition)``. Grants on resources the host has not
registered are skipped, so the same table works for any host. ``"*"`` as the
resource means every registered resource with a model (the CRM data), and
``"*"`` as the action every action of that resource.

A host replaces or extends the table with the ``RBAC_ROLE_TEMPLATES`` key.
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

CRUD = ("view", "create", "edit", "delete")
CLOSED_DEALS = [{"field": "stage", "op": "in", "value": ["won", "lost"]}]

ROLE_TEMPLATES: list[dict[str, Any]] = [
    {"key": "owner", "name": "Owner", "is_owner": True,
     "description": "Full control of the workspace, its billing and its members. "
                    "Always sees everything the plan includes.",
     "grants": []},
    {"key": "admin", "name": "Admin",
     "description": "Full control except transferring ownership.",
     "grants": [("*", "*", "all", None), ("members", "*", "all", None),
                ("roles", "*", "all", None), ("settings", "*", "all", None)]},
    {"key": "manager", "name": "Manager",
     "description": "Works the whole pipeline of the members assigned to them.",
     "grants": [("*", a, "team", None) for a in (*CRUD, "export")]
               + [("members", "view", "all", None)]},
    {"key": "member", "name": "Member",
     "description": "Works their own pipeline and sees their own data.",
     "grants": [("*", a, "own", None) for a in CRUD]},
    {"key": "viewer", "name": "Viewer",
     "description": "Read-only access to every record, for finance or leadership.",
     "grants": [("*", "view", "all", None)]},
    {"key": "finance", "name": "Finance",
     "description": "Views and exports all closed deals for revenue reconciliation; "
                    "edits nothing.",
     "grants": [("deals", "view", "all", CLOSED_DEALS), ("deals", "export", "all", CLOSED_DEALS)]},
    {"key": "junior_rep", "name": "Junior Rep",
     "description": "Views, creates and edits their own leads; no delete, no export.",
     "grants": [("leads", a, "own", None) for a in ("view", "create", "edit")]},
    {"key": "client_success", "name": "Client Success",
     "description": "Views all clients and works the notes and tasks on them; "
                    "no access to the sales pipeline.",
     "grants": [("clients", "view", "all", None)]
               + [(r, a, "own", None) for r in ("notes", "tasks")
                  for a in ("view", "create", "edit")]},
]


def expand_grants(registry: Registry, template: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """Return a template's grants for the resources ``registry`` knows."""
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
                if act in res.actions and (res.name, act) not in seen:
                    seen.add((res.name, act))
                    out.append((res.name, act, scope, condition))
    return out
