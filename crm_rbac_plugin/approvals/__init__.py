"""Approval workflows for sensitive operations.

A workspace's approval policy (:mod:`.policy`) names operations that wait
for approval; the services ask the gate (:mod:`crm_rbac_plugin.gate`), which
records a request (:mod:`.requests`); approvers decide it and the final
approval replays the operation once, as the requester (:mod:`.decisions`,
:mod:`.executors`).
"""

from __future__ import annotations

from .asking import ask
from .changes import StaleRequest, is_stale
from .decisions import approve, cancel, claim, download, execute, expire_due, reject
from .departures import install
from .executors import ExportFile
from .policy import Settings, save, settings_for
from .requests import approvers, link, listing, may_decide, may_see, request_in, to_json, visible
from .setup import export_producer, init_app
from .wording import describe as describe_payload

__all__ = ["ExportFile", "Settings", "StaleRequest", "approve", "approvers", "ask", "cancel", "claim",
           "describe_payload", "download", "execute", "expire_due", "export_producer", "init_app", "install",
           "is_stale", "link", "listing",
           "may_decide", "may_see", "reject", "request_in", "save", "settings_for", "to_json", "visible"]
