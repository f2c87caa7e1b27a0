"""Attachments on the CRM's records: the demo's routes and panel over ``crm_rbac_plugin.files``.

The plugin holds the table, the storage, the content checks and the access
rule; this package only binds them to URLs and to the record pages.
"""

from __future__ import annotations

from .views import init_app

__all__ = ["init_app"]
