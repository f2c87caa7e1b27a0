"""What campaigns do, callable from views, the CLI and tests: link leads and send mail.

Access is the plugin's: leads are read through the query filter (a hidden
lead is "not found"), ``Campaign.leads`` only ever holds the member's
visible leads, and the flush guard (``crm_rbac_plugin.links``) refuses a
link to a lead the member cannot see, whatever path loaded it. This module
adds the rules of a send:

* a mail goes only to a member lead the sender may view and whose ``email``
  field is not hidden from them (``rbac.hidden_fields("leads")``), with an
  address, that has not unsubscribed from the workspace;
* sends are rate-limited per workspace and per sender, counted from
  ``campaign_send`` rows of the last hour (so the limit holds across
  workers); a send over either limit is refused whole, before any mail;
* every send is audited with its counts (``campaign.send``: sent, skipped
  hidden, skipped unsubscribed, skipped without an address).

The unsubscribe link carries a token signed with the app's secret key
(itsdangerous, its own salt) that names the workspace and the address: it
is the capability, so no sign-in is needed, and it reveals nothing a
recipient does not already know (their own address).
"""

from __future__ import annotations

import datetime as dt
import smtplib
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for
from flask_mail import Message
from itsdangerous import BadSignature, URLSafeSerializer

from crm_rbac_plugin.errors import PermissionDenied
from crm_rbac_plugin.inputs import is_digits
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.urls import absolute_url

from ..extensions import db, mail
from ..models import Lead
from ..rbac_setup import rbac
from .models import Campaign, CampaignSend, CampaignUnsubscribe, campaign_lead

#: The salt of unsubscribe tokens: a token of another kind never verifies here.
UNSUBSCRIBE_SALT = "crm-campaign-unsubscribe"

#: Config keys of the demo (not the plugin's): mails per workspace and sends per
#: sender in any rolling hour.
DEFAULTS: dict[str, Any] = {
    "CRM_CAMPAIGN_MAILS_PER_HOUR": 500,
    "CRM_CAMPAIGN_SENDS_PER_HOUR": 5,
}


class CampaignError(Exception):
    """A refused campaign operation: its HTTP status, the field it names, a message."""

    def __init__(self, message: str, *, status: int = 400, field: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class SendResult:
    """The counts of one send (what the audit event and the page report)."""

    sent: int
    skipped_hidden: int
    skipped_unsubscribed: int
    skipped_no_address: int


def parse_lead_ids(raw: list[str]) -> list[int]:
    """Return the lead ids of a form, refusing anything that is not a positive id (400)."""
    ids: list[int] = []
    for value in raw:
        text = value.strip()
        if not is_digits(text) or not 0 < int(text) < 2**31:
            raise CampaignError(f"lead_id: {value[:20]!r} is not a lead id", field="lead_id")
        ids.append(int(text))
    if not ids:
        raise CampaignError("lead_id: choose at least one lead", field="lead_id")
    return ids


def link_leads(campaign: Campaign, lead_ids: list[int]) -> list[Lead]:
    """Add the leads ``lead_ids`` to ``campaign``; all or none (the caller commits).

    Leads are read through the query filter: an id the member may not see
    (another workspace's, another member's) is refused with a 404 naming it,
    as an id that does not exist is, and nothing is linked. A lead another
    workspace shares with the member's is visible but not theirs to mail:
    it is refused with a 403 naming it. The flush guard checks the link again
    (``edit`` on the campaign, ``view`` on the lead, one workspace).
    """
    found = {lead.id: lead for lead in db.session.scalars(
        sa.select(Lead).where(Lead.id.in_(lead_ids)))}
    missing = [i for i in lead_ids if i not in found]
    foreign = [i for i in lead_ids if i in found
               and found[i].workspace_id != campaign.workspace_id]
    if foreign and not missing:
        raise CampaignError(f"lead_id: lead #{foreign[0]} belongs to another workspace "
                            "(shared with yours, not yours to add to a campaign)",
                            status=403, field="lead_id")
    if missing:
        raise CampaignError(f"lead_id: lead #{missing[0]} not found", status=404,
                            field="lead_id")
    added = [found[i] for i in dict.fromkeys(lead_ids) if found[i] not in campaign.leads]
    campaign.leads.extend(added)
    db.session.flush()
    return added


def unlink_lead(campaign: Campaign, lead_id: int) -> None:
    """Remove a visible lead from ``campaign`` (404 naming it when it is not a visible member)."""
    lead = next((lead for lead in campaign.leads if lead.id == lead_id), None)
    if lead is None:
        raise CampaignError(f"lead_id: lead #{lead_id} is not a member of this campaign",
                            status=404, field="lead_id")
    campaign.leads.remove(lead)
    db.session.flush()


def unsubscribe_token(workspace_id: int, email: str) -> str:
    """Return the signed token of an unsubscribe link."""
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT).dumps(
        {"w": workspace_id, "e": email.strip().lower()})


