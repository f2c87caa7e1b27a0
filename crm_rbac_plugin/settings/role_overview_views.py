"""The role × resource overview: how far each role reaches on each resource.

One read-only page (``roles.view``): a row per role, a column per resource,
and in each cell the widest scope the role (with what it inherits) grants
for ``view``, as a heat-map shade *and* a word, with a mark where an
explicit deny takes some of it back. It reads :func:`..queries.role_overview`
and changes nothing. A module the workspace's plan leaves out is marked: no
role reaches it while the plan stays.
"""

from __future__ import annotations

from typing import Any

from .. import queries
from ..decorators import require_permission
from ..pages import acting_access
from ..proxies import current_rbac
from ..registry import SCOPES
from .blueprint import bp, render


@bp.get("/roles/overview", endpoint="role_overview")
@require_permission("roles", "view")
def role_overview() -> Any:
    """Every role against every resource: the widest ``view`` scope, as a heat map."""
    rbac, access = current_rbac, acting_access()
    resources = queries.registry_order(rbac.registry)
    rows = queries.role_overview(rbac, queries.workspace_roles(rbac, access.workspace_id))
    workspace = rbac.db.session.get(rbac.models.Workspace, access.workspace_id)
    in_plan = set(queries.plan_modules(rbac, workspace.plan))
    legend = [("none", 0, "no access")] + [
        (scope, level, queries.SCOPE_WORDS[scope]) for level, scope in enumerate(SCOPES, 1)]
    return render("role_overview.html", resources=resources, rows=rows, legend=legend,
                  modules=queries.ordered_modules(rbac.registry), in_plan=in_plan)
