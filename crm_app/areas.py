"""Sidebar links of the demo's optional areas (reports, accounting, ...).

Each area package registers its link with :func:`add_nav`; ``base.html``
shows those that :func:`area_nav` returns, i.e. whose ``visible`` check
passes for the current member. The check asks the plugin (plan and role
both apply), so a link is never shown to whom the page would refuse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, current_app

#: Key in ``app.extensions`` holding the registered links.
KEY = "crm_area_nav"


@dataclass(frozen=True)
class NavLink:
    """One sidebar link: its text, endpoint, icon, blueprint (for "active") and check."""

    label: str
    endpoint: str
    icon: str
    blueprint: str
    visible: Callable[[], bool]


def add_nav(app: Flask, link: NavLink) -> None:
    """Register ``link`` on ``app`` (and, the first time, the template function)."""
    if KEY not in app.extensions:
        app.extensions[KEY] = []
        app.context_processor(lambda: {"area_nav": area_nav})
    app.extensions[KEY].append(link)


def area_nav() -> list[NavLink]:
    """The links the current member may follow, in registration order."""
    return [link for link in current_app.extensions.get(KEY, []) if link.visible()]
