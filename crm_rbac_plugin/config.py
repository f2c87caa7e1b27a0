"""The ``RBAC_*`` configuration keys and their defaults.

:func:`apply_defaults` (called by ``init_app``) fills in every key the host
did not set and refuses an ``RBAC_*`` key this table does not know, so a
misspelt key fails at start-up instead of being ignored. The plugin reads
every key through :func:`setting`, which refuses an unknown key too, except
the per-request path, which reads its few keys from :func:`request_settings`.
"""

from __future__ import annotations

import copy
import datetime as dt
import operator
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.globals import _cv_app

from .defaults import ROLE_TEMPLATES
from .errors import ConfigurationError
from .proxies import current_flask_app

#: Every configuration key the extension reads, with its default.
DEFAULTS: dict[str, Any] = {
    # Plans: plan name -> list of module names it includes, or "*" for all.
    # A workspace whose plan is not listed here gets no module at all.
    "RBAC_PLANS": {"free": ["clients", "work"], "pro": ["sales", "clients", "work"],
                   "enterprise": "*"},
    # Plan given to workspaces created without one.
    "RBAC_DEFAULT_PLAN": "enterprise",
    # Records whose owner column is NULL are visible to every member who may
    # view the resource (as in most CRMs). Set False to hide them.
    "RBAC_UNOWNED_VISIBLE": True,
    # New records of a protected model get the current user as owner and the
    # current workspace when those columns are left empty.
    "RBAC_AUTO_FILL": True,
    # How many members' effective access one process keeps between requests.
    # Entries are invalidated by the workspace's policy version.
    "RBAC_CACHE_SIZE": 2048,
    # On PostgreSQL with psycopg 3, end a request's transaction with COMMIT
    # when it wrote nothing (PostgreSQL's own check), so psycopg keeps its
    # prepared statements instead of forgetting them at the ROLLBACK and
    # PostgreSQL does not plan every statement again (transactions.py).
    "RBAC_COMMIT_READ_ONLY": True,
    # Session key holding the current workspace id of a logged-in user.
    "RBAC_SESSION_KEY": "rbac_workspace_id",
    # Template rendered for a refused HTML request.
    "RBAC_FORBIDDEN_TEMPLATE": "rbac/403.html",
    # Register the ``flask rbac`` CLI group.
    "RBAC_CLI": True,
    # Register the settings pages and the JSON API blueprints. Set False to
    # mount neither (e.g. a host with its own admin UI); a prefix set to None
    # leaves out just that blueprint.
    "RBAC_REGISTER_BLUEPRINTS": True,
    # URL prefix of the role, member, plan and API-token settings pages.
    "RBAC_SETTINGS_URL_PREFIX": "/settings",
    # URL prefix of the JSON API (its OpenAPI description is <prefix>/openapi.json).
    "RBAC_API_URL_PREFIX": "/api/v1",
    # Largest JSON API request body, in bytes; a bigger one is refused with 413.
    "RBAC_API_MAX_BODY": 64 * 1024,
    # Blueprints whose routes accept an API token (Authorization: Bearer). A
    # token signs nobody in anywhere else: the account pages (MFA, tokens,
    # sessions, profile) and the HTML app are for a signed-in browser. Add a
    # host's own JSON blueprint here to let tokens reach it.
    "RBAC_TOKEN_BLUEPRINTS": ("rbac_api",),
    # Keys of the built-in roles whose holders (directly or through a role
    # inheriting from one) may "view as" another member; the Owner role's key
    # is "owner". The viewed member's access must also lie within the viewer's
    # own (oversight/viewas.py). None: any member with settings.view may.
    "RBAC_VIEW_AS_ROLES": ("owner", "admin"),
    # Show flashed messages on the settings pages. None: only while the host
    # has not overridden "rbac/base.html" (a host layout usually shows them).
    "RBAC_SETTINGS_FLASHES": None,
    # Lifetime of an invitation link, in seconds (7 days).
    "RBAC_INVITE_MAX_AGE": 7 * 24 * 3600,
    # Also print every mail to the console (True) or append it to a file (a path).
    # None: the console, only when MAIL_SERVER is not set (the demo), so a fresh
    # checkout shows invitation links without an SMTP server.
    "RBAC_MAIL_CONSOLE": None,
    # Base URL of every link in mails (see urls.external_base; None: SERVER_NAME, else
    # the request's host where TRUSTED_HOSTS vets it, else http://127.0.0.1:5000).
    "RBAC_BASE_URL": None,
    # Minimum seconds between two writes of a member's last activity.
    "RBAC_LAST_SEEN_INTERVAL": 300,
    # How many (member, workspace) pairs one process remembers as recently
    # recorded. A forgotten pair costs one conditional UPDATE that changes no
    # row, so this bounds memory without changing what is written.
    "RBAC_LAST_SEEN_TRACKED": 10_000,
    # Minutes an MFA check counts for step-up (view-as, role changes) in a
    # workspace whose security policy does not set its own.
    "RBAC_MFA_STEP_UP_MINUTES": 15,
    # Issuer name an authenticator app shows beside the account. None: the
    # workspace's name.
    "RBAC_MFA_ISSUER": None,
    # Endpoints a member who owes an MFA check or an enrolment may still
    # reach (the host's sign-out), besides static files and the MFA pages.
    "RBAC_MFA_EXEMPT_ENDPOINTS": ("auth.logout", "security.logout"),
    # Flask session key holding the server-side session id of a signed-in
    # user (its SHA-256 is the rbac_session row's sid_hash).
    "RBAC_SESSION_ID_KEY": "rbac_sid",
    # Minimum seconds between two writes of a session's last_seen_at: most
    # requests write nothing; the idle timeout is measured from that write.
    "RBAC_SESSION_TOUCH_SECONDS": 60,
    # Records updated per flush by a reassignment.
    "RBAC_REASSIGN_BATCH": 200,
    # The built-in roles a new workspace starts with (see defaults.py for the
    # entry format). A host replaces the list or extends it.
    "RBAC_ROLE_TEMPLATES": ROLE_TEMPLATES,
    # One implicit workspace for the whole app (an app without tenants): host
    # models need no workspace column (register_resource(..., workspace=None)),
    # every member acts in the workspace named by RBAC_DEFAULT_WORKSPACE, the
    # workspace switcher is hidden and sharing between workspaces is refused.
    "RBAC_SINGLE_TENANT": False,
    # Slug of the workspace that `flask rbac adopt` creates or fills, and the
    # one implicit workspace of single-tenant mode.
    "RBAC_DEFAULT_WORKSPACE": "default",
    # Role key given to a user who signs in with no membership at all, in the
    # RBAC_DEFAULT_WORKSPACE workspace (crm_rbac_plugin.adoption.enroll).
    # None: no automatic membership. Owner and Admin are refused.
    "RBAC_SIGNUP_ROLE": None,
    # Per-IP limit on attempts (POST) at the sign-in route (@rbac.rate_limited),
    # at invitation links and at the password-reset pages, in Flask-Limiter's
    # notation; None: no limit.
    "RBAC_SIGN_IN_RATE_LIMIT": "20 per minute",
    # Password-reset mails one address may be sent, in Flask-Limiter's notation
    # (the request form answers the same past it, and sends nothing); None: no limit.
    "RBAC_PASSWORD_RESET_RATE_LIMIT": "3 per hour",
    # Lifetime of a password-reset link, in seconds (30 minutes).
    "RBAC_PASSWORD_RESET_MAX_AGE": 30 * 60,
    # Where the rate-limit counts live: "memory://" counts per process;
    # "redis://127.0.0.1:6379" shares them between workers (production).
    "RBAC_RATELIMIT_STORAGE_URI": "memory://",
    # Failed sign-ins of one address before the first wait (1 s, then
    # doubling with each further failure).
    "RBAC_SIGN_IN_FREE_FAILURES": 5,
    # The same allowance for one client IP, larger: people behind one NAT mistype too.
    "RBAC_SIGN_IN_FREE_FAILURES_PER_IP": 20,
    # Longest wait after failed sign-ins, in seconds (15 minutes).
    "RBAC_SIGN_IN_MAX_WAIT": 15 * 60,
    # Seconds after the last failure at which a key's count starts again (1 day).
    "RBAC_SIGN_IN_FORGET_AFTER": 24 * 3600,
    # Days a browser that signed in to an account is remembered (a signed cookie):
    # its failures are counted apart from the account's, so someone failing from
    # elsewhere keeps no known browser of the account waiting; 0: not remembered.
    "RBAC_SIGN_IN_DEVICE_DAYS": 180,
    # -- notifications (crm_rbac_plugin.notify) --
    # Send the mails a request queued right after it committed, in the same
    # process (the demo); False leaves them to `flask rbac notify send`.
    "RBAC_NOTIFY_INLINE": False,
    # Attempts at one mail before it is marked failed.
    "RBAC_NOTIFY_MAX_ATTEMPTS": 5,
    # Seconds before the first retry of a failed mail; each retry doubles it.
    "RBAC_NOTIFY_RETRY_SECONDS": 60,
    # Mails one run of `flask rbac notify send` sends at most.
    "RBAC_NOTIFY_BATCH": 500,
    # Role assignments ending within this many days are told once
    # (`flask rbac notify send` scans them).
    "RBAC_NOTIFY_EXPIRY_DAYS": 7,
    # -- approval workflows (crm_rbac_plugin.approvals) --
    # Permission ("resource.action") an approver holds in a workspace whose
    # approval policy names none of its own.
    "RBAC_APPROVAL_PERMISSION": "approvals.decide",
    # Hours a new workspace policy gives a request before it expires (1-720).
    "RBAC_APPROVAL_EXPIRY_HOURS": 72,
    # Hours an approved export's single-use download link stays valid.
    "RBAC_APPROVAL_DOWNLOAD_HOURS": 24,
    # Largest file an approved export may store, in bytes; a larger one fails
    # with that reason (the file is produced at approval time and kept in the
    # request row until downloaded).
    "RBAC_APPROVAL_MAX_EXPORT_BYTES": 20 * 1024 * 1024,
    # -- anomaly alerts (crm_rbac_plugin.alerts) --
    # Evaluate the alert rules as audit events are written (False: none runs).
    "RBAC_ALERTS": True,
    # Default thresholds; an Owner overrides them per workspace on the Alerts
    # page, the API or the CLI. Rows one member exports in a clock hour:
    "RBAC_ALERT_EXPORT_ROWS_PER_HOUR": 5000,
    # Refused attempts of one member in a 10-minute window:
    "RBAC_ALERT_REFUSALS_PER_10_MINUTES": 20,
    # Records one member deletes in a clock hour (a bulk delete counts its rows):
    "RBAC_ALERT_DELETIONS_PER_HOUR": 200,
    # A sign-in from an address the member has not used for this many days:
    "RBAC_ALERT_NEW_ADDRESS_DAYS": 90,
    # Business hours, in each workspace's time zone: weekdays (Monday 0) and
    # the hours [start, end); activity outside them raises one alert per member
    # per day. No days (the default): the off-hours rule is off until an Owner
    # sets the workspace's days, since no default can know its zone and habits.
    "RBAC_ALERT_BUSINESS_DAYS": (),
    # The first business hour (0-23) ...
    "RBAC_ALERT_BUSINESS_START_HOUR": 7,
    # ... and the hour business ends (1-24, after the start).
    "RBAC_ALERT_BUSINESS_END_HOUR": 20,
    # Counter rows older than this many days (at least 1: the approval gate reads a
    # day of them) are deleted by ``flask rbac alerts prune``.
    "RBAC_ALERT_COUNTER_DAYS": 2,
    # -- Reviews and certification (crm_rbac_plugin.certification) --
    # Days between access reviews of a workspace that has not set its own
    # schedule; an Owner sets 1 to 3650 on the Access reviews page.
    "RBAC_REVIEW_INTERVAL_DAYS": 90,
    # Longest reason accepted for a permission change, in characters.
    "RBAC_CHANGE_REASON_MAX": 500,
    # -- the workspace lifecycle (crm_rbac_plugin.lifecycle) --
    # Days a deleted workspace stays restorable by its Owners; after them
    # `flask rbac workspaces purge` deletes it and every row it holds.
    "RBAC_WORKSPACE_GRACE_DAYS": 30,
    # -- CSV import (crm_rbac_plugin.imports) --
    # Largest CSV upload, in bytes; a bigger file is refused with 413.
    "RBAC_IMPORT_MAX_BYTES": 16 * 1024 * 1024,
    # Most data rows one import may hold.
    "RBAC_IMPORT_MAX_ROWS": 100_000,
    # Most columns a line of an import may have (an import fills a handful of
    # fields; every column is offered for each on the mapping page).
    "RBAC_IMPORT_MAX_COLUMNS": 100,
    # Rows flushed (and checked by the flush guard) per chunk of an import.
    "RBAC_IMPORT_CHUNK_ROWS": 1000,
    # -- Quotas and the role catalogue (crm_rbac_plugin.quotas, defaults.CATALOGUE) --
    # Seats per plan: active plus pending members a workspace on that plan may
    # have (invitations and reactivations count). A plan missing here, or
    # mapped to None, has no limit.
    "RBAC_PLAN_SEATS": {},
    # Days an assignment of a built-in role lasts when it is given without an
    # expiry, by role key (the Guest's access ends by itself); None: no default.
    "RBAC_ROLE_DEFAULT_EXPIRY_DAYS": {"guest": 30},
    # -- Attachments (crm_rbac_plugin.files) --
    # Largest attachment accepted, in bytes; a larger upload is a 413.
    "RBAC_FILES_MAX_BYTES": 10 * 1024 * 1024,
    # Content types accepted, judged from the file's bytes (magic numbers, or
    # UTF-8 text): any of application/pdf, image/png, image/jpeg, image/gif,
    # image/webp, text/plain, text/csv.
    "RBAC_FILES_ALLOWED_TYPES": ("application/pdf", "image/png", "image/jpeg", "image/gif",
                                 "image/webp", "text/plain", "text/csv"),
    # Bytes a workspace's attachments may take in all: one number, or a mapping
    # of plan to a number ("*": any other plan); None: no limit. An upload past
    # it is a 409 naming the file field.
    "RBAC_FILES_QUOTA_BYTES": 1024 ** 3,
    # Directory of the local-disk storage (None: <instance path>/rbac_files).
    "RBAC_FILES_DIR": None,
    # An object with put(key, data), open(key) and delete(key) storing the
    # bytes elsewhere (an S3-compatible bucket); None: local disk.
    "RBAC_FILES_STORAGE": None,
    # -- Profile pictures (crm_rbac_plugin.team.pictures) --
    # Largest picture upload accepted, in bytes; a larger one is refused on
    # the form's field (413). The stored picture is the plugin's own encoding.
    "RBAC_PROFILE_PICTURE_MAX_BYTES": 2 * 1024 * 1024,
    # Most pixels (width x height) an uploaded picture may declare: a larger
    # one is refused before it is decoded (a small file that would expand
    # into gigabytes of memory, a "decompression bomb"). 25 million pixels
    # decode into at most 100 MB (RGBA); a JPEG decodes at a reduced scale.
    "RBAC_PROFILE_PICTURE_MAX_PIXELS": 25_000_000,
    # Side of the square the picture is cropped to and stored at, in pixels.
    "RBAC_PROFILE_PICTURE_SIZE": 256,
}


