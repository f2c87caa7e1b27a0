"""``current_rbac``: the extension registered on the current app.

Blueprints, the CLI and the hooks registered on the app reach the extension
through this proxy (as Flask-Security's ``current_security``); services and
enforcement receive it as an argument. Code on the per-request hot path
unwraps it once with :func:`get_rbac`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from flask import current_app
from werkzeug.local import LocalProxy

if TYPE_CHECKING:
    from .interface import RBACProtocol


def get_rbac() -> RBACProtocol:
    """Return the extension registered on the current app (no proxy)."""
    return cast("RBACProtocol", current_app.extensions["rbac"].rbac)


#: The extension registered on the current app.
current_rbac = cast("RBACProtocol", LocalProxy(get_rbac))
