"""The Security page, its API and CLI: who may edit, validation, previews, lockouts, audit.

The page, ``PATCH /api/v1/security-policy`` and ``flask rbac security set``
all go through :mod:`crm_rbac_plugin.security.editing`, so each rule is
checked on the page and at least once through the other two doors.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import signals, tokens
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.security import editing, policy_for
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_mfa import enrolled_directly, set_check

PAGE = "/settings/security"
API = "/api/v1/security-policy"

#: What the page posts for the default policy (every field).
DEFAULTS = {"mfa": "nobody", "step_up_minutes": "15", "idle_minutes_privileged": "30",
            "absolute_minutes_privileged": "720", "idle_minutes_member": "480",
            "absolute_minutes_member": "10080", "max_sessions": "", "ip_allowlist": "",
            "password_min_length": "12", "password_min_score": "3",
            "allowed_devices": ["desktop", "mobile", "tablet"]}


@pytest.fixture
def signed(app: Flask, world: SimpleNamespace, login: Any) -> Any:
    return lambda key: login(world.users[key], world.ws)


def form(**changes: Any) -> dict[str, Any]:
    return {**DEFAULTS, "step": "save", **changes}


def policy_row(world: SimpleNamespace) -> Any:
    P = rbac.models.SecurityPolicy
    db.session.expire_all()
    return db.session.scalar(sa.select(P).where(P.workspace_id == world.ws.id))


def policy_events() -> list[Any]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A).where(A.action == "security_policy.changed")
                                   .order_by(A.id)))


def denials() -> list[Any]:
    """The refused attempts on the security policy in the audit trail."""
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A).where(A.action == "access.denied",
                                                      A.resource == "settings")))


def add_session(user: Any, *, ip: str = "127.0.0.1", idle_minutes: float = 0,
                age_minutes: float = 0) -> Any:
    now = utcnow()
    row = rbac.models.AuthSession(
        user_id=user.id, sid_hash=f"{user.id}-{ip}-{idle_minutes}-{age_minutes}".ljust(64, "x"),
        ip=ip, created_at=now - dt.timedelta(minutes=age_minutes),
        last_seen_at=now - dt.timedelta(minutes=idle_minutes))
    db.session.add(row)
    db.session.commit()
    return row


# -- who may ------------------------------------------------------------------------------------


def test_owner_sees_every_field_and_their_address(signed: Any) -> None:
    page = signed("owner").get(PAGE)
    assert page.status_code == 200
    for name in DEFAULTS:
        assert f'name="{name}"' in page.text
    assert "Your address now: <code data-rbac-your-ip>127.0.0.1</code>" in page.text
    assert 'value="preview"' in page.text and 'value="save"' not in page.text
    assert 'href="/settings/security"' in page.text  # the tab


def test_owner_saves_and_the_change_is_audited(signed: Any, world: SimpleNamespace,
                                               app: Flask) -> None:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kw: Any) -> None:
        seen.append(kw)

    signals.security_policy_changed.connect(receiver, app)
    try:
        done = signed("owner").post(PAGE, data=form(
            idle_minutes_member="60", ip_allowlist="127.0.0.0/8\n 10.0.0.0/8 ",
            max_sessions="3"))
    finally:
        signals.security_policy_changed.disconnect(receiver, app)
    assert done.status_code == 302, done.text
    row = policy_row(world)
    assert (row.idle_minutes_member, row.max_sessions) == (60, 3)
    assert row.ip_allowlist == "127.0.0.0/8\n10.0.0.0/8"
    assert row.updated_by_membership_id == world.members["owner"].id
    [event] = policy_events()
    assert event.workspace_id == world.ws.id and event.resource == "settings"
    assert event.actor_user_id == world.users["owner"].id
    assert event.detail["changes"] == {"idle_minutes_member": [480, 60],
                                       "max_sessions": [None, 3],
                                       "ip_allowlist": ["", "127.0.0.0/8\n10.0.0.0/8"]}
    assert seen and seen[0]["changes"] == event.detail["changes"]
    assert seen[0]["workspace_id"] == world.ws.id


def test_a_save_that_changes_nothing_writes_no_event(signed: Any, world: SimpleNamespace) -> None:
    client = signed("owner")
    assert client.post(PAGE, data=form()).status_code == 302
    assert policy_events() == [] and policy_row(world) is None
    assert client.post(PAGE, data=form(step_up_minutes="20")).status_code == 302
    assert client.post(PAGE, data=form(step_up_minutes="20")).status_code == 302
    assert len(policy_events()) == 1


def test_admin_reads_without_controls_and_cannot_post(signed: Any, world: SimpleNamespace) -> None:
    client = signed("admin")
    page = client.get(PAGE)
    assert page.status_code == 200
    assert "Only an Owner can change these settings." in page.text
    assert 'value="preview"' not in page.text and " disabled" in page.text
    refused = client.post(PAGE, data=form(step_up_minutes="20"))
    assert refused.status_code == 403
    assert client.post(PAGE, data=form(step="preview")).status_code == 403
    assert policy_row(world) is None and policy_events() == []
    denied = denials()
    assert len(denied) == 2 and {e.actor_user_id for e in denied} == {world.users["admin"].id}


@pytest.mark.parametrize("key", ["manager", "member", "viewer", "finance"])
def test_other_members_are_refused(signed: Any, world: SimpleNamespace, key: str) -> None:
    client = signed(key)
    assert client.get(PAGE).status_code == 403
    assert client.post(PAGE, data=form(step_up_minutes="20")).status_code == 403
    assert "/settings/security" not in client.get("/settings/profile").text
    assert policy_row(world) is None
    assert len(denials()) == 2


def test_anonymous_is_refused(app: Flask, world: SimpleNamespace) -> None:
    assert app.test_client().get(PAGE).status_code in (302, 401)


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"ip_allowlist": "10.0.0.0/8\n300.1.2.3/8"}, "ip_allowlist", "line 2"),
    ({"ip_allowlist": "not-a-network"}, "ip_allowlist", "not an IPv4 or IPv6 network"),
    ({"idle_minutes_member": "0"}, "idle_minutes_member", "between 1 and"),
    ({"idle_minutes_member": "abc"}, "idle_minutes_member", "whole number"),
    ({"absolute_minutes_privileged": "10", "idle_minutes_privileged": "30"},
     "idle_minutes_privileged", "cannot be longer"),
    ({"step_up_minutes": "99999"}, "step_up_minutes", "between 1 and 1440"),
    ({"max_sessions": "-2"}, "max_sessions", "between 1 and 100"),
    ({"mfa": "sometimes"}, "mfa", "MFA must be one of"),
    ({"password_min_length": "4"}, "password_min_length", "between 8 and 128"),
    ({"password_min_score": "7"}, "password_min_score", "between 0 and 4"),
])
@pytest.mark.parametrize("step", ["save", "preview"])
def test_bad_input_is_a_400_at_its_field_and_changes_nothing(
        signed: Any, world: SimpleNamespace, changes: dict[str, str], field: str, words: str,
        step: str) -> None:
    client = signed("owner")
    assert client.post(PAGE, data=form(step_up_minutes="20")).status_code == 302
    before = {c: getattr(policy_row(world), c) for c in DEFAULTS}
    refused = client.post(PAGE, data=form(step=step, **{"step_up_minutes": "20", **changes}))
    assert refused.status_code == 400
    errors = refused.text.split(f'id="{field}-errors"', 1)
    assert len(errors) == 2, f"the message sits at {field}"
    assert words in errors[1].split("</ul>", 1)[0]
    assert {c: getattr(policy_row(world), c) for c in DEFAULTS} == before
    assert len(policy_events()) == 1


def test_the_api_refuses_bad_input_naming_the_field(app: Flask, world: SimpleNamespace) -> None:
    client = api_client(app, world, "owner")
    refused = client.patch(API, json={"ip_allowlist": "10.0.0.0/33"})
    assert refused.status_code == 400
    assert refused.json["field"] == "ip_allowlist" and refused.json["error"] == "validation_error"
    unknown = client.patch(API, json={"colour": "red"})
    assert unknown.status_code == 400 and unknown.json["field"] == "colour"
    assert policy_row(world) is None


# -- no self-lockout ----------------------------------------------------------------------------


def test_an_allowlist_without_the_savers_address_is_refused(signed: Any,
                                                            world: SimpleNamespace) -> None:
    client = signed("owner")
    refused = client.post(PAGE, data=form(ip_allowlist="203.0.113.0/24"))
    assert refused.status_code == 409
    message = refused.text.split('id="ip_allowlist-errors"', 1)[1].split("</ul>", 1)[0]
    assert "127.0.0.1" in message and "lock" in message
    assert policy_row(world) is None and policy_events() == []
    other = signed("owner")
    away = other.post(PAGE, data=form(ip_allowlist="203.0.113.0/24"),
                      environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert away.status_code == 302
    assert policy_row(world).ip_allowlist == "203.0.113.0/24"


def test_requiring_mfa_of_an_unenrolled_owner_is_refused(signed: Any,
                                                         world: SimpleNamespace) -> None:
    client = signed("owner")
    for value in ("privileged", "everyone"):
        refused = client.post(PAGE, data=form(mfa=value))
        assert refused.status_code == 409
        assert "enrol first" in refused.text.split('id="mfa-errors"', 1)[1]
    assert policy_row(world) is None and policy_events() == []
    enrolled_directly(world.users["owner"])
    set_check(client, world.users["owner"], 1)
    assert client.post(PAGE, data=form(mfa="privileged")).status_code == 302
    assert policy_row(world).mfa == "privileged"


# -- step-up ------------------------------------------------------------------------------------


def test_an_enrolled_owner_with_a_stale_check_is_sent_to_verify(signed: Any,
                                                                world: SimpleNamespace) -> None:
    client = signed("owner")
    enrolled_directly(world.users["owner"])
    set_check(client, world.users["owner"], 60)
    stale = client.post(PAGE, data=form(step_up_minutes="20"))
    assert stale.status_code == 302 and "/settings/account/verify" in stale.location
    assert policy_row(world) is None
    set_check(client, world.users["owner"], 1)
    assert client.post(PAGE, data=form(step_up_minutes="20")).status_code == 302
    assert policy_row(world).step_up_minutes == 20


# -- preview ------------------------------------------------------------------------------------


def test_preview_names_whom_the_change_affects_and_saves_nothing(
        signed: Any, world: SimpleNamespace) -> None:
    users = world.users
    enrolled_directly(users["owner"])
    enrolled_directly(users["member"])
    add_session(users["admin"], idle_minutes=45)                   # privileged: idle 30 ends it
    add_session(users["member"], idle_minutes=45, ip="10.1.2.3")   # others: idle 480 keeps it
    add_session(users["viewer"], age_minutes=3 * 24 * 60, ip="198.51.100.4")
    add_session(users["viewer"], ip="198.51.100.5")
    client = signed("owner")
    set_check(client, users["owner"], 1)
    page = client.post(PAGE, data=form(step="preview", mfa="everyone",
                                       absolute_minutes_member=str(2 * 24 * 60),
                                       ip_allowlist="127.0.0.1/32\n10.0.0.0/8"))
    assert page.status_code == 200, page.text
    text = page.text
    enrol = text.split('data-preview="must_enrol"', 1)[1].split("</ul>", 1)[0]
    for key in ("admin", "manager", "viewer", "finance"):
        assert users[key].email in enrol
    assert users["member"].email not in enrol and users["owner"].email not in enrol
    assert users["outsider"].email not in enrol  # another workspace's member
    ended = text.split('data-preview="sessions_ended"', 1)[1].split("</table>", 1)[0]
    assert ended.split("<tbody>", 1)[1].count("<tr>") == 2
    assert "Admin" in ended and "idle too long" in ended
    assert "198.51.100.4" in ended and "older than the lifetime" in ended
    outside = text.split('data-preview="outside_allowlist"', 1)[1].split("</ul>", 1)[0]
    assert "198.51.100.4" in outside and "198.51.100.5" in outside and "10.1.2.3" not in outside
    assert "Passwords are stored hashed" in text
    assert 'value="save"' in text
    assert policy_row(world) is None and policy_events() == []


def test_preview_counts_sessions_over_the_cap(app: Flask, world: SimpleNamespace) -> None:
    viewer = world.users["viewer"]
    for minutes in (1, 2, 3):
        add_session(viewer, idle_minutes=minutes, ip=f"10.0.0.{minutes}")
    with app.test_request_context():
        result = editing.preview(rbac, world.ws.id, {"max_sessions": 1})
    assert [(s.ip, s.reason) for s in result.sessions_ended] == [("10.0.0.2", "cap"),
                                                                 ("10.0.0.3", "cap")]
    assert result.changes == {"max_sessions": [None, 1]}


# -- API ----------------------------------------------------------------------------------------


def api_client(app: Flask, world: SimpleNamespace, key: str) -> Any:
    _, plaintext = tokens.create_token(rbac, world.members[key], "security test")
    db.session.commit()
    client = app.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}

    class Api:
        def get(self, path: str, **kw: Any) -> Any:
            return client.get(path, headers=headers, **kw)

        def patch(self, path: str, **kw: Any) -> Any:
            return client.patch(path, headers=headers, **kw)
    return Api()


def test_api_reads_and_patches_with_the_same_rules(app: Flask, world: SimpleNamespace) -> None:
    owner = api_client(app, world, "owner")
    shown = owner.get(API)
    assert shown.status_code == 200
    assert shown.json["policy"]["idle_minutes_member"] == 480 and shown.json["saved"] is False
    done = owner.patch(API, json={"idle_minutes_member": 120, "ip_allowlist": "127.0.0.1/32"})
    assert done.status_code == 200, done.json
    assert done.json["changes"] == {"idle_minutes_member": [480, 120],
                                    "ip_allowlist": ["", "127.0.0.1/32"]}
    assert done.json["policy"]["idle_minutes_member"] == 120
    assert policy_row(world).idle_minutes_member == 120
    assert len(policy_events()) == 1
    locked = owner.patch(API, json={"ip_allowlist": "203.0.113.0/24"})
    assert locked.status_code == 409 and locked.json["field"] == "ip_allowlist"
    assert "127.0.0.1" in locked.json["message"]
    mfa = owner.patch(API, json={"mfa": "everyone"})
    assert mfa.status_code == 409 and mfa.json["field"] == "mfa"
    assert policy_row(world).mfa == "nobody" and len(policy_events()) == 1


def test_api_admin_reads_others_are_refused(app: Flask, world: SimpleNamespace) -> None:
    admin = api_client(app, world, "admin")
    assert admin.get(API).status_code == 200
    refused = admin.patch(API, json={"step_up_minutes": 5})
    assert refused.status_code == 403 and refused.json["error"] == "forbidden"
    member = api_client(app, world, "member")
    assert member.get(API).status_code == 403
    assert member.patch(API, json={"step_up_minutes": 5}).status_code == 403
    assert policy_row(world) is None
    assert len(denials()) == 3


def test_api_patch_needs_step_up_of_an_enrolled_owner(app: Flask, world: SimpleNamespace) -> None:
    enrolled_directly(world.users["owner"])
    owner = api_client(app, world, "owner")
    refused = owner.patch(API, json={"step_up_minutes": 5})
    assert refused.status_code == 403 and refused.json["error"] == "mfa_step_up_required"
    assert policy_row(world) is None


def test_the_openapi_document_describes_the_endpoints(app: Flask) -> None:
    doc = app.test_client().get("/api/v1/openapi.json").json
    assert set(doc["paths"]["/security-policy"]) == {"get", "patch"}
    assert "409" in doc["paths"]["/security-policy"]["patch"]["responses"]


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_shows_and_sets_the_policy(app: Flask, world: SimpleNamespace) -> None:
    runner = app.test_cli_runner()
    shown = runner.invoke(args=["rbac", "security", "show", "--workspace", "acme"])
    assert shown.exit_code == 0, shown.output
    assert "idle_minutes_member" in shown.output and "480" in shown.output
    done = runner.invoke(args=["rbac", "security", "set", "--workspace", "acme",
                               "--as", "owner@example.test", "idle_minutes_member=90",
                               "max_sessions=", "ip_allowlist=10.0.0.0/8,192.168.0.0/16"])
    assert done.exit_code == 0, done.output
    row = policy_row(world)
    assert (row.idle_minutes_member, row.max_sessions) == (90, None)
    assert row.ip_allowlist == "10.0.0.0/8\n192.168.0.0/16"
    [event] = policy_events()
    assert event.actor_user_id == world.users["owner"].id
    bad = runner.invoke(args=["rbac", "security", "set", "--workspace", "acme",
                              "--as", "owner@example.test", "idle_minutes_member=soon"])
    assert bad.exit_code != 0 and "idle_minutes_member" in bad.output
    admin = runner.invoke(args=["rbac", "security", "set", "--workspace", "acme",
                                "--as", "admin@example.test", "step_up_minutes=5"])
    assert admin.exit_code != 0 and "Only an Owner" in admin.output
    mfa = runner.invoke(args=["rbac", "security", "set", "--workspace", "acme",
                              "--as", "owner@example.test", "mfa=everyone"])
    assert mfa.exit_code != 0 and "enrol first" in mfa.output
    noeq = runner.invoke(args=["rbac", "security", "set", "--workspace", "acme",
                               "--as", "owner@example.test", "mfa"])
    assert noeq.exit_code != 0 and "field=value" in noeq.output
    assert policy_for(rbac, world.ws.id).idle_minutes_member == 90
    assert len(policy_events()) == 1