def apply_defaults(config: MutableMapping[str, Any]) -> None:
    """Set every key of :data:`DEFAULTS` that ``config`` lacks; refuse unknown ``RBAC_*`` keys."""
    unknown = sorted(key for key in config if key.startswith("RBAC_") and key not in DEFAULTS)
    if unknown:
        raise ConfigurationError(f"unknown configuration key(s): {', '.join(unknown)}; "
                                 "see crm_rbac_plugin.config.DEFAULTS")
    for key, value in DEFAULTS.items():
        config.setdefault(key, value)


def setting(key: str, app: Flask | None = None) -> Any:
    """Return ``app``'s (default: the current app's) value of ``key``, a key of :data:`DEFAULTS`."""
    if key not in DEFAULTS:
        raise ConfigurationError(f"unknown configuration key {key!r}")
    if app is None:  # read about fifteen times per request: the context variable, inline
        ctx = _cv_app.get(None)
        app = ctx.app if ctx is not None else current_flask_app()  # the latter raises
    return app.config[key]


@dataclass(frozen=True)
class RequestSettings:
    """The keys every request reads, taken from an app's config once.

    The ``before_request`` pass, the user loader and the last-activity stamp
    read them on every request; one snapshot per app replaces a dozen
    :func:`setting` calls. :func:`request_settings` compares the raw values
    with the snapshot's on each read (one C-level item fetch), so a key the
    host or a test changes after the first request takes effect at once.
    """

    session_key: str  # RBAC_SESSION_KEY
    session_id_key: str  # RBAC_SESSION_ID_KEY
    single_tenant: bool  # RBAC_SINGLE_TENANT
    exempt_endpoints: frozenset[str]  # RBAC_MFA_EXEMPT_ENDPOINTS
    step_up_minutes: int  # RBAC_MFA_STEP_UP_MINUTES
    last_seen_interval: dt.timedelta  # RBAC_LAST_SEEN_INTERVAL
    last_seen_tracked: int  # RBAC_LAST_SEEN_TRACKED
    session_touch: dt.timedelta  # RBAC_SESSION_TOUCH_SECONDS

    @classmethod
    def of(cls, config: Mapping[str, Any]) -> RequestSettings:
        return cls(
            session_key=config["RBAC_SESSION_KEY"],
            session_id_key=config["RBAC_SESSION_ID_KEY"],
            single_tenant=bool(config["RBAC_SINGLE_TENANT"]),
            exempt_endpoints=frozenset(config["RBAC_MFA_EXEMPT_ENDPOINTS"]),
            step_up_minutes=int(config["RBAC_MFA_STEP_UP_MINUTES"]),
            last_seen_interval=dt.timedelta(seconds=config["RBAC_LAST_SEEN_INTERVAL"]),
            last_seen_tracked=int(config["RBAC_LAST_SEEN_TRACKED"]),
            session_touch=dt.timedelta(seconds=config["RBAC_SESSION_TOUCH_SECONDS"]))