def read_unsubscribe_token(token: str) -> tuple[int, str]:
    """Return ``(workspace_id, email)`` of a token; a forged or damaged one is a 400."""
    try:
        data = URLSafeSerializer(current_app.config["SECRET_KEY"],
                                 salt=UNSUBSCRIBE_SALT).loads(token)
        return int(data["w"]), str(data["e"])
    except (BadSignature, KeyError, TypeError, ValueError) as exc:
        raise CampaignError("t: this unsubscribe link is not valid", field="t") from exc


def unsubscribe(token: str) -> bool:
    """Record the opt-out a token names; return False when it was already recorded.

    Idempotent: a second confirmation changes nothing. Runs in
    ``rbac.system()``: the person has no account, and the token is their
    authority over their own address alone.
    """
    workspace_id, email = read_unsubscribe_token(token)
    with rbac.system():
        if is_unsubscribed(workspace_id, email):
            return False
        db.session.add(CampaignUnsubscribe(workspace_id=workspace_id, email=email))
        rbac.audit("campaign.unsubscribe", workspace_id=workspace_id,
                     resource="campaigns", target="an address unsubscribed",
                     actor_ids=(None, None))
        db.session.commit()
    return True


def is_unsubscribed(workspace_id: int, email: str) -> bool:
    """Whether ``email`` opted out of the workspace's campaign mail."""
    return db.session.scalar(sa.select(CampaignUnsubscribe.id).where(
        CampaignUnsubscribe.workspace_id == workspace_id,
        CampaignUnsubscribe.email == email.strip().lower())) is not None


def check_rate(workspace_id: int, sender_id: int | None, mails: int) -> None:
    """Refuse (429) a send that would pass the workspace's or the sender's hourly limit."""
    since = utcnow() - dt.timedelta(hours=1)
    recent = sa.select(sa.func.count(CampaignSend.id), sa.func.coalesce(
        sa.func.sum(CampaignSend.sent), 0)).where(CampaignSend.at >= since)
    _, ws_mails = db.session.execute(
        recent.where(CampaignSend.workspace_id == workspace_id)).one()
    own_sends, _ = db.session.execute(recent.where(
        CampaignSend.workspace_id == workspace_id,
        CampaignSend.sender_id == sender_id)).one()
    per_sender = current_app.config["CRM_CAMPAIGN_SENDS_PER_HOUR"]
    per_workspace = current_app.config["CRM_CAMPAIGN_MAILS_PER_HOUR"]
    if own_sends >= per_sender:
        raise CampaignError(f"Rate limit: you may send {per_sender} campaigns per hour; "
                            "try again later", status=429)
    if ws_mails + mails > per_workspace:
        raise CampaignError(f"Rate limit: this workspace may send {per_workspace} campaign "
                            f"mails per hour ({ws_mails} sent); try again later", status=429)


@dataclass(frozen=True)
class PreparedSend:
    """A recorded send and its mails, which leave only after the caller commits."""

    send_id: int
    result: SendResult
    messages: list[Message]


