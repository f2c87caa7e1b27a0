"""A permission change's reason: stored on its audit event, and required where the
workspace says so, on every path (page, JSON API, CLI, Flask-Admin, Python).

A workspace requiring a reason refuses a change without one with a 400 (or
the path's equivalent) naming ``reason``, and nothing is saved; with a
reason the change is saved and the reason is on its event. The rule is off
by default. SQLite and PostgreSQL.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_admin.contrib.sqla import ModelView  # noqa: F401  (Flask-Admin is installed)

from crm_app.extensions import db
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, tokens, workspaces
from crm_rbac_plugin.admin import RBACModelView
from crm_rbac_plugin.certification import change_reason, schedule
from crm_rbac_plugin.errors import ValidationError
from tests.rbac_helpers import (
    access_of,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.test_api import Api
from tests.test_settings_ui import policy_snapshot


def require_reason(world: SimpleNamespace) -> None:
    schedule.save(rbac, access_of(world.members["owner"]), require_reason=True)
    db.session.commit()


def last_event() -> Any:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return db.session.scalars(sa.select(A).order_by(A.id.desc()).limit(1)).one()


def role_ids(membership: Any) -> set[int]:
    db.session.expire_all()
    return {mr.role_id for mr in db.session.get(type(membership), membership.id).member_roles}


def test_a_reason_is_optional_by_default_and_stored_when_given(
        world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    page = owner.get(f"/settings/members/{world.members['viewer'].id}/access").text
    assert 'id="reason-assign"' in page and "Optional: stored" in page
    assert 'id="reason-remove-' not in page  # a row's button asks only when required
    finance = workspaces.role_by_key(rbac, world.ws, "finance")
    viewer = world.members["viewer"]
    assert owner.post(f"/settings/members/{viewer.id}/roles",
                      data={"role_id": finance.id}).status_code == 302
    assert "reason" not in (last_event().detail or {})
    assignment = next(mr for mr in db.session.get(type(viewer), viewer.id).member_roles
                      if mr.role_id == finance.id)
    assert owner.post(f"/settings/members/{viewer.id}/roles/{assignment.id}/remove",
                      data={"reason": "ticket 42"}).status_code == 302
    event = last_event()
    assert event.action == "assignment.removed" and event.detail["reason"] == "ticket 42"


def test_the_page_refuses_without_a_reason_and_saves_with_one(
        world: SimpleNamespace, login: Any) -> None:
    require_reason(world)
    owner = login(world.users["owner"], world.ws)
    finance = workspaces.role_by_key(rbac, world.ws, "finance")
    viewer = world.members["viewer"]
    before = policy_snapshot()
    page = owner.get(f"/settings/members/{viewer.id}/access")
    assert 'id="reason-assign"' in page.text and "Required in this workspace" in page.text
    # The row's Remove button gets its own (required) reason input too.
    row = viewer.member_roles[0].id
    assert f'id="reason-remove-{row}"' in page.text
    refused = owner.post(f"/settings/members/{viewer.id}/roles", data={"role_id": finance.id})
    assert refused.status_code == 400 and "requires a reason" in refused.text
    assert policy_snapshot() == before
    saved = owner.post(f"/settings/members/{viewer.id}/roles",
                       data={"role_id": finance.id, "reason": "covers month-end close"})
    assert saved.status_code == 302 and finance.id in role_ids(viewer)
    event = last_event()
    assert event.action == "assignment.added"
    assert event.detail["reason"] == "covers month-end close"


def test_the_api_refuses_without_a_reason_and_saves_with_one(
        app: Flask, world: SimpleNamespace) -> None:
    require_reason(world)
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "reason test")
    db.session.commit()
    api = Api(app, plaintext)
    finance = workspaces.role_by_key(rbac, world.ws, "finance")
    viewer = world.members["viewer"]
    before = policy_snapshot()
    refused = api.post(f"/members/{viewer.id}/roles", {"role_id": finance.id})
    assert refused.status_code == 400 and refused.json["field"] == "reason", refused.json
    assert policy_snapshot() == before
    assert api.post(f"/members/{viewer.id}/roles",
                    {"role_id": finance.id, "reason": 7}).json["field"] == "reason"
    saved = api.post(f"/members/{viewer.id}/roles",
                     {"role_id": finance.id, "reason": "audit season"})
    assert saved.status_code == 201, saved.json
    assert last_event().detail["reason"] == "audit season"
    mr = saved.json["id"]
    refused = api.delete(f"/members/{viewer.id}/roles/{mr}")
    assert refused.status_code == 400 and refused.json["field"] == "reason"
    assert api.delete(f"/members/{viewer.id}/roles/{mr}",
                      json={"reason": "season over"}).status_code == 204
    assert last_event().detail["reason"] == "season over"


def test_the_cli_refuses_without_a_reason_and_saves_with_one(
        app: Flask, world: SimpleNamespace) -> None:
    require_reason(world)
    runner = app.test_cli_runner()
    before = policy_snapshot()
    args = ["members", "deactivate", "--workspace", "acme", "--email", "member2@example.test"]
    refused = runner.invoke(args=["rbac", *args])
    assert refused.exit_code != 0 and "reason" in refused.output
    assert policy_snapshot() == before
    saved = runner.invoke(args=["rbac", "--reason", "left the company", *args])
    assert saved.exit_code == 0, saved.output
    event = last_event()
    assert event.action == "member.deactivated" and event.detail["reason"] == "left the company"


def test_flask_admin_cannot_skip_the_reason(app: Flask, world: SimpleNamespace,
                                            login: Any) -> None:
    """A host's editable Flask-Admin view of roles meets the rule where the event is written."""
    admin = app.extensions["crm_admin"]
    admin.add_view(RBACModelView(rbac.models.Role, db, rbac=rbac, resource="roles",
                                 name="Roles (editable)", endpoint="test_reason_roles",
                                 url="reason-roles", form_columns=["name", "description"]))
    role = roles.create_role(rbac, access_of(world.members["owner"]), name="Temp staff")
    db.session.commit()
    require_reason(world)
    owner = login(world.users["owner"], world.ws)
    url = f"/admin/reason-roles/edit/?id={role.id}"
    refused = owner.post(url, data={"name": "Renamed without reason", "description": ""},
                         follow_redirects=True)
    assert "requires a reason" in refused.text
    db.session.expire_all()
    assert db.session.get(rbac.models.Role, role.id).name == "Temp staff"
    owner.post(url, data={"name": "Renamed with reason", "description": "",
                          "reason": "seasonal staff"})
    db.session.expire_all()
    assert db.session.get(rbac.models.Role, role.id).name == "Renamed with reason"
    assert last_event().detail["reason"] == "seasonal staff"


