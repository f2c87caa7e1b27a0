"""The campaign pages: list, create, members (link, unlink, CSV), send, unsubscribe.

Every route but the unsubscribe pair is under the plugin's decorators: a
member without the right on any campaign gets a 403 (``require_permission``),
a campaign they cannot see is a 404 (``record_required``), one they see but
may not change a 403. Linking takes lead ids from the form and reads them
through the query filter (``service.link_leads``): a hidden lead is a 404
naming it and nothing is linked. The unsubscribe page needs no sign-in: the
signed token in its URL is the capability. Its GET only shows a confirm
form (mail scanners and link previews follow GET links, so GET must not
unsubscribe anyone); the POST (CSRF-protected) records the opt-out and is
idempotent.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, flash, redirect, render_template, request, url_for

from crm_rbac_plugin import PermissionDenied, csvsafe, gate, record_required, require_permission
from crm_rbac_plugin.approvals import ExportFile

from ..extensions import db
from ..models import Lead
from ..rbac_setup import rbac
from . import service
from .models import Campaign, campaign_lead
from .service import CampaignError

bp = Blueprint("campaigns", __name__, url_prefix="/campaigns")

#: Lead columns of the members table and CSV, left out when hidden from the member.
MEMBER_COLUMNS = (("name", "Name"), ("company", "Company"), ("email", "Email"),
                  ("status", "Status"))
NAME_MAX = 200
TEXT_MAX = 20_000


def member_columns() -> list[tuple[str, str]]:
    """The lead columns the member may see."""
    hidden = rbac.hidden_fields("leads")
    return [(key, title) for key, title in MEMBER_COLUMNS if key not in hidden]


def refused(exc: CampaignError, target: str) -> Any:
    """Answer a refused operation with its status: JSON for JSON clients, else a page
    naming the field and linking back. Nothing of the request is kept."""
    db.session.rollback()
    if request.accept_mimetypes.best == "application/json":
        return {"error": str(exc), "field": exc.field}, exc.status
    return render_template("campaigns/refused.html", message=str(exc), field=exc.field,
                           back=target), exc.status


@bp.get("/")
@require_permission("campaigns", "view")
def index() -> str:
    """The campaigns the member may see, newest first."""
    campaigns = db.session.scalars(sa.select(Campaign).order_by(Campaign.id.desc())).all()
    return render_template("campaigns/index.html", campaigns=campaigns,
                           hidden=rbac.hidden_fields("campaigns"))


@bp.post("/new")
@require_permission("campaigns", "create")
def create() -> Any:
    """Create a campaign from ``name``, ``subject`` and ``body`` (name required)."""
    name = request.form.get("name", "").strip()
    if not name or len(name) > NAME_MAX:
        return refused(CampaignError(f"name: required, at most {NAME_MAX} characters",
                                     field="name"), url_for(".index"))
    subject = request.form.get("subject", "").strip()[:NAME_MAX]
    body = request.form.get("body", "")[:TEXT_MAX]
    campaign = Campaign(name=name, subject=subject, body=body)
    db.session.add(campaign)
    db.session.commit()
    return redirect(url_for(".detail", id=campaign.id), 303)


@bp.get("/<int:id>")
@require_permission("campaigns", "view")
@record_required("campaigns", "view", name="campaign")
def detail(campaign: Campaign) -> str:
    """The campaign, its members the member may see, and the leads they may add."""
    members = list(campaign.leads)
    member_ids = {lead.id for lead in members}
    candidates = ([lead for lead in db.session.scalars(sa.select(Lead).order_by(Lead.id))
                   if lead.id not in member_ids] if rbac.can("edit", "campaigns", campaign)
                  else [])
    return render_template("campaigns/detail.html", campaign=campaign, members=members,
                           candidates=candidates, columns=member_columns(),
                           hidden=rbac.hidden_fields("campaigns"))


@bp.post("/<int:id>/leads")
@require_permission("campaigns", "edit")
@record_required("campaigns", "edit", name="campaign")
def link(campaign: Campaign) -> Any:
    """Add the leads of the form's ``lead_id`` values (all or none)."""
    target = url_for(".detail", id=campaign.id)
    try:
        added = service.link_leads(campaign, service.parse_lead_ids(request.form.getlist("lead_id")))
    except CampaignError as exc:
        return refused(exc, target)
    db.session.commit()
    flash(f"{len(added)} lead(s) added.", "success")
    return redirect(target, 303)


@bp.post("/<int:id>/leads/remove")
@require_permission("campaigns", "edit")
@record_required("campaigns", "edit", name="campaign")
def unlink(campaign: Campaign) -> Any:
    """Remove the lead of the form's ``lead_id`` from the campaign."""
    target = url_for(".detail", id=campaign.id)
    try:
        ids = service.parse_lead_ids(request.form.getlist("lead_id")[:1])
        service.unlink_lead(campaign, ids[0])
    except CampaignError as exc:
        return refused(exc, target)
    db.session.commit()
    flash("Lead removed.", "success")
    return redirect(target, 303)


