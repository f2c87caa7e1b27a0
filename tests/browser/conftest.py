"""Fixtures of the real-browser tests: the demo app served over HTTP, and a watched Chromium.

These tests run on SQLite only (a file in the test's tmp dir): what they add
to the suite is the browser's side (real forms with CSRF tokens, cookies,
the matrix editor's JavaScript, redirects), while the database backends are
covered by the rest of the suite.

* ``live`` builds the app like :func:`tests.conftest.make_app`, but with CSRF
  enabled (the browser submits the real forms, tokens included) and no
  ``SERVER_NAME`` (the browser reaches it as ``127.0.0.1:<port>``), seeds
  :func:`tests.conftest.build_world` and serves it from a werkzeug server in a
  background thread of this process (so Flask-Mail's ``record_messages()``
  sees the mails the server sends).
* ``browser`` is one headless Debian ``/usr/bin/chromium`` per session; the
  ``browse`` factory opens a context per user and, when the test ends,
  asserts that no page sent a request off 127.0.0.1 (the app must render
  fully offline), logged a console error or threw, violated the
  Content-Security-Policy (each ``securitypolicyviolation`` event and each
  Chromium "Refused to ..." console line is recorded), and that the server
  answered no 5xx.
* Screenshots go to ``screenshots/`` at the repo root (ignored by git) or
  to ``RBAC_SCREENSHOT_DIR``.

Playwright's own browser download does not work on these machines, so the
browser is always launched from ``/usr/bin/chromium`` (never ``playwright
install``). Without it the tests skip, except on CI (``CI=true``) where they
fail, as the PostgreSQL fixtures do.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

import pytest
import sqlalchemy as sa
from flask import Flask
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    expect,
    sync_playwright,
)
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Request as PlaywrightRequest
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from tests.conftest import build_world, make_app

from .gallery import write_gallery

CHROMIUM = "/usr/bin/chromium"
REPO_ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "password"  # build_world()'s password for every user
#: The viewport height of each width the pages are checked at (a laptop, a phone).
VIEWPORT_HEIGHTS = {1280: 860, 390: 844}
#: Milliseconds any single Playwright wait may take before the test fails.
TIMEOUT_MS = 10_000
#: Chromium's console line for a page answered with an error status.
_FAILED_LOAD = re.compile(r"Failed to load resource: the server responded with a status of (\d+)")
#: Chromium's console lines for what the Content-Security-Policy blocked.
_CSP_CONSOLE = re.compile(r"Content Security Policy|Refused to (execute|load|apply|frame)")
#: Prefix of the console line the init script writes for a ``securitypolicyviolation`` event.
CSP_EVENT_PREFIX = "CSP violation:"
#: Runs before any page script (Playwright's init scripts are exempt from the page's CSP):
#: reports every violation the page's policy raises, inline handlers and styles included.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", function (e) {
  console.error("%s " + e.effectiveDirective + " blocked " + (e.blockedURI || "inline") +
                " at " + e.sourceFile + ":" + e.lineNumber + " (" + e.sample + ")");
}, true);
""" % CSP_EVENT_PREFIX  # noqa: UP031  braces in the JavaScript make % the plainest template


def page_width(page: Page) -> int:
    """The page's laid-out width in CSS pixels (``scrollWidth``), measured once the page
    and its stylesheets have loaded: before that, an unstyled table is wider."""
    page.wait_for_load_state("load")
    return int(page.evaluate("document.documentElement.scrollWidth"))


