"""What the HTML page blueprints share: the settings layout and a bare confirm form.

Every page of the settings and oversight blueprints extends
``rbac/settings/_layout.html``. Each blueprint adds its own tabs to that
layout with :func:`add_tab` from its ``register(app)``, so no blueprint
names another one's endpoints, and a blueprint a host leaves out has no tab.
The tabs of one app are kept in ``app.extensions["rbac_tabs"]``, beside the
extension's state, in ``order``.

A tab shows when the current member may see it:

- ``permission="roles.view"``: the member may do that (``rbac.can``);
- ``owner=True``: the member is an Owner of the workspace;
- neither: the signed-in user is a member of the workspace.

It is highlighted on its own endpoint and on its ``highlight`` endpoints
(the pages under it, such as a role's edit page under Roles). Tabs are
grouped: ``group="workspace"`` (administration of the workspace) or
``group="personal"`` (the member's own pages: profile, API tokens), so the
layout shows the two apart. A tab that is administration for some members
and the member's own page for others (Approvals: an approver's queue, a
requester's own requests) names ``personal_without``: a member without that
permission finds it under their own pages. ``badge`` is a callable returning a count to
show beside the label (0 or None shows nothing), such as pending agreements;
``badge_label`` says what it counts ("pending", "unread").
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, render_template, request
from flask_wtf import FlaskForm

from .config import setting
from .errors import NoAccessContext
from .identity import signed_in_user
from .policy import Access, Decision
from .proxies import current_rbac
from .security.stepup import owes_check

#: Where an app keeps its tabs, in ``app.extensions``.
TABS_KEY = "rbac_tabs"
#: The navigation's groups, in the order the layout shows them, with their headings.
GROUPS = {"workspace": "Workspace administration", "personal": "Your account"}


@dataclass(frozen=True)
class Tab:
    """One link of the settings layout's navigation."""

    endpoint: str
    label: str
    order: int
    permission: str | None = None
    owner: bool = False
    highlight: tuple[str, ...] = ()
    group: str = "workspace"
    badge: Callable[[], int | None] | None = None
    badge_label: str = "pending"
    personal_without: str | None = None

    def group_for(self) -> str:
        """The group the current member finds the tab in (see ``personal_without``)."""
        if self.personal_without is not None and not can(self.personal_without):
            return "personal"
        return self.group

    def visible(self, access: Access | None) -> bool:
        """Whether the current member (``access``) sees the tab."""
        if self.permission is not None:
            return can(self.permission)
        if self.owner:
            return bool(access and access.is_owner)
        return access is not None


def add_tab(app: Flask, endpoint: str, label: str, *, order: int,
            permission: str | None = None, owner: bool = False,
            highlight: Iterable[str] = (), group: str = "workspace",
            badge: Callable[[], int | None] | None = None,
            badge_label: str = "pending", personal_without: str | None = None) -> Tab:
    """Add a tab for ``endpoint`` to the settings layout of ``app``.

    Tabs are shown by ``order``, then in the order they were added::

        add_tab(app, "rbac_settings.roles", "Roles", order=10, permission="roles.view",
                highlight=["rbac_settings.edit_role"])
    """
    if group not in GROUPS:
        raise ValueError(f"add_tab: group must be one of {sorted(GROUPS)}, not {group!r}")
    tab = Tab(endpoint, label, order, permission, owner, (endpoint, *highlight), group, badge,
              badge_label, personal_without)
    tabs: list[Tab] = app.extensions.setdefault(TABS_KEY, [])
    tabs.append(tab)
    tabs.sort(key=lambda t: t.order)
    return tab


def tabs_of(app: Flask) -> list[Tab]:
    """The tabs added to ``app``, in order."""
    return list(app.extensions.get(TABS_KEY, ()))


def layout_context() -> dict[str, Any]:
    """The settings layout's context: ``settings_nav``, ``settings_groups`` and ``rbac_show_flashes``.

    ``settings_nav`` lists the visible tabs; ``settings_groups`` the same
    tabs as ``(heading, tabs)`` pairs, one per group that has any. Each page
    blueprint registers this as its context processor.
    """
    access = current_rbac.current_access() if signed_in_user() is not None else None
    current = request.endpoint
    # A session owing its MFA code holds the password alone: no tab tells what its roles open.
    shown = [] if owes_check() else [tab for tab in tabs_of(current_app) if tab.visible(access)]
    nav = [{"endpoint": tab.endpoint, "label": tab.label, "current": current in tab.highlight,
            "group": tab.group_for(), "badge": tab.badge() if tab.badge else None,
            "badge_label": tab.badge_label}
           for tab in shown]
    groups = [(heading, [item for item in nav if item["group"] == key]) for key, heading in GROUPS.items()]
    return {"settings_nav": nav, "settings_groups": [(h, items) for h, items in groups if items],
            "rbac_show_flashes": show_flashes()}


def show_flashes() -> bool:
    """Whether the settings layout shows flashed messages itself.

    ``RBAC_SETTINGS_FLASHES`` None means "only while rbac/base.html is the
    plugin's own", which shows none; a host layout usually does.
    """
    configured = setting("RBAC_SETTINGS_FLASHES")
    if configured is not None:
        return bool(configured)
    own = os.path.join(os.path.dirname(__file__), "templates")
    filename = current_app.jinja_env.get_or_select_template("rbac/base.html").filename or ""
    return os.path.abspath(filename).startswith(os.path.abspath(own))


def acting_access() -> Access:
    """The current member's access; pages run behind a permission check, so it exists."""
    access = current_rbac.current_access()
    if access is None:  # pragma: no cover - require_permission refused already
        current_rbac.refuse(Decision(False, "You are not an active member of this workspace."))
    return access  # type: ignore[return-value]


def not_found() -> Any:
    """Answer 404 with the refusal page: an id of another workspace is not disclosed."""
    return current_rbac.refuse(Decision(False, "not found"), 404)


def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Render ``template`` with ``status``."""
    return render_template(template, **context), status


def can(permission: str) -> bool:
    """Whether the current member may ``permission`` (False outside a workspace)."""
    try:
        return bool(current_rbac.can(permission))
    except NoAccessContext:
        return False


class ConfirmForm(FlaskForm):
    """A POST with nothing but its CSRF token (remove, revoke ...)."""
