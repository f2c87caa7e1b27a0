"""The demo CRM's built-in roles: the plugin's catalogue (``defaults.CATALOGUE``).

``create_app`` sets them as ``RBAC_ROLE_TEMPLATES``, so every new workspace
of the demo starts with them (see ``crm_rbac_plugin/defaults.py`` for the
entry format).
"""

from __future__ import annotations

from typing import Any

from crm_rbac_plugin.defaults import CATALOGUE_EXTRA, MANAGER, ROLE_TEMPLATES

CLOSED_DEALS = [{"field": "stage", "op": "in", "value": ["won", "lost"]}]

SALES_ROLES: list[dict[str, Any]] = [
    {"key": "finance", "name": "Finance",
     "description": "Views and exports all closed deals for revenue reconciliation; "
                    "edits nothing.",
     "grants": [("deals", "view", "all", CLOSED_DEALS), ("deals", "export", "all", CLOSED_DEALS),
                ("invoices", "*", "all", None)]},
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


#: Who reads the reports and charts (``crm_app.reports``), by role key. The
#: resources have no records, so "all" is their only scope; the Owner has
#: everything the plan includes. The Member reads them too: the figures are
#: computed over the records each member sees, so theirs are personal (seed
#: 002: reports "Personal" for a user; 001: staff have "read-only access to
#: reports"). The sales roles have none.
REPORT_GRANTS: dict[str, list[tuple[str, str, str, Any]]] = {
    "admin": [("reports", "*", "all", None), ("analytics", "*", "all", None)],
    "manager": [("reports", "view", "all", None), ("reports", "export", "all", None),
                ("analytics", "view", "all", None)],
    "viewer": [("reports", "view", "all", None), ("analytics", "view", "all", None)],
    "member": [("reports", "view", "all", None), ("analytics", "view", "all", None)],
    "finance": [("reports", "view", "all", None), ("reports", "export", "all", None),
                ("analytics", "view", "all", None)],
}


def _with_reports(template: dict[str, Any]) -> dict[str, Any]:
    """``template`` with its role's report grants added."""
    extra = REPORT_GRANTS.get(template["key"], [])
    return {**template, "grants": [*template["grants"], *extra]} if extra else template


def _with_manager(templates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plugin's roles with the Manager after the Admin, as the role pages list them."""
    out: list[dict[str, Any]] = []
    for template in templates:
        out.append(template)
        if template["key"] == "admin":
            out.append(MANAGER)
    return out


#: Owner, Admin, Manager, Member, Viewer, Finance (closed deals), Junior Rep,
#: Client Success, then the rest of the catalogue: Sales, Marketing, Finance
#: (accounting), Support, Guest; each with its reports grants.
CRM_ROLE_TEMPLATES: list[dict[str, Any]] = [
    _with_reports(t) for t in [*_with_manager(ROLE_TEMPLATES), *SALES_ROLES, *CATALOGUE_EXTRA]]
