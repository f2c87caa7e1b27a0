"""The files the oversight pages export: the audit trail and "who can" as CSV.

Each is made by one function, called by its page's view once the export
passed its permission and the approval gate, and by its producer when an
approved request is replayed as the requester (``via``, registered by
:func:`.views.register`); both write the same audited file. Every cell goes
through :mod:`..csvsafe`.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from werkzeug.datastructures import MultiDict

from .. import audit, csvsafe
from ..approvals import ExportFile
from ..errors import ValidationError
from ..pages import acting_access
from ..proxies import current_rbac
from . import history

#: The ``via`` of a who-can CSV waiting for approval (its producer's name).
WHO_CAN_EXPORT = "who_can"
#: The ``via`` of an audit trail CSV waiting for approval.
AUDIT_EXPORT = "audit"


def audit_events(filters: Mapping[str, Any]) -> list[Any]:
    """The events ``filters`` select, as the acting member may read them."""
    rbac, access = current_rbac, acting_access()
    return audit.as_read_by(rbac, access, rbac.db.session.scalars(
        audit.events_query(rbac, access.workspace_id, filters)))


def audit_file(events: list[Any], filters: Mapping[str, Any]) -> ExportFile:
    """The audit CSV of ``events``; audits the export."""
    rbac, ws = current_rbac, acting_access().workspace_id
    names = audit.load_names(rbac, ws, events)
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(audit.CSV_COLUMNS)
    for ev in events:
        writer.writerow(audit.csv_row(ev, names))
    rbac.audit("export", resource="audit", target=f"audit trail ({len(events)} rows)",
               rows=len(events), filters={k: str(v) for k, v in filters.items()})
    return ExportFile(f"audit-ws{ws}-{dt.date.today().isoformat()}.csv",
                      buffer.getvalue().encode("utf-8"))


def produce_approved_audit(payload: Mapping[str, Any]) -> ExportFile:
    """The audit CSV of an approved request: the request's filters, read as the
    requester may read the trail at approval."""
    args = MultiDict(parse_qsl(str(payload.get("query", "")), keep_blank_values=True))
    try:
        filters = audit.parse_filters(args)
    except ValueError as exc:
        raise ValidationError(str(exc), field="query") from exc
    return audit_file(audit_events(filters), filters)


def who_can_file(answer: Any) -> ExportFile:
    """The who-can CSV of ``answer``; audits the export."""
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(["member", "status", "can", "role", "inherited_from", "scope", "condition",
                     "path"])
    for p in answer.paths:
        writer.writerow([p.member, p.status, "yes" if p.allowed else "no", p.role,
                         p.inherited_from, p.scope, p.condition, p.text])
    for name in answer.shared_with:
        writer.writerow([f"members of {name}", "", "through sharing", "", "", "", "",
                         "a sharing agreement; their own role decides"])
    current_rbac.audit("export", resource="members", rows=len(answer.paths),
                       target=f"who can {answer.action} {answer.resource} "
                              f"({len(answer.paths)} rows)")
    return ExportFile(f"who-can-{answer.action}-{answer.resource}.csv",
                      buffer.getvalue().encode("utf-8"))


def produce_approved_who_can(payload: Mapping[str, Any]) -> ExportFile:
    """The who-can CSV of an approved request, as the requester sees it at approval."""
    rbac, access = current_rbac, acting_access()
    answer = history.who_can(rbac, access.workspace_id, str(payload.get("of", "")),
                             str(payload.get("action", "")))
    return who_can_file(answer)