def test_a_plan_change_needs_the_reason_too(world: SimpleNamespace, login: Any) -> None:
    require_reason(world)
    owner = login(world.users["owner"], world.ws)
    assert 'id="reason-plan"' in owner.get("/settings/plan").text
    assert owner.post("/settings/plan", data={"plan": "pro"}).status_code == 400
    db.session.expire_all()
    assert db.session.get(type(world.ws), world.ws.id).plan == "enterprise"
    assert owner.post("/settings/plan", data={"plan": "pro", "reason": "budget"}).status_code \
        in (200, 302)
    db.session.expire_all()
    assert db.session.get(type(world.ws), world.ws.id).plan == "pro"
    assert last_event().detail["reason"] == "budget"


def test_python_code_gives_a_reason_with_a_block(world: SimpleNamespace) -> None:
    require_reason(world)
    owner = access_of(world.members["owner"])
    finance = workspaces.role_by_key(rbac, world.ws, "finance")
    roles.assign_role(rbac, owner, world.members["viewer"], finance)
    with pytest.raises(ValidationError) as exc:
        db.session.commit()
    assert exc.value.field == "reason"
    db.session.rollback()
    assert finance.id not in role_ids(world.members["viewer"])
    with change_reason("scripted onboarding"):
        roles.assign_role(rbac, owner, world.members["viewer"], finance)
        db.session.commit()
    assert finance.id in role_ids(world.members["viewer"])
    assert last_event().detail["reason"] == "scripted onboarding"


def test_changes_that_grant_nothing_need_no_reason(world: SimpleNamespace, login: Any) -> None:
    """Invitations, a membership joining with its first roles and schedule edits are not
    permission changes a reason is required for."""
    require_reason(world)
    schedule.save(rbac, access_of(world.members["owner"]), interval_days=45)
    db.session.commit()
    assert schedule.schedule_for(rbac, world.ws.id).interval_days == 45
    owner = login(world.users["owner"], world.ws)
    viewer = workspaces.role_by_key(rbac, world.ws, "viewer")
    assert owner.post("/settings/members/invite", data={
        "email": "new.person@example.test", "roles": [viewer.id]}).status_code == 302
    newcomer = User(email="joiner@example.test", name="Joiner")
    db.session.add(newcomer)
    workspaces.add_member(rbac, world.ws, newcomer, ["viewer"])
    db.session.commit()
    M = rbac.models.Membership
    assert db.session.scalar(sa.select(M).where(M.user_id == newcomer.id)).status == "active"
