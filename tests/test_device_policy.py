"""Device management: a workspace's policy names the device types that may use it.

The device type is read from the request's ``User-Agent``; these tests send
real browsers' agents through the test client's ``environ_base``. A session
is checked on every request (sign-in included, through the first page it
leads to); an API token is no device and is never checked.
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
from crm_rbac_plugin import audit, tokens
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.security import network, policy_for, save_policy
from crm_rbac_plugin.security.devices import DEVICE_TYPES, OTHER, device_allowed, device_type
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_security_page import DEFAULTS, add_session, policy_events, policy_row

PAGE = "/settings/security"
API = "/api/v1/security-policy"
CRM_PAGE = "/leads/"

CHROME_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/120.0.0.0 Safari/537.36")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
SAFARI_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, "
              "like Gecko) Version/17.2 Safari/605.1.15")
EDGE_WINDOWS = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
                "Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91")
CHROME_OS = ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
             "Chrome/120.0.0.0 Safari/537.36")
IPHONE_SAFARI = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1")
IPHONE_CHROME = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
                 "(KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1")
ANDROID_PHONE = ("Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/120.0.0.0 Mobile Safari/537.36")
SAMSUNG_PHONE = ("Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36")
FIREFOX_ANDROID_PHONE = "Mozilla/5.0 (Android 14; Mobile; rv:121.0) Gecko/121.0 Firefox/121.0"
IPAD = ("Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.2 Mobile/15E148 Safari/604.1")
ANDROID_TABLET = ("Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like "
                  "Gecko) Chrome/120.0.0.0 Safari/537.36")
FIREFOX_ANDROID_TABLET = "Mozilla/5.0 (Android 13; Tablet; rv:121.0) Gecko/121.0 Firefox/121.0"
KINDLE = ("Mozilla/5.0 (Linux; Android 9; KFMAWI) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Silk/93.2.7 like Chrome/93.0.4577.82 Safari/537.36")
CURL = "curl/8.5.0"


@pytest.mark.parametrize(("agent", "kind"), [
    (CHROME_WINDOWS, "desktop"), (FIREFOX_LINUX, "desktop"), (SAFARI_MAC, "desktop"),
    (EDGE_WINDOWS, "desktop"), (CHROME_OS, "desktop"),
    (IPHONE_SAFARI, "mobile"), (IPHONE_CHROME, "mobile"), (ANDROID_PHONE, "mobile"),
    (SAMSUNG_PHONE, "mobile"), (FIREFOX_ANDROID_PHONE, "mobile"),
    (IPAD, "tablet"), (ANDROID_TABLET, "tablet"), (FIREFOX_ANDROID_TABLET, "tablet"),
    (KINDLE, "tablet"),
    # No browser named: no device type.
    (CURL, OTHER), ("python-requests/2.31.0", OTHER), ("Werkzeug/3.1.3", OTHER), ("", OTHER),
    (None, OTHER),
])
def test_device_type_of_real_user_agents(agent: str | None, kind: str) -> None:
    assert device_type(agent) == kind


def test_a_workspace_allowing_every_type_admits_every_agent() -> None:
    for kind in (*DEVICE_TYPES, OTHER):
        assert device_allowed(kind, DEVICE_TYPES)
    assert not device_allowed(OTHER, ("desktop", "mobile"))
    assert not device_allowed("mobile", ("desktop",))


# -- helpers ------------------------------------------------------------------------------------


def on(client: Any, agent: str) -> Any:
    """``client`` sending ``agent`` as its user agent from now on."""
    client.environ_base["HTTP_USER_AGENT"] = agent
    return client


def form(**changes: Any) -> dict[str, Any]:
    return {**DEFAULTS, "step": "save", **changes}


@pytest.fixture
def signed(app: Flask, world: SimpleNamespace, login: Any) -> Any:
    return lambda key, agent=CHROME_WINDOWS: on(login(world.users[key], world.ws), agent)


def token_client(app: Flask, world: SimpleNamespace, key: str, agent: str) -> Any:
    _, plaintext = tokens.create_token(rbac, world.members[key], "device test")
    db.session.commit()
    client = on(app.test_client(), agent)
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {plaintext}"
    return client


# -- editing the policy -------------------------------------------------------------------------


def test_the_page_shows_checkboxes_and_saves_with_an_audit_event(
        signed: Any, world: SimpleNamespace) -> None:
    owner = signed("owner", SAFARI_MAC)
    page = owner.get(PAGE)
    assert page.status_code == 200
    for kind in DEVICE_TYPES:
        assert f'name="allowed_devices" value="{kind}" checked' in page.text
    assert 'data-rbac-your-device="desktop"' in page.text
    done = owner.post(PAGE, data=form(allowed_devices=["tablet", "desktop"]))
    assert done.status_code == 302, done.text
    assert policy_row(world).allowed_devices == "desktop,tablet"
    assert policy_for(rbac, world.ws.id).allowed_devices == ("desktop", "tablet")
    [event] = policy_events()
    assert event.detail["changes"] == {"allowed_devices": [["desktop", "mobile", "tablet"],
                                                           ["desktop", "tablet"]]}
    shown = owner.get(PAGE).text
    assert 'name="allowed_devices" value="mobile">' in shown
    assert 'name="allowed_devices" value="tablet" checked' in shown


def test_an_admin_sees_the_checkboxes_disabled(signed: Any) -> None:
    page = signed("admin").get(PAGE)
    assert page.status_code == 200
    assert 'name="allowed_devices" value="desktop" checked disabled' in page.text


def test_the_preview_names_members_on_devices_the_change_refuses(
        signed: Any, world: SimpleNamespace) -> None:
    row = add_session(world.users["member"], ip="198.51.100.4")
    row.user_agent = IPHONE_SAFARI
    db.session.commit()
    preview = signed("owner").post(PAGE, data=form(step="preview", allowed_devices=["desktop"]))
    assert preview.status_code == 200
    listed = preview.text.split('data-preview="refused_devices"', 1)[1].split("</ul>", 1)[0]
    assert "Member" in listed and "Safari on iPhone" in listed
    assert policy_row(world) is None


@pytest.mark.parametrize(("posted", "words"), [
    ([], "at least one device type"),
    (["desktop", "watch"], "unknown device type &#39;watch&#39;"),
])
def test_the_page_refuses_bad_devices_at_the_field(signed: Any, world: SimpleNamespace,
                                                   posted: list[str], words: str) -> None:
    refused = signed("owner").post(PAGE, data=form(allowed_devices=posted))
    assert refused.status_code == 400
    errors = refused.text.split('id="allowed_devices-errors"', 1)
    assert len(errors) == 2, "the message sits at allowed_devices"
    assert words in errors[1].split("</ul>", 1)[0]
    assert policy_row(world) is None and policy_events() == []


@pytest.mark.parametrize("value", [[], ["phone"], "desktop", None, [1], {"desktop": True}])
def test_the_api_refuses_bad_devices_naming_the_field(app: Flask, world: SimpleNamespace,
                                                      value: Any) -> None:
    client = token_client(app, world, "owner", CURL)
    refused = client.patch(API, json={"allowed_devices": value, "step_up_minutes": 20})
    assert refused.status_code == 400, refused.json
    assert refused.json["error"] == "validation_error"
    assert refused.json["field"] == "allowed_devices"
    assert policy_row(world) is None and policy_events() == []


def test_the_api_reads_and_patches_the_field(app: Flask, world: SimpleNamespace) -> None:
    client = token_client(app, world, "owner", CURL)
    assert client.get(API).json["policy"]["allowed_devices"] == ["desktop", "mobile", "tablet"]
    # A token has no device, so no lockout rule applies to its own agent.
    done = client.patch(API, json={"allowed_devices": ["mobile", "mobile"]})
    assert done.status_code == 200, done.json
    assert done.json["policy"]["allowed_devices"] == ["mobile"]
    assert done.json["changes"] == {"allowed_devices": [["desktop", "mobile", "tablet"],
                                                        ["mobile"]]}
    assert len(policy_events()) == 1
    doc = app.test_client().get("/api/v1/openapi.json").json
    field = doc["components"]["schemas"]["SecurityPolicy"]["properties"]["policy"]["properties"]
    assert field["allowed_devices"]["items"]["enum"] == list(DEVICE_TYPES)


# -- no self-lockout ----------------------------------------------------------------------------


def test_leaving_out_the_savers_own_device_is_refused(signed: Any, world: SimpleNamespace) -> None:
    phone = signed("owner", ANDROID_PHONE)
    refused = phone.post(PAGE, data=form(allowed_devices=["desktop", "tablet"]))
    assert refused.status_code == 409
    message = refused.text.split('id="allowed_devices-errors"', 1)[1].split("</ul>", 1)[0]
    assert "a phone" in message and "lock" in message
    preview = phone.post(PAGE, data=form(step="preview", allowed_devices=["desktop"]))
    assert preview.status_code == 409  # the preview says so before the Save button
    assert policy_row(world) is None and policy_events() == []
    desk = signed("owner", EDGE_WINDOWS)
    assert desk.post(PAGE, data=form(allowed_devices=["desktop", "tablet"])).status_code == 302
    assert policy_row(world).allowed_devices == "desktop,tablet"


def test_a_session_json_patch_is_checked_against_its_own_device(
        signed: Any, world: SimpleNamespace) -> None:
    phone = signed("owner", IPHONE_CHROME)
    assert phone.get(PAGE).status_code == 200
    locked = phone.patch(API, json={"allowed_devices": ["desktop"]})  # CSRF is off in tests
    assert locked.status_code == 409, locked.json
    assert locked.json["field"] == "allowed_devices"
    assert policy_row(world) is None


# -- the CLI ------------------------------------------------------------------------------------


def test_cli_sets_and_shows_the_devices(app: Flask, world: SimpleNamespace) -> None:
    runner = app.test_cli_runner()
    base = ["rbac", "security", "set", "--workspace", "acme", "--as", "owner@example.test"]
    done = runner.invoke(args=[*base, "allowed_devices=tablet, desktop"])
    assert done.exit_code == 0, done.output
    assert policy_row(world).allowed_devices == "desktop,tablet"
    shown = runner.invoke(args=["rbac", "security", "show", "--workspace", "acme"])
    assert "desktop, tablet" in shown.output
    for bad in ("allowed_devices=", "allowed_devices=desktop,phone"):
        refused = runner.invoke(args=[*base, bad])
        assert refused.exit_code != 0 and "allowed_devices" in refused.output, refused.output
    assert policy_row(world).allowed_devices == "desktop,tablet"
    assert len(policy_events()) == 1


# -- sign-in and sessions -----------------------------------------------------------------------


def allow(world: SimpleNamespace, *kinds: str) -> None:
    save_policy(rbac, world.ws.id, {"allowed_devices": list(kinds)})
    db.session.commit()


def refusals() -> list[Any]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A).where(A.action == "access.device_refused")
                                   .order_by(A.id)))


def test_sign_in_from_a_refused_device_reaches_only_the_refusal(
        app: Flask, world: SimpleNamespace) -> None:
    allow(world, "desktop")
    phone = on(app.test_client(), IPHONE_SAFARI)
    signed_in = phone.post("/login", data={"email": "owner@example.test", "password": "password"})
    assert signed_in.status_code == 302
    refused = phone.get(signed_in.headers["Location"])
    assert refused.status_code == 403
    assert "Not allowed from this device" in refused.text
    assert 'data-rbac-device="mobile"' in refused.text
    assert 'data-rbac-allowed-device="desktop"' in refused.text
    [event] = refusals()
    assert event.workspace_id == world.ws.id and event.resource == "account"
    assert event.target == "owner@example.test"  # Owners are not exempt
    assert event.actor_user_id == world.users["owner"].id
    assert event.actor_membership_id == world.members["owner"].id
    assert event.detail["device"] == "mobile" and event.detail["path"] == "/"
    assert event.detail["user_agent"] == IPHONE_SAFARI
    # The sign-out stays reachable.
    assert phone.post("/logout").status_code == 302
    desk = on(app.test_client(), CHROME_WINDOWS)
    allowed = desk.post("/login", data={"email": "owner@example.test", "password": "password"})
    assert allowed.status_code == 302
    assert desk.get(allowed.headers["Location"]).status_code == 200


def test_a_session_is_refused_at_its_next_request_after_the_policy_changes(
        signed: Any, world: SimpleNamespace) -> None:
    tablet = signed("member", ANDROID_TABLET)
    assert tablet.get(CRM_PAGE).status_code == 200
    allow(world, "desktop", "mobile")
    assert tablet.get(CRM_PAGE).status_code == 403
    desktop = signed("member", FIREFOX_LINUX)
    assert desktop.get(CRM_PAGE).status_code == 200
    allow(world, *DEVICE_TYPES)
    assert tablet.get(CRM_PAGE).status_code == 200


def test_a_json_client_gets_the_json_refusal(signed: Any, world: SimpleNamespace) -> None:
    allow(world, "desktop")
    refused = signed("member", IPAD).get(CRM_PAGE, headers={"Accept": "application/json"})
    assert refused.status_code == 403
    assert refused.json["error"] == "device_not_allowed"
    assert refused.json["device"] == "tablet" and refused.json["allowed"] == ["desktop"]
    assert "tablet" in refused.json["message"]


def test_an_agent_naming_no_browser_is_refused_by_a_restricting_policy(
        signed: Any, world: SimpleNamespace) -> None:
    script = signed("member", CURL)
    assert script.get(CRM_PAGE).status_code == 200  # every type allowed: nothing checked
    allow(world, *DEVICE_TYPES[:2])
    refused = script.get(CRM_PAGE, headers={"Accept": "application/json"})
    assert refused.status_code == 403 and refused.json["device"] == OTHER


def test_other_workspaces_and_anonymous_pages_are_not_checked(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    allow(world, "desktop")
    outsider = on(login(world.users["outsider"], world.ws2), IPHONE_SAFARI)
    assert outsider.get(CRM_PAGE).status_code == 200
    assert on(app.test_client(), IPHONE_SAFARI).get("/login").status_code == 200
    assert refusals() == []


def test_a_refused_member_can_switch_to_a_workspace_that_admits_the_device(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    allow(world, "desktop")
    dual = on(login(world.users["dual"], world.ws), IPHONE_SAFARI)
    assert dual.get(CRM_PAGE).status_code == 403
    moved = dual.post("/settings/workspace", data={"workspace_id": world.ws2.id})
    assert moved.status_code == 302, moved.text
    assert dual.get(CRM_PAGE).status_code == 200


def test_refusals_are_audited_once_per_member_per_minute(
        signed: Any, world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    allow(world, "desktop")
    phone = signed("member", ANDROID_PHONE)
    for _ in range(4):
        assert phone.get(CRM_PAGE).status_code == 403
    assert len(refusals()) == 1
    assert signed("manager", IPAD).get(CRM_PAGE).status_code == 403  # another member
    assert len(refusals()) == 2
    later = utcnow() + dt.timedelta(minutes=2)
    monkeypatch.setattr(network, "utcnow", lambda: later)  # the refusals' window
    assert phone.get(CRM_PAGE).status_code == 403
    assert len(refusals()) == 3


def test_the_refusal_reads_as_a_sentence(signed: Any, world: SimpleNamespace) -> None:
    allow(world, "desktop")
    assert signed("member", IPHONE_SAFARI).get(CRM_PAGE).status_code == 403
    [event] = refusals()
    names = audit.load_names(rbac, world.ws.id, [event])
    headline = audit.describe(names, event).headline
    assert headline == ("Member was refused on /leads/ from 127.0.0.1: phones are not "
                        "allowed (Safari on iPhone)"), headline


# -- API tokens ---------------------------------------------------------------------------------


@pytest.mark.parametrize("agent", [IPHONE_SAFARI, CURL])
def test_an_api_token_is_no_device(app: Flask, world: SimpleNamespace, agent: str) -> None:
    allow(world, "desktop")
    client = token_client(app, world, "manager", agent)
    assert client.get("/api/v1/members").status_code == 200
    assert refusals() == []


# -- the cost -----------------------------------------------------------------------------------


def _statements(client: Any) -> list[str]:
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", note)
    try:
        assert client.get(CRM_PAGE).status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", note)
    return seen


def test_the_check_reads_the_policy_loaded_with_the_user(signed: Any,
                                                         world: SimpleNamespace) -> None:
    """An allowed device under a restricting policy costs no query: the policy comes with
    the user's one statement, kept per policy version."""
    client = signed("member", CHROME_WINDOWS)
    assert client.get(CRM_PAGE).status_code == 200
    before = _statements(client)
    allow(world, "desktop")
    assert client.get(CRM_PAGE).status_code == 200  # reads the new version once
    after = _statements(client)
    assert len(after) == len(before)
    assert not [s for s in after if "rbac_security_policy" in s and "rbac_membership" not in s]
