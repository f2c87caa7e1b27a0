"""Device management: a workspace's policy names the device types that may use it.

The device type is read from the request's ``User-Agent``; these tests send
real browsers' agents through the test client's ``environ_base``. A session
is checked on every request (sign-in included, through the first page it
leads to); an API token is no device and is never checked.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from crm_rbac_plugin.security import policy_for
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
