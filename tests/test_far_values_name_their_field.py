"""Numbers and dates past what the database or a date can hold are refused up front,
with a message naming the argument, instead of overflowing later into the app-wide
"a value is out of range" page that names nothing."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac

HUGE = "99999999999999999999"


@pytest.mark.parametrize("url", ["/reports/?end=9999-12-31", "/reports/charts?start=9999-12-31",
                                 "/reports/export.csv?figure=pipeline&end=9999-12-31"])
def test_a_report_date_on_the_last_day_names_its_filter(world: SimpleNamespace, login: Any,
                                                         url: str) -> None:
    admin = login(world.users["admin"], world.ws)
    response = admin.get(url)
    assert response.status_code == 400
    name = "end" if "end=" in url else "start"
    assert f"{name}: enter a date before 9999-12-31" in response.get_data(as_text=True)
    assert admin.get("/reports/?end=9999-12-30").status_code == 200


@pytest.mark.parametrize("name", ["page", "owner"])
def test_a_list_argument_past_any_id_names_itself(world: SimpleNamespace, login: Any,
                                                  name: str) -> None:
    admin = login(world.users["admin"], world.ws)
    response = admin.get(f"/leads/?{name}={HUGE}")
    assert response.status_code == 400
    assert f"{name}: expected a whole number" in response.get_data(as_text=True)
    assert admin.get(f"/leads/?{name}=abc").status_code == 200  # not a number: ignored


def test_a_bulk_id_past_any_id_names_no_record(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    with rbac.system():
        before = db.session.scalar(sa.select(sa.func.count()).select_from(Lead))
    response = admin.post("/leads/bulk-delete",
                          data={"ids": [str(world.leads["member"].id), HUGE]})
    assert response.status_code == 404
    db.session.expire_all()
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead)) == before


def test_a_guest_starting_on_the_last_days_names_starts_at(world: SimpleNamespace,
                                                           login: Any) -> None:
    """The Guest's default end (30 days after its start) would pass the last date."""
    owner = login(world.users["owner"], world.ws)
    R, MR = rbac.models.Role, rbac.models.MemberRole
    guest = db.session.scalar(sa.select(R).where(R.workspace_id == world.ws.id, R.key == "guest"))
    target = world.members["viewer"]
    before = db.session.scalar(sa.select(sa.func.count()).select_from(MR)
                               .where(MR.membership_id == target.id))
    response = owner.post(f"/api/v1/members/{target.id}/roles",
                          json={"role_id": guest.id, "starts_at": "9999-12-30T00:00:00Z"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "starts_at"
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MR)
                             .where(MR.membership_id == target.id)) == before
