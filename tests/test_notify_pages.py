"""Notifications in the app: the page, the bell, the JSON API, inline delivery and the worker.

Every request goes through the test client (a fresh app context each), so
inline delivery runs after the request that queued the mail, as in the demo.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db, mail
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.notify import inbox, queue
from tests.test_api import Api

PAGE = "/settings/account/notifications"


def notify(world: SimpleNamespace, key: str, summary: str = "Something happened.",
           link: str = "/settings/profile", category: str = "roles") -> Any:
    """Queue one in-app notification for member ``key`` and commit it."""
    member = world.members[key]
    [row] = queue.enqueue(db.session, rbac.models, workspace_id=member.workspace_id,
                          recipients=[member.id], category=category, event_name="test.event",
                          summary=summary, link=link)
    db.session.commit()
    return row


def bell_count(html: str) -> int:
    """The unread count the page's bell shows (0 when it shows none)."""
    assert len(re.findall(r"<a [^>]*data-rbac-bell[\s>]", html)) == 1, "one bell per page"
    found = re.search(r"data-rbac-bell-count>(\d+)<", html)
    return int(found.group(1)) if found else 0


def role_id(world: SimpleNamespace, key: str) -> int:
    R = rbac.models.Role
    return int(db.session.scalar(sa.select(R.id).where(R.workspace_id == world.ws.id,
                                                       R.key == key)))


def test_page_lists_own_rows_and_bell_counts_them(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    mine = notify(world, "member", "Your role Finance was removed.")
    theirs = notify(world, "member2", "Not for member.")
    member = login(world.users["member"], world.ws)
    page = member.get(PAGE)
    assert page.status_code == 200
    assert "Your role Finance was removed." in page.text and "Not for member." not in page.text
    assert bell_count(page.text) == 1
    assert bell_count(member.get("/").text) == 1  # the demo's header, outside the settings
    assert bell_count(member.get("/settings/profile").text) == 1
    # Opening marks read and goes to the page where one acts on it.
    opened = member.post(f"{PAGE}/{mine.id}/open")
    assert opened.status_code == 302 and opened.headers["Location"].endswith("/settings/profile")
    assert bell_count(member.get(PAGE).text) == 0
    # Another member's notification is a 404 and stays unread.
    assert member.post(f"{PAGE}/{theirs.id}/open").status_code == 404
    assert member.post(f"{PAGE}/{theirs.id}/read").status_code == 404
    db.session.refresh(theirs)
    assert theirs.read_at is None


def test_mark_read_and_mark_all_read(app: Flask, world: SimpleNamespace, login: Any) -> None:
    rows = [notify(world, "viewer", f"Event {i}.") for i in range(3)]
    other = notify(world, "member", "Someone else's.")
    viewer = login(world.users["viewer"], world.ws)
    assert bell_count(viewer.get(PAGE).text) == 3
    assert viewer.post(f"{PAGE}/{rows[0].id}/read").status_code == 302
    assert bell_count(viewer.get(PAGE).text) == 2
    assert viewer.post(f"{PAGE}/read-all").status_code == 302
    assert bell_count(viewer.get(PAGE).text) == 0
    db.session.refresh(other)
    assert other.read_at is None  # "all" is all of one's own


def test_open_never_redirects_off_site(app: Flask, world: SimpleNamespace, login: Any) -> None:
    row = notify(world, "member", link="//evil.example/phish")
    response = login(world.users["member"], world.ws).post(f"{PAGE}/{row.id}/open")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(PAGE)


def test_preferences_on_the_page(app: Flask, world: SimpleNamespace, login: Any) -> None:
    member = login(world.users["member"], world.ws)
    body = {"roles": "digest", "membership": "app", "sharing": "off", "approvals": "mail",
            "security": "off", "reviews": "mail"}
    assert member.post(f"{PAGE}/preferences", data=body).status_code == 302
    P = rbac.models.NotificationPreference
    stored = dict(db.session.execute(sa.select(P.category, P.channel).where(
        P.membership_id == world.members["member"].id)).all())
    assert stored["roles"] == "digest" and stored["security"] == "off"
    # An Owner is not offered "off" for security alerts, and a forged "off" is refused.
    owner = login(world.users["owner"], world.ws)
    page = owner.get(PAGE).text
    assert "cannot be switched off" in page
    refused = owner.post(f"{PAGE}/preferences", data={**body, "security": "off"})
    assert refused.status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(P).where(
        P.membership_id == world.members["owner"].id)) == 0


