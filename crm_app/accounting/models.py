"""Invoices: the Accounting module's records.

An invoice belongs to a workspace and an owner like every CRM record
(:class:`crm_app.models.WorkspaceRecord`) and may point at a client and a
deal. It is registered as the ``invoices`` resource of the ``accounting``
module (:mod:`crm_app.accounting.resources`), so the plugin's plan check
hides it from every member, the Owner included, of a workspace whose plan
does not include Accounting; nothing here filters by hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_rbac_plugin.fields import label

from ..extensions import db
from ..models import Client, Deal, WorkspaceRecord

#: An invoice's life: drafted, sent to the client, then paid or voided.
INVOICE_STATUSES = ("draft", "sent", "paid", "void")


class Invoice(WorkspaceRecord, db.Model):  # type: ignore[name-defined,misc]
    """A bill to a client, optionally for one deal, with its amount and status."""

    __tablename__ = "invoice"
    number: Mapped[str] = mapped_column(sa.String(40))
    client_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client.id", ondelete="SET NULL"), index=True)
    deal_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("deal.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(sa.String(20), default="draft",
                                        info={"choices": INVOICE_STATUSES})
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=Decimal("0"))
    issued_on: Mapped[dt.date | None] = mapped_column()
    due_on: Mapped[dt.date | None] = mapped_column()
    client = relationship(Client)
    deal = relationship(Deal)

    #: The field that names a record on pages (see ``rbac.label``).
    __rbac_label__ = "number"

    def __str__(self) -> str:
        """The invoice number, or "Invoice #<id>" when it is hidden from the member."""
        return label(self)
