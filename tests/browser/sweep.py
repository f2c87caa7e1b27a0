"""The page sweep's parts: which pages exist, what fills their URLs, and the checks.

:func:`visits` enumerates the app's URL map once at collection: every GET
rule that renders a page (not the JSON API, CSV exports, Flask-Admin's
ajax and export endpoints, nor static files), crossed with the roles and
widths of a plan (:data:`OWNER_PLAN`, :data:`MEMBERS_PLAN`). :func:`seed_extra` adds to the seeded world what
some pages need to show anything (a custom role, a sharing agreement, an
open invitation) and returns the ids that fill each URL argument.

:func:`check_page` runs the checks of one page and returns the problems,
one line each, so that a failing page names every fault at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from playwright.sync_api import Browser, Page
from werkzeug.routing import Rule

from crm_app import create_app
from crm_app.accounting.models import Invoice
from crm_app.campaigns.models import Campaign
from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, gate, roles, sharing, team, workspaces
from crm_rbac_plugin.certification import runs as certification_runs
from crm_rbac_plugin.team import password_reset

from .conftest import Browse, Watch, serve_live

HERE = Path(__file__).resolve().parent
#: axe-core 4.12.1 (Deque Systems, MPL-2.0), from the axe-playwright-python 0.1.8 wheel.
AXE_JS = HERE / "vendor" / "axe.min.js"
CHECKS_JS = HERE / "page_checks.js"
#: axe-core impacts that fail a page (``minor`` and ``moderate`` are left to review).
FAILING_IMPACTS = ("serious", "critical")

#: Who visits which pages at which widths, per test module (xdist's
#: ``--dist loadfile`` gives each module its own worker). The Owner sees every
#: page at both widths; the other roles see the pages they may open at 390 px
#: only, the width where a role's extra or missing buttons break a layout:
#: every role at both widths would double the sweep's ~3 minutes on 2 CPUs.
OWNER_PLAN: dict[str, tuple[int, ...]] = {"owner": (1280, 390), "anonymous": (1280, 390)}
MEMBERS_PLAN: dict[str, tuple[int, ...]] = {"admin": (390,), "member": (390,), "viewer": (390,)}
#: Pages only a signed-out browser opens (a signed-in one is sent on).
PUBLIC = frozenset({"auth.login", "rbac_settings.accept_invitation",
                    "rbac_settings.forgot_password", "rbac_settings.reset_password"})
#: Endpoint suffixes and prefixes that answer data, not a page.
NOT_PAGES_SUFFIX = (".static", ".ajax_lookup", ".export", "_csv", "_zip",
                    ".progress")  # a running import's progress, JSON
NOT_PAGES_PREFIX = ("rbac_api.",)
#: Endpoints that answer data, not a page: an attachment's download sends the file itself,
#: a member's picture the image (shown on the profile, members and member pages).
NOT_PAGES = frozenset({"files.download", "rbac_settings.member_picture"})
#: Flask-Admin views and the seeded row each one's details and edit pages show.
ADMIN_ROWS = {"admin_clients": "clients", "admin_deals": "deals", "admin_leads": "leads",
              "admin_tasks": "tasks", "admin_invoices": "invoices", "rbac_admin_roles": "role",
              "rbac_admin_members": "membership", "rbac_admin_departments": "department",
              "rbac_admin_audit": "audit_event", "rbac_admin_sharing": "agreement"}
#: Query strings that make a page show its result (a second visit of that endpoint).
VARIANTS: dict[str, dict[str, str]] = {
    "rbac_settings.compare": {"roles": "ids={role}&ids={builtin_role}",
                              "granting": "permission=leads.view"},
    "rbac_oversight.explain_page": {"result": "member={membership}&resource=leads"
                                              "&action=view&record={leads}"},
    "rbac_oversight.who_could": {"result": "resource=leads&action=view&record={leads}"},
    "rbac_settings.sharing": {"with": "tab=with"},
    "rbac_settings.new_role": {"clone": "clone={builtin_role}"},
}


@dataclass(frozen=True)
class Visit:
    """One page, as one role, at one width."""

    role: str
    width: int
    endpoint: str
    arguments: tuple[str, ...]
    variant: str = ""
    #: axe-core (~0.4 s a page) runs once per role and page, at the role's
    #: widest width: 1280 for the Owner, 390 for the others, so both layouts
    #: are audited (a phone header that hides a control's text is an axe finding).
    axe: bool = True

    @property
    def page_name(self) -> str:
        return self.endpoint + (f"~{self.variant}" if self.variant else "")

    def __str__(self) -> str:
        return f"{self.role}-{self.page_name}-{self.width}"


def is_page(rule: Rule) -> bool:
    """Tell whether a GET rule renders an HTML page (the sweep also checks the content type)."""
    methods = rule.methods or set()
    return ("GET" in methods and not rule.endpoint.endswith(NOT_PAGES_SUFFIX)
            and not rule.endpoint.startswith(NOT_PAGES_PREFIX) and rule.endpoint != "static"
            and rule.endpoint not in NOT_PAGES)


def app_rules() -> list[Rule]:
    """The app's URL rules, from a throwaway app (the URL map needs no database)."""
    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": "sqlite://",
                      "SECRET_KEY": "sweep"})
    return list(app.url_map.iter_rules())


