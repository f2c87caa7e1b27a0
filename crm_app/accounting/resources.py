"""The Accounting module: the ``invoices`` resource and its CRUD configuration.

Invoices reuse the demo's generic CRUD views (:func:`crm_app.crm.views.crud_blueprint`)
with an entry of their own, so list, detail, forms, CSV export and bulk delete
go through the same plugin decorators, query filter and flush guard as the
CRM records. The resource lives in module ``accounting``, which the Free and
Pro plans leave out (:data:`crm_app.accounting.PLANS`): there the plugin
refuses every action on it, to the Owner too, and the sidebar, the JSON API
and Flask-Admin hide it.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from wtforms import DateField, DecimalField, SelectChoice, SelectField, StringField
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from ..crm.choices import own_workspace
from ..crm.forms import RecordForm, StorableNumber, client_select, optional_int
from ..crm.resources import CLIENT, OWNER, Column, CrudConfig, Facet
from ..extensions import db
from ..models import Deal
from ..rbac_setup import rbac
from .models import INVOICE_STATUSES, Invoice

#: The resource's module; a plan must list it for anyone to reach invoices.
MODULE = "accounting"

#: Sending an invoice and voiding one are ``003``'s sensitive actions of Accounting:
#: moving an invoice to these statuses needs ``manage`` on it, besides ``create`` or
#: ``edit`` (the plugin's flush guard asks, on every path that writes invoices).
SENSITIVE_STATUSES = ("sent", "void")

rbac.register_resource("invoices", Invoice, module=MODULE, label="Invoices", actions=("bulk",),
                       sensitive={"status": SENSITIVE_STATUSES})


def deal_choices(current: int | None) -> list[SelectChoice]:
    """Deals of the workspace the member can see (the query is filtered), plus the invoice's
    current one (:mod:`crm_app.crm.choices`: a shared deal is never offered).

    A deal whose title is hidden from the member is named by its id.
    """
    if "title" in rbac.hidden_fields("deals"):
        rows = [(did, f"Deal #{did}") for did in db.session.scalars(
            db.select(Deal.id).where(own_workspace(Deal)).order_by(Deal.id))]
    else:
        rows = list(db.session.execute(db.select(Deal.id, Deal.title)
                                       .where(own_workspace(Deal)).order_by(Deal.title)))
    choices = [SelectChoice("", "— No deal —"), *(SelectChoice(str(i), t) for i, t in rows)]
    if current is not None and current not in {i for i, _ in rows}:
        choices.append(SelectChoice(str(current), "Current deal (not visible to you)"))
    return choices


class InvoiceForm(RecordForm):
    """An invoice; the deal's choices are the deals the member sees (filled on creation)."""

    number = StringField("Number", validators=[DataRequired(), Length(max=40)])
    client_id = client_select()
    deal_id = SelectField("Deal", coerce=optional_int)
    status = SelectField("Status", choices=[SelectChoice(s, s.title()) for s in INVOICE_STATUSES],
                         default="draft")
    amount = DecimalField("Amount", places=2, default=0,
                          validators=[InputRequired(message="Enter an amount (0 is fine)."),
                                      StorableNumber(Invoice.amount, "The amount"),
                                      NumberRange(min=0, max=9_999_999_999)])
    issued_on = DateField("Issued", validators=[Optional()])
    due_on = DateField("Due", validators=[Optional()])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        obj = kwargs.get("obj")
        self.deal_id.choices = deal_choices(getattr(obj, "deal_id", None))
        self.saved = (getattr(obj, "client_id", None), getattr(obj, "deal_id", None))

    def validate_deal_id(self, field: Any) -> None:
        """An invoice bills its deal's client: a deal of another client is refused.

        Checked when the client or the deal changes (an invoice saved before its
        deal moved to another client keeps its other fields editable). A deal
        without a client fits any invoice. Only a deal the form offers is looked
        at: WTForms runs this check after the choice was refused too, and a
        deal the member may not see must not tell its client.
        """
        client_id = self.client_id.data if "client_id" in self else self.saved[0]
        if field.errors or field.data is None or (client_id, field.data) == self.saved:
            return
        with rbac.system():  # the invoice's current deal may be hidden from the member
            deal_client = db.session.scalar(sa.select(Deal.client_id).where(Deal.id == field.data))
        if deal_client is not None and deal_client != client_id:
            raise ValidationError("This deal belongs to another client: choose the deal's "
                                  "client, or a deal of this invoice's client.")


INVOICES = CrudConfig(
    name="invoices", model=Invoice, form=InvoiceForm, label="Invoices", singular="invoice",
    icon="deals",
    columns=(Column("number", "Invoice", "title"), CLIENT, Column("status", "Status", "badge"),
             Column("amount", "Amount", "money"), Column("due_on", "Due", "date"), OWNER),
    details=(Column("deal", "Deal", "link", link="deals"), Column("issued_on", "Issued", "date")),
    search=("number",), eager=("owner", "client", "deal"),
    facet=Facet("status", "Status", INVOICE_STATUSES))
