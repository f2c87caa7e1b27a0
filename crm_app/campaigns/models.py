"""Campaigns, their members (leads, through a many-to-many table), sends and opt-outs.

``campaign`` is a protected resource (``campaigns``, module ``marketing``);
``campaign_lead`` links it to protected leads. The plugin's link rules
(``crm_rbac_plugin.links``) keep hidden leads out of ``Campaign.leads``
(lazy, selectin and joined loads get the lead criteria) and refuse linking a
lead the member cannot see. Both foreign keys cascade in the database and
the relationship is ``passive_deletes``: deleting a campaign removes every
link row, including those of leads the member does not see (the ORM only
knows the links it loaded).

``campaign_send`` records each send with its counts; ``campaign_unsubscribe``
holds the addresses that opted out, per workspace (a lead's own record is not
touched: the person unsubscribing has no account and may not write CRM data).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crm_rbac_plugin.fields import label
from crm_rbac_plugin.models import utcnow

from ..extensions import db
from ..models import Lead, WorkspaceRecord

CAMPAIGN_STATUSES = ("draft", "sent")

campaign_lead = sa.Table(
    "campaign_lead", db.metadata,
    sa.Column("campaign_id", sa.ForeignKey("campaign.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("lead_id", sa.ForeignKey("lead.id", ondelete="CASCADE"), primary_key=True,
              index=True),
)


class Campaign(WorkspaceRecord, db.Model):  # type: ignore[name-defined,misc]
    """A marketing campaign: a mail (subject, body) and the leads it goes to."""

    __tablename__ = "campaign"
    name: Mapped[str] = mapped_column(sa.String(200))
    subject: Mapped[str] = mapped_column(sa.String(200), default="")
    body: Mapped[str] = mapped_column(sa.Text, default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="draft",
                                        info={"choices": CAMPAIGN_STATUSES})
    leads = relationship(Lead, secondary=campaign_lead, passive_deletes=True,
                         order_by=Lead.id)

    #: The field that names a record on pages (see ``rbac.label``).
    __rbac_label__ = "name"

    def __str__(self) -> str:
        """The label field, or "Campaign #<id>" when it is hidden from the member."""
        return label(self)


class CampaignSend(db.Model):  # type: ignore[name-defined,misc]
    """One send of a campaign by a member, with what happened to each member lead.

    The rate limit counts these rows' ``sent`` per workspace and per sender in
    the last hour, so it holds across workers.
    """

    __tablename__ = "campaign_send"
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        sa.ForeignKey("rbac_workspace.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[int] = mapped_column(sa.ForeignKey("campaign.id", ondelete="CASCADE"),
                                             index=True)
    sender_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    sent: Mapped[int] = mapped_column(default=0)
    skipped_hidden: Mapped[int] = mapped_column(default=0)
    skipped_unsubscribed: Mapped[int] = mapped_column(default=0)


class CampaignUnsubscribe(db.Model):  # type: ignore[name-defined,misc]
    """An address that asked for no more campaign mail from a workspace."""

    __tablename__ = "campaign_unsubscribe"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "email",
                                          name="uq_campaign_unsubscribe_ws_email"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        sa.ForeignKey("rbac_workspace.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(sa.String(255))
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