def sideways(page: Page) -> int:
    """How many pixels the loaded page is wider than its window (0: no sideways scroll)."""
    page.wait_for_load_state("load")
    return int(page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def _unavailable(reason: str) -> None:
    """Skip locally, fail on CI: a CI run without the browser must not pass silently."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run in CI: {reason}")
    pytest.skip(reason)


# -- the server ---------------------------------------------------------------------------


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's request handler without the per-request access log line."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return None


@dataclass
class World:
    """Plain values from the seeded world (its ORM objects are detached once seeded)."""

    workspace: str
    leads_by_owner: dict[str, str]          # owner key ("unowned" for none) -> lead name
    lead_ids: dict[str, int]                # same keys -> lead id
    deal_count: int


@dataclass
class Live:
    """The app served on 127.0.0.1, and the seeded world."""

    app: Flask
    base_url: str
    world: World
    #: What a ``seed`` callback of :func:`serve_live` returned (ids of extra rows).
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path


Seed = Callable[[SimpleNamespace], dict[str, Any]]


def _seed(seed: Seed | None) -> tuple[World, dict[str, Any]]:
    """Seed :func:`tests.conftest.build_world` (and ``seed``'s rows) in the app context."""
    w = build_world()
    extra = seed(w) if seed is not None else {}
    with rbac.system():
        deal_count = len(w.deals)
        leads = db.session.scalars(sa.select(Lead).where(Lead.workspace_id == w.ws.id)).all()
        keys = {u.id: key for key, u in w.users.items()}
        world = World(
            workspace=w.ws.name,
            leads_by_owner={keys.get(lead.owner_id, "unowned"): lead.name for lead in leads},
            lead_ids={keys.get(lead.owner_id, "unowned"): lead.id for lead in leads},
            deal_count=deal_count,
        )
    return world, extra


def buffered(app: WSGIApplication) -> WSGIApplication:
    """Wrap ``app`` so each response body is read whole and its iterable closed.

    werkzeug's development server skips ``close()`` on the response iterable
    when the browser drops the connection mid-body (a page navigates away
    while a stylesheet is still streaming). The open static file then surfaces
    as an unraisable ``ResourceWarning`` in whichever test runs next.
    Buffering closes every file before a byte is written.
    """
    def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        body = app(environ, start_response)
        try:
            return [b"".join(body)]
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
    return middleware


@contextlib.contextmanager
def serve_live(db_file: Path, seed: Seed | None = None) -> Iterator[Live]:
    """Seed the demo app in ``db_file`` and serve it from a background thread.

    ``seed(w)`` runs after :func:`tests.conftest.build_world` inside the app
    context; it adds rows and returns the plain values (ids) a test needs.
    """
    app = make_app(f"sqlite:///{db_file}", WTF_CSRF_ENABLED=True, SERVER_NAME=None,
                   RBAC_MAIL_CONSOLE=False)  # captured via record_messages(), not stderr
    with app.app_context():
        db.create_all()
        world, extra = _seed(seed)
        db.session.remove()
    server: BaseWSGIServer = make_server("127.0.0.1", 0, buffered(app), threaded=True,
                                         request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server",
                              daemon=True)
    thread.start()
    try:
        yield Live(app=app, base_url=f"http://127.0.0.1:{server.port}", world=world,
                   extra=extra)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """Serve a freshly seeded demo app from a werkzeug server in a background thread.

    Function scope: the journeys change roles, members and invitations, so
    each test gets its own database file and server.
    """
    with serve_live(tmp_path / "browser.db") as served:
        yield served


# -- the browser --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the session (launching costs ~1 s)."""
    if not os.access(CHROMIUM, os.X_OK):
        _unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    with sync_playwright() as pw:
        # Root cannot use Chromium's sandbox; Playwright adds --no-sandbox by
        # default, named here so the requirement is visible. No background
        # traffic (component updates, safe browsing) from a test browser.
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                      args=["--no-sandbox", "--disable-background-networking"])
        try:
            yield instance
        finally:
            instance.close()


@dataclass
class Watch:
    """What the pages of one test did that they should not: the test asserts it is empty."""

    base_url: str
    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    #: URLs a test navigated to expecting an error status (their console line is fine).
    expected_failures: set[str] = field(default_factory=set)

    def on_request(self, request: PlaywrightRequest) -> None:
        self.requests.append(request.url)

    def on_response(self, response: Response) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.url}")

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        where = message.location.get("url", "")
        if _FAILED_LOAD.search(message.text) and where in self.expected_failures:
            return
        if message.text.startswith(CSP_EVENT_PREFIX) or _CSP_CONSOLE.search(message.text):
            self.csp_violations.append(f"{message.text} (at {where})")
            return
        self.console_errors.append(f"{message.text} (at {where})")

    def on_page_error(self, error: PlaywrightError) -> None:
        self.page_errors.append(str(error))

    def offsite(self) -> list[str]:
        """Requests that left this server: the pages must not need the network."""
        local = self.base_url + "/"
        return [u for u in self.requests if not u.startswith((local, "data:"))]

    def problems(self) -> list[str]:
        """Everything :meth:`check` refuses, one line each (for a report of many pages)."""
        named = [("off-site request", self.offsite()), ("uncaught error", self.page_errors),
                 ("CSP violation", self.csp_violations), ("console error", self.console_errors),
                 ("5xx", self.server_errors)]
        return [f"{label}: {item}" for label, items in named for item in items]

    def drain(self) -> list[str]:
        """Return :meth:`problems` and forget them: the next page starts clean."""
        found = self.problems()
        for seen in (self.requests, self.page_errors, self.csp_violations,
                     self.console_errors, self.server_errors):
            seen.clear()
        return found

    def check(self) -> None:
        assert self.requests, "the browser made no request at all"
        assert self.offsite() == [], "pages fetched something from off the machine"
        assert self.page_errors == [], "uncaught JavaScript errors"
        assert self.csp_violations == [], "the Content-Security-Policy blocked something"
        assert self.console_errors == [], "errors in the browser console"
        assert self.server_errors == [], "the server answered 5xx"


