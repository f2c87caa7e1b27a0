"""Sign-in and security events on the audit page, its CSV export and the audit API.

Each event of the "Sign-in and security" group reads as a sentence naming
the account, the IP and the browser where the event holds them; each is
filterable alone and as the group (``action=group:security``), and a
workspace's filter never shows another workspace's events. Events are
recorded directly with :func:`crm_rbac_plugin.audit.record` with the agreed
detail keys, so the sentences are checked even for events whose writers
live elsewhere (sessions, the security page, the IP allowlist).
"""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import audit, tokens
from tests.test_api import Api

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")

#: (action, resource, ip, detail, what the sentence must say)
EVENTS: list[tuple[str, str, str | None, dict[str, Any], tuple[str, ...]]] = [
    ("auth.login", "account", "203.0.113.7", {"user_agent": FIREFOX},
     ("Member signed in from 203.0.113.7 (Firefox on Linux)",)),
    ("auth.failed", "account", "203.0.113.8",
     {"user_agent": IPHONE, "failures": 3, "wait_seconds": 4},
     ("Wrong password for Member from 203.0.113.8 (Safari on iPhone): 3 in a row; the next "
      "attempt waits 4 s",)),
    ("auth.throttled", "account", "203.0.113.9", {"user_agent": FIREFOX, "wait_seconds": 8,
                                                  "scope": "account"},
     ("Sign-in to Member from 203.0.113.9 (Firefox on Linux) refused: too many attempts, "
      "wait 8 s",)),
    ("auth.mfa_enrolled", "members", "198.51.100.1", {"user_id": 0},
     ("Member turned on two-factor authentication from 198.51.100.1",)),
    ("auth.mfa_failed", "members", "198.51.100.2", {"user_id": 0},
     ("Member entered a wrong two-factor code from 198.51.100.2",)),
    ("auth.mfa_reset", "members", None, {"membership_id": "viewer", "was_enrolled": True},
     ("Member reset the two-factor authentication of Viewer (it was on)",)),
    ("session.revoked", "account", "198.51.100.3",
     {"session_id": 41, "reason": "admin", "count": 3, "user_agent": FIREFOX},
     ("Member signed viewer@example.test out everywhere (3 sessions)",)),
    ("security_policy.changed", "settings", "198.51.100.4",
     {"changes": {"mfa": ["nobody", "everyone"], "ip_allowlist": [[], ["10.0.0.0/8"]]}},
     ("Security policy changed by Member: ip allowlist, mfa",)),
    ("access.ip_refused", "account", "192.0.2.44",
     {"path": "/api/v1/leads", "via": "token", "user_agent": "curl/8.5.0"},
     ("Member was refused on /api/v1/leads with an API token: 192.0.2.44 is not on the IP "
      "allowlist (curl)",)),
    ("access.device_refused", "account", "192.0.2.45",
     {"path": "/leads/", "device": "mobile", "user_agent": IPHONE},
     ("Member was refused on /leads/ from 192.0.2.45: phones are not allowed (Safari on "
      "iPhone)",)),
]


def record_events(world: SimpleNamespace) -> dict[str, int]:
    """Record each event of :data:`EVENTS` in ``world.ws`` (acted by "member"), and the same
    actions in ``world.ws2`` (acted by its owner); return the ws event ids by action."""
    member, ws2_owner = world.members["member"], world.users["dual"]
    ids = {}
    for action, resource, ip, detail, _ in EVENTS:
        values = {k: (world.members[v].id if k == "membership_id" else v)
                  for k, v in detail.items()}
        values = {k: (world.users["member"].id if k == "user_id" else v)
                  for k, v in values.items()}
        ev = audit.record(rbac, action, workspace_id=world.ws.id, resource=resource,
                          target="viewer@example.test" if action == "session.revoked"
                          else "member@example.test",
                          actor_ids=(world.users["member"].id, member.id), **values)
        ev.ip = ip
        other = audit.record(rbac, action, workspace_id=world.ws2.id, resource=resource,
                             target="dual@example.test", actor_ids=(ws2_owner.id, None),
                             **{k: v for k, v in values.items() if k != "membership_id"})
        other.ip = "192.0.2.250"
        db.session.flush()
        ids[action] = ev.id
    db.session.commit()
    return ids


