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

#: The workspace's plan and billing (no model): ``view`` shows the plan page to whoever
#: holds it (``003``'s Finance & Accounting "View billing"); changing the plan stays the
#: Owner's ("full control including billing").
BILLING_RESOURCE: tuple[str, str, tuple[str, ...]] = ("billing", "Plan and billing", ("view",))

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
                ("approvals", "*", "all", None), ("billing", "*", "all", None)]},
    {"key": "member", "name": "Member",
     "description": "Works their own pipeline and sees their own data.",
     # 003: a Member has no Accounting, whatever "*" reaches.
     "grants": [("*", a, "own", None) for a in CRUD], "except_modules": ("accounting",)},
    {"key": "viewer", "name": "Viewer",
     "description": "Read-only access to every record.",
     "grants": [("*", "view", "all", None)]},
]


#: The levels of ``003``'s role table: Full is every action of the resource
#: (``manage`` included), Edit is view, create and edit, View is view.
FULL, EDIT, VIEW = ("*",), ("view", "create", "edit"), ("view",)

#: ``003``'s departments as this plugin's modules. The CRM is the demo's
#: ``sales``, ``clients`` and ``work`` modules; Accounting is ``accounting``
#: (its ``invoices`` resource), Marketing ``marketing``, Helpdesk
#: ``helpdesk``, Voice ``voice``, billing the ``billing`` resource. A grant
#: on a module or resource the host has not registered is skipped, so a
#: template gains access as the host adds the module, never before.
CRM_MODULES = ("sales", "clients", "work")


def _module_grants(modules: tuple[str, ...], actions: tuple[str, ...], scope: str = "all",
                   condition: Any = None) -> list[tuple[str, str, str, Any]]:
    return [(f"module:{m}", a, scope, condition) for m in modules for a in actions]


#: A role a host may add to its templates (the demo does): the whole pipeline of
#: the members assigned to the holder (the team scope), and the team's members:
#: invite into the holder's own department, give roles no wider than their
#: own (never Owner or Admin), deactivate and reactivate the members assigned
#: to them (see :mod:`crm_rbac_plugin.team.checks`). Removing the ``members``
#: grants but ``view`` (one edit of the role) gives ``002``'s stricter
#: variant, where only Owners and Admins manage members.
MANAGER: dict[str, Any] = {
    "key": "manager", "name": "Manager",
    "description": "Works the whole pipeline of the members assigned to them.",
    "grants": [("*", a, "team", None) for a in (*CRUD, "export")]
              + [("members", "view", "all", None), ("members", "create", "department", None),
                 ("members", "edit", "team", None)]
              + _module_grants(("accounting",), EDIT, "team")
              + _module_grants(("marketing", "helpdesk", "voice"), FULL, "team")}

#: Records that have an owner (the resource's owner column is set): with the
#: ``own`` scope, only the records assigned to the member, not the unowned
#: ones every viewer sees (``RBAC_UNOWNED_VISIBLE``).
OWNED = "owned"

#: Roles a host may seed (``RBAC_ROLE_TEMPLATES = defaults.CATALOGUE``) and that
#: the role-create page offers as a starting point: ``003``'s nine, ``000``'s
#: Junior Rep, Client Success and closed-deals Finance, ``001``'s Guest.
CATALOGUE_EXTRA: list[dict[str, Any]] = [
    {"key": "sales", "name": "Sales",
     "description": "Works the whole CRM; reads marketing and the helpdesk.",
     "grants": _module_grants(CRM_MODULES, FULL) + _module_grants(("marketing", "helpdesk"), VIEW)
               + _module_grants(("voice",), EDIT)},
    {"key": "marketing", "name": "Marketing",
     "description": "Runs marketing; reads the CRM.",
     "grants": _module_grants(("marketing",), FULL) + _module_grants(CRM_MODULES, VIEW)},
    {"key": "finance_accounting", "name": "Finance & Accounting",
     "description": "Runs accounting; reads the CRM and the billing.",
     "grants": _module_grants(("accounting",), FULL) + _module_grants(CRM_MODULES, VIEW)
               + [("billing", "view", "all", None)]},
    {"key": "support", "name": "Support",
     "description": "Runs the helpdesk; reads the CRM and voice.",
     "grants": _module_grants(("helpdesk",), FULL) + _module_grants(CRM_MODULES, VIEW)
               + _module_grants(("voice",), VIEW)},
    {"key": "guest", "name": "Guest",
     "description": "Reads only the records assigned to them, for a limited time.",
     "grants": [("*", "view", "own", OWNED)]},
]


def _targets(registry: Registry, resource: str) -> list[Any]:
    """``*``: every resource with records; ``module:NAME``: that module's resources."""
    if resource == "*":
        return [r for r in registry if r.is_model]
    if resource.startswith("module:"):
        return [r for r in registry if r.module == resource.partition(":")[2]]
    return [registry.get(resource)] if resource in registry else []


def _condition(res: Any, condition: Any) -> Any:
    if condition == OWNED:
        return [{"field": res.owner_column, "op": "is_null", "value": False}] \
            if res.owner_column else None
    return condition


def expand_grants(registry: Registry, template: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    """Return a template's grants for the resources ``registry`` knows.

    A grant is left out where the resource does not take its scope
    (:attr:`.registry.Resource.scopes`): no access, never a wider scope; and
    for a resource of a module the template names in ``except_modules``
    (the Member's ``"*"`` does not reach Accounting).
    """
    out: list[tuple[str, str, str, Any]] = []
    seen: set[tuple[str, str]] = set()
    excluded = set(template.get("except_modules", ()))
    for resource, action, scope, condition in template["grants"]:
        for res in _targets(registry, resource):
            if res.module in excluded:
                continue
            actions = res.actions if action == "*" else (action,)
            for act in actions:
                if act in res.actions and scope in res.scopes and (res.name, act) not in seen:
                    seen.add((res.name, act))
                    out.append((res.name, act, scope, _condition(res, condition)))
    return out


def _catalogue() -> list[dict[str, Any]]:
    """``003``'s nine, then ``000``'s and ``001``'s roles, in the order the gallery shows them."""
    nine = [*ROLE_TEMPLATES[:2], MANAGER, *CATALOGUE_EXTRA[:4], *ROLE_TEMPLATES[2:]]
    return [*nine, *CATALOGUE_EXTRA[4:]]


#: ``003``'s nine roles and ``001``'s Guest (the demo adds ``000``'s Junior Rep,
#: Client Success and closed-deals Finance, which name its own resources).
CATALOGUE: list[dict[str, Any]] = _catalogue()