class Browse:
    """Open watched browser contexts (one per user) on the live app."""

    def __init__(self, browser: Browser, live: Live) -> None:
        self.browser = browser
        self.live = live
        self.watch = Watch(live.base_url)
        self.contexts: list[BrowserContext] = []

    def context(self, width: int = 1280) -> BrowserContext:
        """A fresh context (own cookies: a separate user), watched like every other.

        ``width`` is the viewport's CSS width: 1280 (a laptop) or 390 (a phone).
        """
        ctx = self.browser.new_context(base_url=self.live.base_url,
                                       viewport={"width": width, "height": VIEWPORT_HEIGHTS[width]})
        ctx.set_default_timeout(TIMEOUT_MS)
        ctx.add_init_script(CSP_LISTENER)
        ctx.on("request", self.watch.on_request)
        ctx.on("response", self.watch.on_response)
        ctx.on("console", self.watch.on_console)
        ctx.on("weberror", lambda web_error: self.watch.on_page_error(web_error.error))
        # Recorded above, then never let out: a test must not send traffic off the machine.
        local = self.live.base_url + "/"
        ctx.route(lambda url: not url.startswith(local), lambda route: route.abort())
        self.contexts.append(ctx)
        return ctx

    def page(self, width: int = 1280) -> Page:
        return self.context(width).new_page()

    def login(self, email: str, password: str = PASSWORD, *,
              screenshot: Callable[[Page, str], None] | None = None,
              width: int = 1280) -> Page:
        """Sign in through the real login form (CSRF token and all) in a new context."""
        page = self.page(width)
        page.goto("/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        if screenshot is not None:
            screenshot(page, "login")
        page.click("button:has-text('Sign in')")
        page.wait_for_url(self.live.url("/"))
        # text_content, not inner_text: a phone-width header hides the address.
        assert email in (page.locator(".user-menu summary").text_content() or "")
        return page

    def goto_refused(self, page: Page, path: str, status: int) -> Response:
        """Open ``path`` expecting the refusal page with ``status`` (403 or 404)."""
        url = self.live.url(path)
        self.watch.expected_failures.add(url)
        response = page.goto(url)
        assert response is not None and response.status == status, (
            f"{path}: {response.status if response else None}, expected {status}")
        return response

    def close(self) -> None:
        for ctx in self.contexts:
            ctx.close()


@pytest.fixture
def browse(browser: Browser, live: Live) -> Iterator[Browse]:
    """Contexts for this test; at its end, check what the watcher saw.

    The contexts are closed before the server stops, so no keep-alive
    connection is left open on a server thread.
    """
    session = Browse(browser, live)
    try:
        yield session
    finally:
        session.close()
    session.watch.check()


@pytest.fixture(scope="session")
def screenshot_dir() -> Iterator[Path]:
    """``RBAC_SCREENSHOT_DIR`` or ``<repo>/screenshots`` (git-ignored).

    When the session ends, :func:`.gallery.write_gallery` writes its
    ``index.html``. Each xdist worker writes it as it finishes, from every
    PNG there by then, so the last worker's sheet shows the whole run.
    """
    path = Path(os.environ.get("RBAC_SCREENSHOT_DIR") or REPO_ROOT / "screenshots")
    path.mkdir(parents=True, exist_ok=True)
    yield path
    write_gallery(path)


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Callable[[Page, str], None]:
    """Return ``shot(page, name)``: a full-page PNG for a reviewer to look at."""
    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)
    return shot


def settings_tab(page: Page, label: str) -> None:
    """Click a tab of the settings navigation and wait for its page."""
    page.click(f".rbac-tabs a.rbac-tab:text-is('{label}')")
    expect(page.locator(".rbac-tabs a.rbac-tab.is-current")).to_have_text(label)