def send(campaign: Campaign) -> PreparedSend:
    """Judge and record a send of ``campaign``; return its mails, not yet sent.

    Every refusal comes before anything leaves: the rate limit (429), then
    the flush of the ``campaign_send`` row, the campaign's ``sent`` status
    and the ``campaign.send`` audit event, which the flush guard judges (a
    sender who may not edit the campaign, a read-only view-as) and which
    raises here. The caller has checked ``campaigns.send`` and ``edit`` on
    the campaign, commits, and only then calls :func:`deliver`, so a send
    that is not recorded (and counted by the rate limit) mails nobody.
    """
    access = rbac.current_access()
    if access is None:
        raise PermissionDenied("No member to send as.", resource="campaigns", action="send")
    with rbac.system():
        linked = db.session.scalar(sa.select(sa.func.count()).select_from(campaign_lead).where(
            campaign_lead.c.campaign_id == campaign.id)) or 0
    visible = list(campaign.leads)  # the query filter: only leads the sender may view
    if "email" in rbac.hidden_fields("leads"):
        recipients: list[Lead] = []
        hidden = linked
    else:
        recipients = visible
        hidden = linked - len(visible)
    no_address = [lead for lead in recipients if not (lead.email or "").strip()]
    recipients = [lead for lead in recipients if lead not in no_address]
    unsubscribed = [lead for lead in recipients
                    if is_unsubscribed(access.workspace_id, lead.email)]
    recipients = [lead for lead in recipients if lead not in unsubscribed]
    check_rate(access.workspace_id, access.user_id, len(recipients))
    result = SendResult(len(recipients), hidden, len(unsubscribed), len(no_address))
    row = CampaignSend(
        workspace_id=access.workspace_id, campaign_id=campaign.id, sender_id=access.user_id,
        sent=result.sent, skipped_hidden=result.skipped_hidden,
        skipped_unsubscribed=result.skipped_unsubscribed)
    db.session.add(row)
    campaign.status = "sent"
    rbac.audit("campaign.send", resource="campaigns", target=f"campaign #{campaign.id}",
                 sent=result.sent, skipped_hidden=result.skipped_hidden,
                 skipped_unsubscribed=result.skipped_unsubscribed,
                 skipped_no_address=result.skipped_no_address)
    db.session.flush()
    # Built now: the leads expire at the commit that comes before delivery.
    return PreparedSend(row.id, result, [message(campaign, lead, access.workspace_id)
                                 for lead in recipients])


def deliver(campaign_id: int, prepared: PreparedSend) -> int:
    """Mail a committed send's messages; return how many left.

    A failure part-way (the mail server refuses or drops the connection)
    stops the send: the mails already handed over stay sent, the rest are
    not retried (a retry is a new send, counted by the rate limit). The
    send's row then holds the number that left, so the workspace limit counts
    real mails, and a ``campaign.send_failed`` event records both numbers;
    that is committed and :class:`CampaignError` (502) names them.
    """
    delivered = 0
    try:
        with mail.connect() as conn:
            for msg in prepared.messages:
                conn.send(msg)
                delivered += 1
    except (OSError, smtplib.SMTPException) as exc:
        db.session.rollback()
        with rbac.system():
            row = db.session.get(CampaignSend, prepared.send_id)
            if row is not None:
                row.sent = delivered
        rbac.audit("campaign.send_failed", resource="campaigns",
                   target=f"campaign #{campaign_id}", sent=delivered,
                   failed=len(prepared.messages) - delivered, error=type(exc).__name__)
        db.session.commit()
        raise CampaignError(f"The mail server failed after {delivered} of "
                            f"{len(prepared.messages)} mail(s); the rest were not sent",
                            status=502) from exc
    return delivered


def message(campaign: Campaign, lead: Lead, workspace_id: int) -> Message:
    """The mail to one lead: the campaign's text and the lead's unsubscribe link."""
    # On the configured address (RBAC_BASE_URL), as every other mail: the sender's Host
    # header names whatever host their request came in on.
    link = absolute_url(url_for("campaigns.unsubscribe",
                                t=unsubscribe_token(workspace_id, lead.email)))
    body = f"{campaign.body}\n\n--\nUnsubscribe: {link}\n"
    return Message(subject=campaign.subject or campaign.name, recipients=[lead.email],
                   body=body, extra_headers={"List-Unsubscribe": f"<{link}>"})
