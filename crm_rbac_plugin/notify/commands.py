"""``flask rbac notify send``: the notification worker, safe to run from cron.

::

    flask rbac notify send            # due mails and retries, then the expiry scan
    flask rbac notify send --digest   # also the daily digests (run once a day)

Each run first queues the *role expiring* notices (assignments ending within
``RBAC_NOTIFY_EXPIRY_DAYS``, each told once), then sends every due mail:
new ones, and failed ones whose retry time has come (the delay doubles from
``RBAC_NOTIFY_RETRY_SECONDS``; after ``RBAC_NOTIFY_MAX_ATTEMPTS`` a mail is
marked failed). It prints what it did and exits 1 when a mail failed.
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..context import SYSTEM, override
from ..proxies import current_rbac
from .delivery import send_digests, send_due
from .expiry import scan_expiring


@click.group("notify")
def notify_group() -> None:
    """Send queued notification mails."""


@notify_group.command("send")
@click.option("--digest", is_flag=True, help="Also send the daily digests (run once a day).")
@click.option("--no-expiry", is_flag=True, help="Skip the scan of role assignments ending soon.")
@with_appcontext
def send_command(digest: bool, no_expiry: bool) -> None:
    """Queue expiry notices, send due mails and retries (and digests with --digest)."""
    rbac = current_rbac
    with override(SYSTEM):
        expiring = 0 if no_expiry else scan_expiring(rbac)
        counts = send_due(rbac)
        digests = send_digests(rbac) if digest else None
    click.echo(f"expiring: {expiring} queued; mails: {counts.sent} sent, "
               f"{counts.retried} to retry, {counts.failed} failed"
               + (f"; digests: {digests.sent} sent" if digests is not None else ""))
    for error in [*counts.errors, *(digests.errors if digests else [])]:
        click.echo(error, err=True)
    if counts.retried or counts.failed or (digests and (digests.retried or digests.failed)):
        raise SystemExit(1)
