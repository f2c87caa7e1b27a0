"""The admin home page: what the member can reach from ``/admin``, with counts.

Every figure is one the member may see: a resource's count goes through the
panel's own scoped count query (the query filter adds the member's
criteria, exactly as on the panel's list), and the members, roles and open
invitations are counted only for a member who may view members or roles.
While an Owner or Admin views the workspace as someone, the figures are
that member's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import abort, current_app, redirect, request, url_for
from flask_admin import AdminIndexView, expose

from .. import team
from ..errors import NoAccessContext, RBACError
from ..identity import signed_in_user
from ..loader import BYPASS
from ..oversight import viewas
from ..urls import safe_next

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["HomeCount", "RBACAdminIndexView"]


@dataclass(frozen=True)
class HomeCount:
    """One tile of the home page: a label, how many, and the page listing them."""

    label: str
    count: int
    url: str | None


class RBACAdminIndexView(AdminIndexView):
    """``/admin``: counts of the panels the member may open, and of the team.

    ``rbac`` is keyword-only, as for :class:`.RBACModelView`; ``home_url`` is
    where "Back to the app" leads (None: the application's root).
    """

    def __init__(self, *, rbac: RBACProtocol, home_url: str | None = None,
                 **kwargs: Any) -> None:
        kwargs.setdefault("template", "rbac/admin/index.html")
        super().__init__(**kwargs)
        self.rbac = rbac
        self.home_url = home_url

    def is_accessible(self) -> bool:
        return signed_in_user() is not None

    def inaccessible_callback(self, name: str, **kwargs: Any) -> Any:
        manager = getattr(current_app, "login_manager", None)
        login_view = getattr(manager, "login_view", None)
        if not login_view:
            abort(401)
        here = request.script_root + request.full_path.rstrip("?")
        return redirect(url_for(login_view, next=safe_next(here, "/")))

    def _access(self) -> Any:
        try:
            return self.rbac.current_access()
        except (NoAccessContext, RBACError):
            return None

    def _can(self, action: str, resource: str) -> bool:
        try:
            return bool(self.rbac.can(action, resource))
        except (NoAccessContext, RBACError):
            return False

    def panel_counts(self) -> list[HomeCount]:
        """The records of every panel of a protected resource the member may open."""
        out = []
        for view in self.admin._views:  # type: ignore[union-attr]
            if not getattr(view, "_protected", False) or not view.is_accessible():
                continue
            count = view.get_count_query().scalar() or 0
            out.append(HomeCount(view.name, int(count), url_for(f"{view.endpoint}.index_view")))
        return out

    def team_counts(self, access: Any) -> list[HomeCount]:
        """Members, roles and open invitations, for a member who may view them."""
        m = self.rbac.models
        session = self.rbac.db.session
        out = []
        settings = "rbac_settings.members" in current_app.view_functions
        if self._can("view", "members"):
            members = session.scalar(sa.select(sa.func.count()).select_from(m.Membership).where(
                m.Membership.workspace_id == access.workspace_id,
                m.Membership.status == "active").execution_options(**BYPASS)) or 0
            invitations = len(team.open_invitations(self.rbac, access.workspace_id))
            out.append(HomeCount("Members", members,
                                 url_for("rbac_settings.members") if settings else None))
            out.append(HomeCount("Open invitations", invitations,
                                 url_for("rbac_settings.members", status="pending")
                                 if settings else None))
        if self._can("view", "roles"):
            roles = session.scalar(sa.select(sa.func.count()).select_from(m.Role).where(
                m.Role.workspace_id == access.workspace_id).execution_options(**BYPASS)) or 0
            out.append(HomeCount("Roles", roles, url_for("rbac_settings.roles")
                                 if "rbac_settings.roles" in current_app.view_functions
                                 else None))
        return out

    @expose("/")
    def index(self) -> Any:
        access = self._access()
        workspace = (self.rbac.db.session.get(self.rbac.models.Workspace, access.workspace_id)
                     if access is not None else None)
        self._template_args.update(
            rbac_host_base_template=self.admin.theme.base_template,  # type: ignore[union-attr]
            admin_base_template="rbac/admin/base.html",
            rbac_admin={"workspace": workspace, "view_as": viewas.banner(self.rbac),
                        "home_url": self.home_url or request.script_root + "/"})
        panels = self.panel_counts() if access is not None else []
        people = self.team_counts(access) if access is not None and access.active else []
        return self.render(self._template, panels=panels, people=people, workspace=workspace)