def visits(rules: list[Rule], plan: dict[str, tuple[int, ...]]) -> list[Visit]:
    """Every page of ``rules`` for each role and width of ``plan``, in a stable order."""
    pages = sorted({(r.endpoint, tuple(sorted(r.arguments))) for r in rules if is_page(r)})
    found = []
    for role, widths in plan.items():
        for width in widths:
            axe = width == max(widths)
            for endpoint, arguments in pages:
                if (endpoint in PUBLIC) != (role == "anonymous"):
                    continue
                found.append(Visit(role, width, endpoint, arguments, axe=axe))
                found.extend(Visit(role, width, endpoint, arguments, name, axe=axe)
                             for name in VARIANTS.get(endpoint, {}))
    return found


def seed_extra(w: SimpleNamespace) -> dict[str, Any]:
    """Add a custom role, a sharing agreement and an open invitation; return the URL values.

    Keys: each record resource (``leads`` ...: the record the Member owns),
    ``membership`` (the Member), ``role`` (the custom role), ``builtin_role``,
    ``agreement``, ``token`` (the invitation's), ``reset_token`` (the Member's
    password-reset link), ``department`` and ``audit_event``; ``campaigns`` and
    ``invoices`` are a campaign and an invoice of the Member's.
    """
    m = rbac.models
    owner = rbac.access_for(w.members["owner"])
    with rbac.as_member(owner):
        custom = roles.create_role(rbac, owner, name="Deal desk", description="Reads deals.",
                                   grants=roles.parse_grants(rbac, [
                                       {"resource": "deals", "action": "view"}]))
        agreement = sharing.create_agreement(rbac, owner, workspace="beta",
                                             permissions=["clients.view"])
        viewer = workspaces.role_by_key(rbac, w.ws, "viewer")
        _, token = team.invite(rbac, owner, "invited@example.test", [viewer], send=False)
        run = certification_runs.start_run(rbac, owner, "deals")
        db.session.commit()
        # A pending approval request of the Owner's: a plan change the policy names.
        approvals.save(rbac, owner, {"operations": {"plan": True}})
        db.session.commit()
        try:
            roles.set_plan(rbac, owner, w.ws, "pro")
        except gate.ApprovalPending as pending:
            approval_request = pending.request_id
    with rbac.system():
        audit_event = db.session.scalar(sa.select(sa.func.min(m.AuditEvent.id)))
        # A campaign and an invoice of the Member's: the modules' detail and edit pages.
        member_user = w.leads["member"].owner_id
        campaign = Campaign(workspace_id=w.ws.id, owner_id=member_user, name="Spring launch",
                            subject="Hello", body="Our spring offer.")
        campaign.leads = [w.leads["member"]]
        invoice = Invoice(workspace_id=w.ws.id, owner_id=member_user, number="INV-9001",
                          client_id=w.clients["member"].id, amount=Decimal("120.00"),
                          issued_on=dt.date(2026, 1, 5), due_on=dt.date(2026, 2, 4))
        db.session.add_all([campaign, invoice])
        db.session.commit()
    values: dict[str, Any] = {name: getattr(w, name)["member"].id
                              for name in ("leads", "clients")}
    values["deals"] = w.deals["member-new"].id
    values["tasks"] = w.tasks["loose-member"].id
    values["notes"] = w.notes["on-member"].id
    values["campaigns"] = campaign.id
    values["invoices"] = invoice.id
    values.update(membership=w.members["member"].id, role=custom.id, agreement=agreement.id,
                  builtin_role=viewer.id, token=token,
                  reset_token=password_reset.reset_token(rbac, w.users["member"]),
                  department=w.departments["sales"].id, audit_event=audit_event,
                  approval_request=approval_request, run=run.id)
    return values