def test_inline_delivery_after_the_request(app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    mid = world.members["viewer"].id
    with mail.record_messages() as outbox:
        response = owner.post(f"/settings/members/{mid}/roles", data={"role_id": role_id(world, "finance")})
    assert response.status_code == 302
    assert [m.recipients for m in outbox] == [["viewer@example.test"]]
    assert "http://crm.test/settings/profile" in outbox[0].body
    N = rbac.models.Notification
    assert db.session.scalar(sa.select(N.mail_state)) == "sent"


def test_a_failing_mail_never_breaks_the_request(
        app: Flask, world: SimpleNamespace, login: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(message: Any) -> None:
        raise ConnectionRefusedError("smtp down")

    monkeypatch.setattr(app.extensions["mail"], "send", broken)
    app.config["RBAC_NOTIFY_RETRY_SECONDS"] = 0  # due again at once
    owner = login(world.users["owner"], world.ws)
    mid = world.members["viewer"].id
    response = owner.post(f"/settings/members/{mid}/roles", data={"role_id": role_id(world, "finance")})
    assert response.status_code == 302  # the change is made and shown as usual
    MR, N = rbac.models.MemberRole, rbac.models.Notification
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MR).where(
        MR.membership_id == mid)) == 2
    row = db.session.scalar(sa.select(N))
    assert (row.mail_state, row.attempts) == ("pending", 1) and "smtp down" in row.last_error
    # The worker retries it once due.
    monkeypatch.undo()
    with mail.record_messages() as outbox:
        result = app.test_cli_runner().invoke(args=["rbac", "notify", "send"])
    assert result.exit_code == 0, result.output
    assert "1 sent" in result.output and len(outbox) == 1


