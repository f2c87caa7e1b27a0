"""Campaigns and email campaigns: leads linked many-to-many, mail sent through Flask-Mail.

``campaigns`` is a protected resource of the ``marketing`` module with the
extra action ``send``; the plugin's link rules (``crm_rbac_plugin.links``)
filter and guard the ``campaign_lead`` table. See ``service`` for the rules
of a send and ``views`` for the pages.
"""

from __future__ import annotations

from flask import Flask

from crm_rbac_plugin import approvals

from ..rbac_setup import rbac
from .models import Campaign
from .service import DEFAULTS
from .views import bp, produce_approved_members

rbac.register_resource("campaigns", Campaign, module="marketing", label="Campaigns",
                       actions=("send",))


def init_app(app: Flask) -> None:
    """Mount the campaign pages, their export producer and the demo's campaign limits."""
    for key, value in DEFAULTS.items():
        app.config.setdefault(key, value)
    app.register_blueprint(bp)
    # A members CSV over the export threshold waits; approved, this produces it.
    approvals.export_producer(app, produce_approved_members, via="campaign")


__all__ = ["Campaign", "init_app"]