def path_of(visit: Visit, rules: dict[str, Rule], values: dict[str, Any]) -> str:
    """The URL path of ``visit``: its rule's arguments filled from the seeded ``values``."""
    blueprint = visit.endpoint.split(".")[0]
    fill = {"id": values.get(blueprint), "membership_id": values["membership"],
            "role_id": values["role"], "agreement_id": values["agreement"],
            "token": values["token"], "request_id": values["approval_request"],
            "run_id": values["run"], "dept_id": values["department"], "resource": "leads"}
    if visit.endpoint == "rbac_settings.reset_password":
        fill["token"] = values["reset_token"]  # a live link: the page, not its error
    rule = rules[visit.endpoint]
    built = rule.build({name: fill[name] for name in visit.arguments}, append_unknown=False)
    assert built is not None, visit
    path = built[1]
    query = ""
    if visit.endpoint.endswith((".details_view", ".edit_view")) and blueprint in ADMIN_ROWS:
        query = f"id={values[ADMIN_ROWS[blueprint]]}"
    if visit.variant:
        query = VARIANTS[visit.endpoint][visit.variant].format(**values)
    return path + (f"?{query}" if query else "")


# -- the checks ---------------------------------------------------------------------------

#: One of each kind of control, unstyled: what Chromium's user-agent stylesheet gives them.
UA_CONTROLS = {
    "input:text": '<input type="text">', "input:password": '<input type="password">',
    "input:email": '<input type="email">', "input:number": '<input type="number">',
    "input:search": '<input type="search">', "input:date": '<input type="date">',
    "input:datetime-local": '<input type="datetime-local">', "input:url": '<input type="url">',
    "input:tel": '<input type="tel">', "input:file": '<input type="file">',
    "input:color": '<input type="color">', "input:submit": '<input type="submit">',
    "select": "<select><option>a</option></select>",
    "select:multiple": "<select multiple><option>a</option></select>",
    "textarea": "<textarea></textarea>", "button": "<button>b</button>",
}


def ua_defaults(browser: Browser) -> dict[str, dict[str, str]]:
    """Read the computed style Chromium gives each control of :data:`UA_CONTROLS` by default."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content("<!doctype html><body>" + "".join(
            f'<div data-kind="{k}">{html}</div>' for k, html in UA_CONTROLS.items()))
        return page.evaluate("""() => Object.fromEntries(
          Array.from(document.querySelectorAll("[data-kind]")).map((d) => {
            const s = getComputedStyle(d.firstElementChild);
            return [d.dataset.kind, {
              fontSize: s.fontSize, radius: s.borderTopLeftRadius,
              border: s.borderTopWidth + " " + s.borderTopStyle + " " + s.borderTopColor,
              padding: [s.paddingTop, s.paddingRight, s.paddingBottom, s.paddingLeft].join(" "),
            }];
          }))""")
    finally:
        context.close()


def run_axe(page: Page) -> list[str]:
    """Run axe-core on the page; one line per serious or critical violation.

    ``page.add_script_tag`` would insert axe as an inline ``<script>``, which
    the pages' ``script-src 'self'`` refuses (a CSP violation the watcher
    records). ``page.evaluate`` runs through the DevTools protocol, which the
    page's policy does not govern.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    violations = page.evaluate("""async () => {
      const result = await axe.run(document, {resultTypes: ["violations"]});
      return result.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.map((n) => n.target.join(" ")),
      }));
    }""")
    return [f"axe {v['id']} ({v['impact']}): {v['help']}: {', '.join(v['targets'][:4])}"
            + (f" and {len(v['targets']) - 4} more" if len(v["targets"]) > 4 else "")
            for v in violations if v["impact"] in FAILING_IMPACTS]


def _counted(items: list[str]) -> list[str]:
    """``items`` without repeats, a repeated one suffixed with its count (40 row boxes: one line)."""
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return [item + (f" (x{n})" if n > 1 else "") for item, n in counts.items()]


def check_page(page: Page, ua: dict[str, dict[str, str]], *, axe: bool = True) -> list[str]:
    """Problems of the open page: sideways scroll, unstyled or unlabelled controls, axe.

    A control counts as styled when the page's CSS changed what Chromium's
    user-agent stylesheet gives it (:func:`ua_defaults` reads those from an
    unstyled page of the same browser, so the comparison follows the
    browser's version):

    * a checkbox, radio or range is drawn by the browser, so its one visible
      style is ``accent-color``: it must not be ``auto`` (or the page draws
      it itself with ``appearance: none``);
    * any other control is unstyled when its font-size is still the UA's
      (13.333px: the page never set ``font: inherit`` or a size), or when its
      border, border-radius and padding are all three still the UA's (a
      flat grey inset box).

    A form control (not a button) has a label when ``control.labels`` has a
    non-empty one (``label[for]`` or a wrapping label), or an ``aria-label``,
    or an ``aria-labelledby`` pointing at text.

    A script or stylesheet included twice is a fault too: a script runs once
    per inclusion, so its listeners fire twice (two dialogs for one click).
    """
    found = page.evaluate(CHECKS_JS.read_text(encoding="utf-8"), ua)
    problems = []
    if found["scrollWidth"] > found["innerWidth"]:
        problems.append(f"scrolls sideways: {found['scrollWidth']}px wide in a "
                        f"{found['innerWidth']}px viewport; sticking out: "
                        + "; ".join(found["overflowing"]))
    problems += [f"unstyled control {c}" for c in _counted(found["unstyled"])]
    problems += [f"unlabelled control {c}" for c in _counted(found["unlabelled"])]
    problems += [f"loaded twice: {url}" for url in found["twice"]]
    return problems + (run_axe(page) if axe else [])


# -- the visits ---------------------------------------------------------------------------


class Sweep:
    """A module's server, one signed-in page per (role, width), and Chromium's defaults."""

    def __init__(self, browse: Browse, ua: dict[str, dict[str, str]]) -> None:
        self.browse = browse
        self.ua = ua
        self.rules = {r.endpoint: r for r in browse.live.app.url_map.iter_rules()}
        self.pages: dict[tuple[str, int], Page] = {}
        #: (role, width, final URL) of the pages checked: a redirect to one is not checked twice.
        self.checked: set[tuple[str, int, str]] = set()

    def page(self, role: str, width: int) -> Page:
        """The role's page at ``width``, signed in on first use and reused after."""
        key = (role, width)
        if key not in self.pages:
            if role == "anonymous":
                self.pages[key] = self.browse.page(width)
            else:
                self.pages[key] = self.browse.login(f"{role}@example.test", width=width)
        return self.pages[key]

    def url(self, visit: Visit) -> str:
        return self.browse.live.url(path_of(visit, self.rules, self.browse.live.extra))


