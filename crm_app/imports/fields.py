"""Which columns of leads, clients and deals a CSV may fill, and how each is read.

The ``owner_id`` field takes a member's email (or a name only one member
bears, as the demo's exports write it; "Unassigned" is no owner); every other field is a plain
column of the model, bounded as the record's form bounds it (the lead
sources and regions of its select, the deal amount's range), so an import
writes no value the form would refuse. A field hidden or read-only for the importer by the
workspace's field rules is not offered for mapping, and a value for it is an
error on its row (``crm_rbac_plugin.imports``).
"""

from __future__ import annotations

from decimal import Decimal

from crm_rbac_plugin.imports import ImportField

from ..models import DEAL_STAGES, LEAD_SOURCES, LEAD_STATUSES, REGIONS

#: A column headed "Owner email" is preferred to one headed "Owner" (which may hold names).
OWNER = ImportField("owner_id", "Owner", "owner", headers=("Owner email",))

FIELDS: dict[str, tuple[ImportField, ...]] = {
    "leads": (
        ImportField("name", "Name", required=True, max_length=200),
        ImportField("company", "Company", max_length=200),
        ImportField("email", "Email", "email", max_length=255),
        ImportField("status", "Status", "choice", choices=LEAD_STATUSES),
        ImportField("source", "Source", "choice", choices=LEAD_SOURCES),
        OWNER),
    "clients": (
        ImportField("name", "Name", required=True, max_length=200),
        ImportField("email", "Email", "email", max_length=255),
        ImportField("phone", "Phone", "phone", max_length=40),
        ImportField("region", "Region", "choice", choices=REGIONS),
        OWNER),
    "deals": (
        ImportField("title", "Title", required=True, max_length=200, headers=("Deal",)),
        ImportField("stage", "Stage", "choice", choices=DEAL_STAGES),
        ImportField("amount", "Amount", "decimal", places=2, max_digits=12,
                    minimum=Decimal(0), maximum=Decimal(9_999_999_999)),
        ImportField("close_date", "Expected close", "date"),
        OWNER),
}