@pytest.mark.parametrize("case", EVENTS, ids=[e[0] for e in EVENTS])
def test_each_security_event_filters_and_reads_as_a_sentence(
        world: SimpleNamespace, login: Any, app: Flask, case: Any) -> None:
    action, _, ip, _, phrases = case
    ids = record_events(world)
    owner = login(world.users["owner"], world.ws)
    page = owner.get(f"/settings/audit?action={action}")
    assert page.status_code == 200
    rows = page.text.count('class="rbac-audit-row"')
    assert rows == 1 and f'data-event="{ids[action]}"' in page.text
    for phrase in phrases:
        assert phrase in page.text.replace("&#39;", "'"), page.text
    assert "192.0.2.250" not in page.text and "dual@example.test" not in page.text

    exported = owner.get(f"/settings/audit.csv?action={action}")
    lines = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["id"], r["action"]) for r in lines] == [(str(ids[action]), action)]
    assert phrases[0] in lines[0]["summary"] and lines[0]["ip"] == (ip or "")

    _, plaintext = tokens.create_token(rbac, world.members["owner"], "audit reader")
    db.session.commit()
    items = Api(app, plaintext).get(f"/audit?action={action}").json["items"]
    assert [(i["id"], i["workspace_id"]) for i in items] == [(ids[action], world.ws.id)]


def test_the_security_group_filter_keeps_to_its_events_and_its_workspace(
        world: SimpleNamespace, login: Any, app: Flask) -> None:
    ids = record_events(world)
    audit.record(rbac, "export", workspace_id=world.ws.id, resource="leads", target="x",
                 actor_ids=(world.users["member"].id, world.members["member"].id), rows=1)
    db.session.commit()
    owner = login(world.users["owner"], world.ws)
    page = owner.get("/settings/audit?action=group:security")
    assert page.status_code == 200
    assert '<optgroup label="Sign-in and security">' in page.text
    assert '<option value="group:security" selected>' in page.text
    shown = {int(x) for x in re.findall(r'data-event="(\d+)"', page.text)}
    assert shown == set(ids.values())  # not the export, not ws2's copies
    exported = list(csv.DictReader(io.StringIO(
        owner.get("/settings/audit.csv?action=group:security").text)))
    assert {int(r["id"]) for r in exported} == set(ids.values())
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "audit reader")
    db.session.commit()
    api = Api(app, plaintext)
    items = api.get("/audit?action=group:security&per_page=200").json["items"]
    assert {i["id"] for i in items} == set(ids.values())
    # ws2's Owner sees ws2's copies only.
    M = rbac.models.Membership
    ws2_owner = db.session.query(M).filter_by(workspace_id=world.ws2.id,
                                               user_id=world.users["dual"].id).one()
    _, other = tokens.create_token(rbac, ws2_owner, "ws2 reader")
    db.session.commit()
    theirs = Api(app, other).get("/audit?action=group:security&per_page=200").json["items"]
    assert len(theirs) == len(EVENTS) and {i["workspace_id"] for i in theirs} == {world.ws2.id}
    assert not {i["id"] for i in theirs} & set(ids.values())


def test_an_unknown_group_is_a_400_naming_the_filter(world: SimpleNamespace, login: Any,
                                                     app: Flask) -> None:
    owner = login(world.users["owner"], world.ws)
    page = owner.get("/settings/audit?action=group:nothing")
    assert page.status_code == 400 and "action: unknown group" in page.text
    assert owner.get("/settings/audit.csv?action=group:nothing").status_code == 400
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "audit reader")
    db.session.commit()
    answer = Api(app, plaintext).get("/audit?action=group:nothing")
    assert answer.status_code == 400 and "action" in answer.text