@contextlib.contextmanager
def open_sweep(browser: Browser, db_file: Path) -> Iterator[Sweep]:
    """Serve one seeded app for a module; its contexts close before the server stops."""
    with serve_live(db_file, seed_extra) as live:
        browse = Browse(browser, live)
        try:
            yield Sweep(browse, ua_defaults(browser))
        finally:
            browse.close()


def _skip(watch: Watch, reason: str) -> None:
    """Skip a page not to be checked, unless the browser saw an error on the way."""
    problems = watch.drain()
    assert not problems, f"{reason}, but:\n  " + "\n  ".join(problems)
    pytest.skip(reason)


def visit_and_check(visit: Visit, sweep: Sweep, screenshot_dir: Path) -> None:
    """Open the page, keep its screenshot, and fail with every problem it has.

    A refusal (403, 404), an answer that is not HTML or a redirect to a page
    checked already skips the visit; a signed-in role sent to the login page
    fails it.
    """
    page = sweep.page(visit.role, visit.width)
    watch = sweep.browse.watch
    watch.drain()
    url = sweep.url(visit)
    watch.expected_failures.add(url)  # a refusal's console line; the visit is skipped below
    response = page.goto(url)
    assert response is not None, url
    if response.status in (403, 404):
        _skip(watch, f"{visit.role} is refused {url} ({response.status})")
    kind = response.headers.get("content-type", "")
    if not kind.startswith("text/html"):
        pytest.skip(f"{url} answers {kind}")
    if visit.role != "anonymous" and page.url.endswith("/login"):
        pytest.fail(f"{visit.role} was sent to the login page from {url}")
    landed = (visit.role, visit.width, page.url)
    if landed in sweep.checked:
        _skip(watch, f"{url} redirects to {page.url}, checked already")
    sweep.checked.add(landed)
    page.screenshot(path=str(screenshot_dir / f"{visit}.png"), full_page=True)
    problems = check_page(page, sweep.ua, axe=visit.axe) + watch.drain()
    assert not problems, (f"{visit.page_name} at {visit.width}px as {visit.role} "
                          f"({url}):\n  " + "\n  ".join(problems))
