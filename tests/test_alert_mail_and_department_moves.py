"""Two side paths of reach and mail.

* A department move points the member's department scopes at another
  department: a non-Owner makes it only while holding what the member's roles
  grant, as when lifting a visibility cap.
* Security alerts are mailed to Owners and Admins whose role is in force now,
  not to one whose Admin assignment starts later or has ended.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db, mail
from crm_app.models import Deal
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import alerts, roles
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.notify import delivery
from tests.rbac_helpers import custom_role, give_role


def test_a_manager_cannot_move_a_member_into_reach_they_lack(world: SimpleNamespace,
                                                             login: Any) -> None:
    give_role(world.members["member"],
              custom_role(world, "Department deals reader", [("deals", "view", "department")]))
    with rbac.system():
        secret = Deal(workspace_id=world.ws.id, owner_id=world.users["client_success"].id,
                      title="Support-only deal", stage="new", amount=777)
        db.session.add(secret)
        db.session.commit()
        secret_id = secret.id
    manager = login(world.users["manager"], world.ws)
    target = world.members["member"].id
    moved = manager.post(f"/settings/members/{target}/department",
                         data={"department_id": str(world.departments["support"].id)})
    assert moved.status_code == 403
    db.session.expire_all()
    assert db.session.get(rbac.models.Membership, target).department_id \
        == world.departments["sales"].id
    member = login(world.users["member"], world.ws)
    assert member.get(f"/deals/{secret_id}").status_code == 404
    # The Owner holds everything: the same move goes through.
    owner = login(world.users["owner"], world.ws)
    assert owner.post(f"/settings/members/{target}/department",
                      data={"department_id": str(world.departments["support"].id)}
                      ).status_code == 302


def test_alert_mail_reaches_admins_in_force_only(world: SimpleNamespace, login: Any) -> None:
    give_role(world.members["member2"], _admin_role(world),
              starts_at=utcnow() + dt.timedelta(days=30))
    told = _told_of_an_export(world, login)
    assert world.users["owner"].email in told and world.users["admin"].email in told
    assert world.users["member2"].email not in told


def test_alert_mail_reaches_an_admin_through_their_department(world: SimpleNamespace,
                                                              login: Any) -> None:
    roles.give_department_role(rbac, rbac.access_for(world.members["owner"]),
                               world.departments["support"], _admin_role(world))
    db.session.commit()
    assert login(world.users["viewer"], world.ws).get("/settings/alerts").status_code == 200
    told = _told_of_an_export(world, login)
    assert {world.users["admin"].email, world.users["viewer"].email} <= told


def _admin_role(world: SimpleNamespace) -> Any:
    R = rbac.models.Role
    return db.session.scalar(sa.select(R).where(R.workspace_id == world.ws.id,
                                                R.key == "admin"))


def _told_of_an_export(world: SimpleNamespace, login: Any) -> set[str]:
    """With alerts at one exported row an hour, the Manager exports the leads: the
    addresses the alert's mail goes to."""
    alerts.save(rbac, rbac.access_for(world.members["owner"]), {"export_rows_per_hour": 1})
    db.session.commit()
    delivery.send_due(rbac)
    exporter = login(world.users["manager"], world.ws)
    with mail.record_messages() as outbox:
        response = exporter.get("/leads/export.csv")
        assert response.status_code == 200
        response.get_data()
        delivery.send_due(rbac)
    alert_mail = [m for m in outbox if world.users["manager"].email in (m.subject or "")]
    assert alert_mail, [m.subject for m in outbox]
    return {address for m in alert_mail for address in m.recipients}
