"""A session's device in words ("Chrome on Windows") read from its user agent.

Werkzeug no longer parses user agents, and a full parser is a large, fast
moving dependency for a label a member reads; this recognises the common
browsers and systems by the tokens they send, most specific first (Edge
and Opera send "Chrome", Chrome sends "Safari", Android sends "Linux").
Anything else is "Unknown browser" / "unknown device": the label is a hint
to the member, never a security decision.
"""

from __future__ import annotations

__all__ = ["browser_of", "describe", "system_of"]

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