@bp.post("/<int:id>/send")
@require_permission("campaigns", "send")
@record_required("campaigns", "send", name="campaign")
def send(campaign: Campaign) -> Any:
    """Send the campaign: judged and recorded first, mailed only once that is committed.

    Sending marks the campaign ``sent``, a change of the campaign, so it needs
    ``edit`` on it as well as ``send`` (403 otherwise, nothing sent). Over the
    rate limit it is a 429; a refusal at the flush (a read-only view-as) is
    raised before any mail; nothing is mailed unless the send's row and audit
    event are committed.
    """
    campaign_id = campaign.id
    target = url_for(".detail", id=campaign_id)
    if not rbac.can("edit", "campaigns", campaign):
        return refused(CampaignError("Sending marks the campaign sent, which needs the right "
                                     "to edit it", status=403), target)
    try:
        prepared = service.send(campaign)
        db.session.commit()
        result = prepared.result
        service.deliver(campaign_id, prepared)
    except CampaignError as exc:
        return refused(exc, target)
    skipped = result.skipped_unsubscribed + result.skipped_no_address
    flash(f"Sent to {result.sent} lead(s); {skipped} skipped (unsubscribed or no address).",
          "success")
    return redirect(target, 303)


@bp.post("/<int:id>/delete")
@require_permission("campaigns", "delete")
@record_required("campaigns", "delete", name="campaign")
def delete(campaign: Campaign) -> Any:
    """Delete the campaign; the database removes all its links (visible or not)."""
    db.session.delete(campaign)
    db.session.commit()
    flash("Campaign deleted.", "success")
    return redirect(url_for(".index"), 303)


def members_stmt(campaign_id: int, *columns: Any) -> sa.Select[Any]:
    """The campaign's member leads (or ``columns`` of them) as an *export*: the
    member's ``export`` criteria apply, and the statement joins both sides of
    the link table itself, as the link guard requires."""
    return (sa.select(*(columns or (Lead,)))
            .select_from(Lead)
            .join(campaign_lead, campaign_lead.c.lead_id == Lead.id)
            .join(Campaign, Campaign.id == campaign_lead.c.campaign_id)
            .where(Campaign.id == campaign_id)
            .execution_options(rbac_action="export"))


def members_file(campaign_id: int) -> ExportFile:
    """The CSV of the campaign's exportable members, visible columns only; audits it."""
    columns = member_columns()
    out = io.StringIO()
    writer = csvsafe.writer(out)
    writer.writerow(["id", *(title for _, title in columns)])
    rows: dict[Any, int] = {}
    for lead in db.session.scalars(members_stmt(campaign_id).order_by(Lead.id)):
        writer.writerow([lead.id, *(getattr(lead, key) for key, _ in columns)])
        rows[lead.workspace_id] = rows.get(lead.workspace_id, 0) + 1
    rbac.audit_export("leads", rows, target=f"members of campaign #{campaign_id}")
    return ExportFile(f"campaign-{campaign_id}-members.csv", out.getvalue().encode("utf-8"))


@bp.get("/<int:id>/members.csv")
@require_permission("leads", "export")
@require_permission("campaigns", "view")
@record_required("campaigns", "view", name="campaign")
def members_csv(campaign: Campaign) -> Response:
    """The campaign's members the member may *export*, visible columns only, audited.

    It is an export of leads, so it passes the same approval gate as
    ``/leads/export.csv``: the rows are counted first (same criteria) and
    over the workspace's threshold the request waits (``via="campaign"``;
    :func:`produce_approved_members` makes the file when it is approved).
    """
    count = db.session.scalar(members_stmt(campaign.id, sa.func.count(Lead.id)))
    gate.require(rbac, rbac.current_access(), "export",
                 {"resource": "leads", "via": "campaign", "campaign_id": campaign.id},
                 count=int(count or 0),
                 summary=f"Export {count} members of campaign #{campaign.id} as CSV")
    produced = members_file(campaign.id)
    db.session.commit()
    return Response(produced.content, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{produced.filename}"'})


def produce_approved_members(payload: Mapping[str, Any]) -> ExportFile:
    """The members CSV of an approved request, produced as the requester at approval.

    The requester must still see the campaign (the query filter reads it);
    the rows are the members they may export at that moment.
    """
    campaign_id = int(payload["campaign_id"])
    if db.session.scalar(sa.select(Campaign.id).where(Campaign.id == campaign_id)) is None:
        raise PermissionDenied(f"the requester may no longer see campaign #{campaign_id}",
                               resource="campaigns", action="view")
    return members_file(campaign_id)


@bp.get("/unsubscribe")
def unsubscribe_page() -> Any:
    """Show what the link would do and a confirm button; a bad token is a 400."""
    token = request.args.get("t", "")
    try:
        service.read_unsubscribe_token(token)
    except CampaignError as exc:
        return render_template("campaigns/unsubscribe.html", token="", error=str(exc)), 400
    return render_template("campaigns/unsubscribe.html", token=token, error="")


@bp.post("/unsubscribe")
def unsubscribe() -> Any:
    """Record the opt-out of the token's address (idempotent); a bad token is a 400."""
    try:
        new = service.unsubscribe(request.form.get("t", ""))
    except CampaignError as exc:
        return render_template("campaigns/unsubscribe.html", token="", error=str(exc)), 400
    return render_template("campaigns/unsubscribe.html", token="", error="", done=True,
                           already=not new)
