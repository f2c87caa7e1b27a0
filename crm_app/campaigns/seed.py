"""Demo campaigns: two per workspace, each linked to leads of several owners.

Run by ``flask demo seed`` (``crm_app.seed.seed_demo``) inside ``rbac.system()``;
the rows are flushed here, inside that context, and the caller commits. A
Member then sees the campaigns they own, each with only the member leads
they may see.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..extensions import db
from ..models import Lead
from .models import Campaign

CAMPAIGNS = (
    ("Spring webinar invitations", "Join our spring webinar",
     "We are hosting a live session on pipeline hygiene. Save your seat."),
    ("Q3 renewal reminders", "Your renewal is coming up",
     "A short note before your renewal: reply with any questions."),
)


def seed_campaigns(workspaces: dict[str, Any], leads_per_campaign: int = 12) -> int:
    """Create the demo campaigns in every workspace of ``workspaces``; return how many."""
    made = 0
    for ws in workspaces.values():
        leads = list(db.session.scalars(sa.select(Lead).where(Lead.workspace_id == ws.id)
                                        .order_by(Lead.id).limit(leads_per_campaign * 2)))
        owners = [lead.owner_id for lead in leads if lead.owner_id is not None]
        for i, (name, subject, body) in enumerate(CAMPAIGNS):
            campaign = Campaign(workspace_id=ws.id, name=name, subject=subject, body=body,
                                owner_id=owners[i % len(owners)] if owners else None)
            campaign.leads = leads[i::2][:leads_per_campaign]
            db.session.add(campaign)
            made += 1
    db.session.flush()  # inside the caller's rbac.system(), where the writes are trusted
    return made