def test_a_refused_request_tells_nobody(app: Flask, world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    mid = world.members["viewer"].id
    with mail.record_messages() as outbox:
        response = admin.post(f"/settings/members/{mid}/roles", data={"role_id": role_id(world, "owner")})
    assert response.status_code == 403
    assert outbox == [] and db.session.scalars(sa.select(rbac.models.Notification)).all() == []


def test_worker_command_sends_expiry_notices_and_digests(app: Flask, world: SimpleNamespace) -> None:
    member = world.members["member"]
    P = rbac.models.NotificationPreference
    db.session.add(P(membership_id=member.id, category="roles", channel="digest"))
    R, MR = rbac.models.Role, rbac.models.MemberRole
    finance = db.session.scalar(sa.select(R).where(R.workspace_id == world.ws.id, R.key == "finance"))
    db.session.add(MR(membership_id=member.id, role_id=finance.id,
                      expires_at=utcnow().replace(microsecond=0) + __import__("datetime").timedelta(days=2)))
    db.session.commit()
    runner = app.test_cli_runner()
    with mail.record_messages() as outbox:
        first = runner.invoke(args=["rbac", "notify", "send", "--digest"])
        second = runner.invoke(args=["rbac", "notify", "send", "--digest"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert "expiring: 1 queued" in first.output and "expiring: 0 queued" in second.output
    # The assignment and its expiry, both in one digest, sent once.
    assert [m.recipients for m in outbox] == [["member@example.test"]]
    assert "ends on" in outbox[0].body and "You were given the role Finance" in outbox[0].body


# -- the JSON API ----------------------------------------------------------------------------


@pytest.fixture
def api(app: Flask, world: SimpleNamespace) -> Any:
    def make(key: str) -> Api:
        _, plaintext = tokens.create_token(rbac, world.members[key], f"test {key}")
        db.session.commit()
        return Api(app, plaintext)
    return make


def test_api_lists_and_marks_only_own_rows(app: Flask, world: SimpleNamespace, api: Any) -> None:
    mine = notify(world, "member", "Mine.")
    theirs = notify(world, "manager", "Theirs.")
    member = api("member")
    listed = member.get("/notifications")
    assert listed.status_code == 200 and listed.json["unread"] == 1
    assert [n["summary"] for n in listed.json["notifications"]] == ["Mine."]
    assert member.post(f"/notifications/{theirs.id}/read").status_code == 404
    assert member.post("/notifications/999999/read").status_code == 404
    marked = member.post(f"/notifications/{mine.id}/read")
    assert marked.status_code == 200 and marked.json["read"] is True
    assert member.get("/notifications?unread=1").json["notifications"] == []
    for before in ("x", "9" * 30, "١٢"):
        refused = member.get(f"/notifications?before={before}")
        assert refused.status_code == 400 and refused.json["field"] == "before"
    notify(world, "member", "Again.")
    assert member.post("/notifications/read-all").json["marked"] == 1
    db.session.refresh(theirs)
    assert theirs.read_at is None


def test_api_preferences(app: Flask, world: SimpleNamespace, api: Any) -> None:
    member, owner = api("member"), api("owner")
    got = member.get("/notification-preferences")
    assert got.status_code == 200 and got.json["preferences"]["roles"] == "mail"
    assert got.json["locked"] == []
    changed = member.patch("/notification-preferences", {"roles": "app", "security": "off"})
    assert changed.status_code == 200 and changed.json["preferences"]["roles"] == "app"
    assert changed.json["changed"] == {"roles": "app", "security": "off"}
    for body, field in [({"roles": "fax"}, "roles"), ({"colour": "mail"}, "colour")]:
        refused = member.patch("/notification-preferences", body)
        assert refused.status_code == 400 and refused.json["field"] == field
    assert owner.get("/notification-preferences").json["locked"] == ["security"]
    refused = owner.patch("/notification-preferences", {"security": "off"})
    assert refused.status_code == 400 and refused.json["field"] == "security"
    assert owner.get("/notification-preferences").json["preferences"]["security"] == "mail"


# -- every path notifies; a viewer sees only their own ------------------------------------------


def test_the_api_and_the_cli_notify_too(app: Flask, world: SimpleNamespace, api: Any) -> None:
    N = rbac.models.Notification
    response = api("owner").post(f"/members/{world.members['viewer'].id}/roles",
                                 {"role_id": role_id(world, "finance")})
    assert response.status_code == 201, response.text
    result = app.test_cli_runner().invoke(args=[
        "rbac", "members", "deactivate", "--workspace", "acme", "--email", "member2@example.test"])
    assert result.exit_code == 0, result.output
    told = set(db.session.execute(sa.select(N.membership_id, N.event)).all())
    assert told == {(world.members["viewer"].id, "role.assigned"),
                    (world.members["member2"].id, "membership.deactivated")}


def test_viewing_as_a_member_never_shows_their_notifications(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    notify(world, "member", "Only for member.")
    notify(world, "admin", "For the admin.")
    admin = login(world.users["admin"], world.ws)
    assert admin.post("/settings/view-as", data={
        "membership_id": str(world.members["member"].id), "next": "/"}).status_code == 302
    page = admin.get(PAGE)
    assert page.status_code == 200
    assert "For the admin." in page.text and "Only for member." not in page.text
    assert bell_count(admin.get("/").text) == 1


def test_the_bell_count_stops_at_its_cap(app: Flask, world: SimpleNamespace, login: Any) -> None:
    member = world.members["member"]
    N = rbac.models.Notification
    db.session.execute(sa.insert(N), [
        {"workspace_id": member.workspace_id, "membership_id": member.id, "category": "roles",
         "event": "bulk", "summary": f"Bulk {i}", "link": "", "created_at": utcnow(),
         "mail_state": "skipped", "attempts": 0} for i in range(inbox.UNREAD_CAP + 5)])
    db.session.commit()
    page = login(world.users["member"], world.ws).get(PAGE).text
    assert bell_count(page) == inbox.UNREAD_CAP
    assert f"data-rbac-bell-count>{inbox.UNREAD_CAP}</span>+" in page