#: ``app.extensions`` key of the app's raw values and :class:`RequestSettings`.
REQUEST_SETTINGS_KEY = "rbac.request_settings"
#: The config keys :class:`RequestSettings` is built from.
_REQUEST_KEYS = ("RBAC_SESSION_KEY", "RBAC_SESSION_ID_KEY", "RBAC_SINGLE_TENANT",
                 "RBAC_MFA_EXEMPT_ENDPOINTS", "RBAC_MFA_STEP_UP_MINUTES", "RBAC_LAST_SEEN_INTERVAL",
                 "RBAC_LAST_SEEN_TRACKED", "RBAC_SESSION_TOUCH_SECONDS")
_raw_request_values = operator.itemgetter(*_REQUEST_KEYS)


def request_settings(app: Flask | None = None) -> RequestSettings:
    """Return ``app``'s (default: the current app's) :class:`RequestSettings`.

    The snapshot is rebuilt when a raw value differs from the one it was
    built from; the raw values are kept as a deep copy, so a list the host
    changes in place counts as a change too.
    """
    if app is None:
        ctx = _cv_app.get(None)
        app = ctx.app if ctx is not None else current_flask_app()  # the latter raises
    raw = _raw_request_values(app.config)
    held: tuple[Any, RequestSettings] | None = app.extensions.get(REQUEST_SETTINGS_KEY)
    if held is None or held[0] != raw:
        held = app.extensions[REQUEST_SETTINGS_KEY] = (copy.deepcopy(raw),
                                                       RequestSettings.of(app.config))
    return held[1]
