"""What templates get from the extension: ``rbac_can``, ``rbac_shared_from``, ``rbac_view_as``.

``rbac_picture_url()`` gives a layout's user menu the member's picture URL,
or None for their initials (see :func:`picture_url`).

Template helpers never break a page: outside any access context
``rbac_can`` answers False and ``rbac_shared_from`` None.

The workspace switcher macro reads the globals of :func:`install_globals`:
``rbac_workspaces()`` (empty for an anonymous user and in single-tenant
mode), ``rbac_workspace_id()`` and ``rbac_csrf_token()``. ``rbac_signed_in()``
says whether to show the signed-in layout: a session that still owes its
MFA code or enrolment (:func:`.security.stepup.owes_check`) holds only the
password and sees what an anonymous visitor sees, so ``rbac_can`` answers
False and ``rbac_workspaces()`` is empty for it too. They are Jinja
globals rather than context names because a macro imported without
``with context`` sees only globals.

``rbac_assets()`` returns the plugin's stylesheet and script tags the first
time a request asks and nothing afterwards: a host layout and the settings
layout may both call ``ui.assets()``, and a script included twice would bind
its handlers twice (two confirmation dialogs per click).
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Flask, g, url_for
from flask_wtf.csrf import generate_csrf
from markupsafe import Markup

from . import form_workspace, team, workspaces
from .errors import NoAccessContext
from .identity import request_state, signed_in_user
from .oversight import viewas
from .security.stepup import owes_check

if TYPE_CHECKING:
    from .interface import RBACProtocol


def template_context(rbac: RBACProtocol) -> dict[str, Any]:
    """Return the names every template of an app using ``rbac`` sees."""
    def rbac_can(action: str, resource: str | None = None, record: Any = None) -> bool:
        if owes_check():
            return False
        try:
            return rbac.can(action, resource, record)
        except NoAccessContext:
            return False

    def rbac_shared_from(record: Any) -> Any:
        try:
            return rbac.shared_from(record)
        except NoAccessContext:
            return None
    return {"rbac_can": rbac_can, "rbac": rbac, "rbac_view_as": viewas.banner(rbac),
            "rbac_shared_from": rbac_shared_from, "rbac_label": rbac.label}


def install_globals(rbac: RBACProtocol, app: Flask) -> None:
    """Add the workspace switcher's helpers to ``app``'s Jinja globals."""
    def rbac_workspaces() -> list[Any]:
        return [] if owes_check() else workspaces.switchable(rbac, signed_in_user())

    app.add_template_global(rbac_workspaces, "rbac_workspaces")
    app.add_template_global(rbac.current_workspace_id, "rbac_workspace_id")
    app.add_template_global(generate_csrf, "rbac_csrf_token")
    app.add_template_global(partial(form_workspace.field, rbac), "rbac_workspace_field")
    app.add_template_global(rbac_assets, "rbac_assets")
    app.add_template_global(lambda real=False: picture_url(rbac, real=real), "rbac_picture_url")
    app.add_template_global(rbac_signed_in, "rbac_signed_in")


def picture_url(rbac: RBACProtocol, *, real: bool = False) -> str | None:
    """The current member's picture URL for a layout's user menu, or None (initials).

    The member in force: while viewing as someone, the viewed member's (the
    menu says whom the app shows), or with ``real=True`` the viewer's own.
    """
    try:
        access = rbac.current_access()
    except NoAccessContext:
        return None
    if real and request_state().real_access is not None:
        access = request_state().real_access
    if access is None:
        return None
    return team.picture_urls(rbac, access, [access.membership_id]).get(access.membership_id)


def rbac_signed_in() -> bool:
    """Whether the request shows the signed-in layout: a user signed in whose session
    owes no MFA code or enrolment."""
    return signed_in_user() is not None and not owes_check()


def rbac_assets() -> Markup:
    """The plugin's ``<link>`` and ``<script>`` tags, once per request (see the module's docstring)."""
    if g.get("_rbac_assets_linked"):
        return Markup("")
    g._rbac_assets_linked = True
    css = url_for("rbac.static", filename="rbac/rbac.css")
    js = url_for("rbac.static", filename="rbac/rbac.js")
    return Markup('<link rel="stylesheet" href="{}">\n<script src="{}" defer></script>').format(css, js)
