"""A session's device read from its user agent: in words ("Chrome on Windows") and as
the device type a workspace's security policy allows or refuses.

Werkzeug no longer parses user agents, and a full parser is a large, fast
moving dependency for a label a member reads; this recognises the common
browsers and systems by the tokens they send, most specific first (Edge
and Opera send "Chrome", Chrome sends "Safari", Android sends "Linux").
Anything else is "Unknown browser" / "unknown device": the label is a hint
to the member, never a security decision.

:func:`device_type` sorts an agent into :data:`DEVICE_TYPES`, the values of
the policy's ``allowed_devices`` (enforced by :mod:`.device_gate`):

* ``tablet``: an iPad, a "Tablet" token (Firefox on Android tablets, Kindle,
  PlayBook), or Android without "Mobile" (Google's rule: Android phones'
  browsers send "Mobile", tablets' do not);
* ``mobile``: an iPhone or iPod, any "Mobi" token (MDN's advice for phones:
  "Mobile", "Opera Mobi", "IEMobile", which covers Android phones), Opera
  Mini;
* ``desktop``: every other browser, meaning an agent that starts with
  ``Mozilla/`` (every mainstream browser's does) or names a browser of
  :data:`BROWSERS`;
* :data:`OTHER`: an agent that names no browser (empty, curl, a script's
  HTTP library). It is no device type, so a policy that leaves any type out
  refuses it: it cannot show it is one of the allowed kinds.

The user agent is what the client says it is: any client can send a
desktop agent. The device policy keeps members' ordinary browsers to the
kinds the workspace allows (no customer data on phones); it does not stop
someone set on bypassing it, which the IP allowlist and MFA are for. iPadOS
Safari sends a Mac's agent by default, so it counts as desktop: no server
can tell it from a Mac.
"""

from __future__ import annotations

__all__ = ["DEVICE_TYPES", "NAMES", "OTHER", "browser_of", "describe", "device_allowed",
           "device_type", "system_of"]

#: The device types a workspace's policy chooses from, in the order pages list them.
DEVICE_TYPES: tuple[str, ...] = ("desktop", "mobile", "tablet")
#: The type of an agent that names no browser (see the module docstring).
OTHER = "other"
#: How each type reads in a sentence ("cannot be used from a phone").
NAMES = {"desktop": "a desktop or laptop computer", "mobile": "a phone", "tablet": "a tablet",
         OTHER: "a client that is not a recognised browser"}

#: (token in the user agent, browser name), checked in order.
BROWSERS: tuple[tuple[str, str], ...] = (
    ("edg/", "Edge"), ("edga/", "Edge"), ("edgios/", "Edge"), ("opr/", "Opera"),
    ("opera", "Opera"), ("samsungbrowser/", "Samsung Internet"), ("firefox/", "Firefox"),
    ("fxios/", "Firefox"), ("crios/", "Chrome"), ("chromium/", "Chromium"),
    ("chrome/", "Chrome"), ("safari/", "Safari"), ("curl/", "curl"),
    ("python-requests/", "Python requests"), ("werkzeug/", "Test client"),
)
#: (token, system name), checked in order.
SYSTEMS: tuple[tuple[str, str], ...] = (
    ("iphone", "iPhone"), ("ipad", "iPad"), ("android", "Android"), ("cros", "ChromeOS"),
    ("windows", "Windows"), ("macintosh", "macOS"), ("mac os x", "macOS"),
    ("linux", "Linux"),
)


def _first(agent: str, table: tuple[tuple[str, str], ...], default: str) -> str:
    lowered = agent.lower()
    return next((name for token, name in table if token in lowered), default)


def browser_of(agent: str) -> str:
    """The browser named by ``agent``, e.g. ``"Firefox"``."""
    return _first(agent, BROWSERS, "Unknown browser")


def system_of(agent: str) -> str:
    """The operating system named by ``agent``, e.g. ``"Windows"``."""
    return _first(agent, SYSTEMS, "unknown device")


def describe(agent: str) -> str:
    """``"<browser> on <system>"``, e.g. ``"Chrome on Windows"``."""
    return f"{browser_of(agent or '')} on {system_of(agent or '')}"


#: Names in :data:`BROWSERS` of clients that are no browser ("" : no name at all).
NOT_BROWSERS = frozenset({"", "curl", "Python requests", "Test client"})
#: Tokens (lowercase) that make an agent a tablet's, and a phone's, checked in that order:
#: an iPad's Safari sends "Mobile/" too, so the tablet tokens come first.
TABLET_TOKENS: tuple[str, ...] = ("ipad", "tablet", "kindle", "silk/", "playbook")
MOBILE_TOKENS: tuple[str, ...] = ("iphone", "ipod", "mobi", "opera mini", "windows phone",
                                  "blackberry")


def device_type(agent: str | None) -> str:
    """The device type of a user agent: ``desktop``, ``mobile``, ``tablet`` or :data:`OTHER`.

    >>> device_type("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) ... Safari/604.1")
    'tablet'
    """
    lowered = (agent or "").strip().lower()
    if not lowered:
        return OTHER
    if any(token in lowered for token in TABLET_TOKENS):
        return "tablet"
    if any(token in lowered for token in MOBILE_TOKENS):
        return "mobile"
    if "android" in lowered:  # no "Mobile" (MOBILE_TOKENS' "mobi"): a tablet
        return "tablet"
    if lowered.startswith("mozilla/") or _first(lowered, BROWSERS, "") not in NOT_BROWSERS:
        return "desktop"
    return OTHER


def device_allowed(kind: str, allowed: tuple[str, ...]) -> bool:
    """Whether a device of type ``kind`` may use a workspace that allows ``allowed``.

    A workspace allowing every type admits every agent, :data:`OTHER`
    included; one that leaves a type out admits only the types it names.
    """
    return len(allowed) == len(DEVICE_TYPES) or kind in allowed
