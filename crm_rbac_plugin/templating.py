"""What templates get from the extension: ``rbac_can``, ``rbac_shared_from``, ``rbac_view_as``.

Template helpers never break a page: outside any access context
``rbac_can`` answers False and ``rbac_shared_from`` None.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import NoAccessContext
from .oversight import viewas

if TYPE_CHECKING:
    from .interface import RBACProtocol


def template_context(rbac: RBACProtocol) -> dict[str, Any]:
    """Return the names every template of an app using ``rbac`` sees."""
    def rbac_can(action: str, resource: str | None = None, record: Any = None) -> bool:
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
