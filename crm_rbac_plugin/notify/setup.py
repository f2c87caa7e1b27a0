"""Wiring: the session listeners, the signal receivers, inline delivery and the bell.

:func:`install` is called once per extension (with its session),
:func:`init_app` once per app. The bell's count is computed only when a
template calls ``rbac_bell()`` (the settings layout and a host's header),
once per request at most.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from flask import Flask, g, url_for
from werkzeug.routing import BuildError

from . import queue, receivers, sources
from .delivery import deliver_inline
from .inbox import UNREAD_CAP, own_access, unread_count

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Listen on the app's session and connect the notification signals."""
    sources.install(rbac, db_session)
    queue.install(rbac, db_session)
    receivers.connect(rbac)


def init_app(rbac: RBACProtocol, app: Flask) -> None:
    """Send committed mails after each request (``RBAC_NOTIFY_INLINE``); offer ``rbac_bell``."""
    app.after_request(partial(deliver_inline, rbac))
    app.context_processor(lambda: {"rbac_bell": partial(bell, rbac)})


def bell(rbac: RBACProtocol, once: bool = False) -> dict[str, Any] | None:
    """``{"count", "capped", "href"}`` for the signed-in member's bell, or None (nobody, or no page).

    Counted once per request (memoised on ``g``). ``once=True`` answers None
    after the first such call of the request: the host's header and the
    settings layout both ask, and a page shows a single bell (the first).
    """
    if once:
        if g.get("_rbac_bell_shown"):
            return None
        g._rbac_bell_shown = True
    if "_rbac_bell" in g:
        return g._rbac_bell  # type: ignore[no-any-return]
    result = None
    access = own_access(rbac)
    if access is not None:
        try:
            count = unread_count(rbac, access.membership_id)  # type: ignore[arg-type]
            result = {"count": count, "capped": count >= UNREAD_CAP,
                      "href": url_for("rbac_settings.notifications")}
        except BuildError:  # the settings pages are not mounted
            result = None
    g._rbac_bell = result
    return result
