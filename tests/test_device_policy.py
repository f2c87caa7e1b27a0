"""Device management: a workspace's policy names the device types that may use it.

The device type is read from the request's ``User-Agent``; these tests send
real browsers' agents through the test client's ``environ_base``. A session
is checked on every request (sign-in included, through the first page it
leads to); an API token is no device and is never checked.
"""

from __future__ import annotations

import pytest

from crm_rbac_plugin.security.devices import DEVICE_TYPES, OTHER, device_allowed, device_type

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