def test_the_policy_change_lists_each_field_old_and_new(world: SimpleNamespace,
                                                        login: Any) -> None:
    record_events(world)
    page = login(world.users["owner"], world.ws).get(
        "/settings/audit?action=security_policy.changed")
    assert "<dt>mfa</dt><dd><del>nobody</del>" in page.text
    assert "<ins>everyone</ins>" in page.text and "<ins>10.0.0.0/8</ins>" in page.text


@pytest.mark.parametrize(("reason", "expected"), [
    ("signed_out", "viewer@example.test signed out from 198.51.100.3 (Firefox on Linux)"),
    ("sign_out_everywhere", "viewer@example.test signed out everywhere (2 sessions)"),
    ("idle", "viewer@example.test: session ended after being idle too long"),
    ("expired", "viewer@example.test: session ended at its maximum lifetime"),
    ("cap", "viewer@example.test: oldest session ended, too many sessions at once"),
    ("password_changed", "viewer@example.test: 2 sessions ended after a password change"),
    ("mfa_failed", "viewer@example.test: session ended after too many wrong two-factor codes"),
])
def test_each_reason_a_session_ends_has_its_sentence(reason: str, expected: str) -> None:
    ev = SimpleNamespace(action="session.revoked", actor_membership_id=None, actor_user_id=None,
                         target="viewer@example.test", ip="198.51.100.3",
                         detail={"session_id": 1, "reason": reason, "count": 2,
                                 "user_agent": FIREFOX}, before=None, after=None)
    assert audit.describe(audit.Names(1), ev).headline.startswith(expected)


@pytest.mark.parametrize(("agent", "name"), [
    (FIREFOX, "Firefox on Linux"), (IPHONE, "Safari on iPhone"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/126.0 Safari/537.36 Edg/126.0", "Edge on Windows"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/126.0 Safari/537.36", "Chrome on macOS"),
    ("Werkzeug/3.1.3", "Werkzeug/3.1.3"), ("", ""), (None, ""),
])
def test_the_browser_is_named_from_the_user_agent(agent: str | None, name: str) -> None:
    assert audit.browser(agent) == name


def test_a_permission_change_committed_with_a_security_event_keeps_its_own_event(
        world: SimpleNamespace) -> None:
    """The policy's ``changes`` stay the policy's; the role change gets an event of its own."""
    R, A = rbac.models.Role, rbac.models.AuditEvent
    audit.record(rbac, "security_policy.changed", workspace_id=world.ws.id, resource="settings",
                 actor_ids=(world.users["owner"].id, world.members["owner"].id),
                 changes={"mfa": ["nobody", "everyone"]})
    with rbac.system():
        junior = db.session.query(R).filter_by(workspace_id=world.ws.id, key="junior_rep").one()
        junior.description = "renamed with the policy"
        db.session.commit()
    db.session.expire_all()
    policy = db.session.query(A).filter_by(action="security_policy.changed").one()
    assert policy.detail == {"changes": {"mfa": ["nobody", "everyone"]}}
    role_event = db.session.query(A).filter_by(action="role.changed").one()
    assert role_event.workspace_id == world.ws.id


def test_security_events_carry_the_user_agent_and_others_do_not(
        app: Flask, world: SimpleNamespace) -> None:
    """The account's events (sign-in, MFA, sessions, IP and device refusals, the policy) note the
    browser that made the request; other events keep their detail as given."""
    agent = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    with app.test_request_context("/", headers={"User-Agent": agent},
                                  environ_base={"REMOTE_ADDR": "203.0.113.9"}):
        ids = (world.users["owner"].id, world.members["owner"].id)
        found = [audit.record(rbac, action, workspace_id=world.ws.id, actor_ids=ids)
                 for action in ("auth.mfa_failed", "auth.mfa_reset", "session.revoked",
                                "access.ip_refused", "access.device_refused",
                                "security_policy.changed", "role.created")]
        db.session.commit()
    *security, other = found
    assert all(e.detail["user_agent"] == agent and e.ip == "203.0.113.9" for e in security)
    assert not (other.detail or {}).get("user_agent")
