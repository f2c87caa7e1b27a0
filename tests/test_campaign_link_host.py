"""A campaign's unsubscribe link is on the configured address (``RBAC_BASE_URL``), like
every other mail link, never on the host the sender's request named."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.campaigns.models import Campaign
from crm_app.extensions import db, mail
from crm_app.rbac_setup import rbac
from tests.conftest import app_with_tables

BASE = "https://crm.example.com"


@pytest.fixture
def app() -> Iterator[Flask]:
    with app_with_tables("sqlite://", SERVER_NAME=None, RBAC_BASE_URL=BASE) as app:
        yield app


def test_the_unsubscribe_link_is_on_the_configured_address(world: SimpleNamespace,
                                                            login: Any) -> None:
    with rbac.system():
        lead = world.leads["member"]
        lead.email = "lead@leads.test"
        campaign = Campaign(workspace_id=world.ws.id, owner_id=world.users["owner"].id,
                            name="Spring", subject="Spring", body="Hello")
        campaign.leads = [lead]
        db.session.add(campaign)
        db.session.commit()
        campaign_id = campaign.id
    owner = login(world.users["owner"], world.ws)
    with mail.record_messages() as outbox:
        sent = owner.post(f"/campaigns/{campaign_id}/send", base_url="http://localhost")
    assert sent.status_code in (302, 303)
    assert outbox
    assert f"Unsubscribe: {BASE}/campaigns/unsubscribe?t=" in outbox[0].body
    assert "http://localhost/" not in outbox[0].body
    assert outbox[0].extra_headers["List-Unsubscribe"].startswith(f"<{BASE}/")
