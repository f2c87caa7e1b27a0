"""``flask rbac alerts list|ack|resolve|settings|set|prune``: alerts from the command line.

Thin wrappers over :mod:`.service` and :mod:`.thresholds`, the Alerts page's
services: ``ack``, ``resolve`` and ``set`` act as the member named by ``--as``
(an Owner or Admin; ``set`` an Owner), with the same checks and audit events.

::

    flask rbac alerts list --workspace acme --status open --severity high
    flask rbac alerts ack 12 --workspace acme --as admin@example.com
    flask rbac alerts set --workspace acme --as owner@example.com \\
        export_rows_per_hour=2000 business_days=mon,tue,wed,thu,fri timezone=Europe/Paris
    flask rbac alerts prune            # counters older than RBAC_ALERT_COUNTER_DAYS
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import click
from flask.cli import with_appcontext

from ..commandline import ID, member_by_email, workspace_by_slug
from ..config import setting
from ..context import SYSTEM, override
from ..errors import RBACError
from ..models import utcnow
from ..proxies import current_rbac
from ..security.commands import parse_assignments
from . import engine, service, thresholds


@click.group("alerts")
def alerts_group() -> None:
    """List and handle a workspace's anomaly alerts; show or change their thresholds."""


def _as(workspace: str, email: str) -> Any:
    return current_rbac.access_for(member_by_email(email, workspace_by_slug(workspace)))


def _run(change: Any) -> Any:
    """Run ``change`` and commit, or roll back and exit with the refusal (naming the field)."""
    rbac = current_rbac
    try:
        result = change()
        rbac.db.session.commit()
    except RBACError as exc:
        rbac.db.session.rollback()
        field = getattr(exc, "field", None)
        message = getattr(exc, "message", str(exc))
        raise click.ClickException(f"{field}: {message}" if field else message) from exc
    return result


@alerts_group.command("list")
@click.option("--workspace", required=True, help="The workspace slug.")
@click.option("--status", default="", help="open, acknowledged or resolved (default: all).")
@click.option("--severity", default="", help="low, medium or high (default: all).")
@with_appcontext
def list_command(workspace: str, status: str, severity: str) -> None:
    """Print the workspace's alerts, newest first."""
    rbac = current_rbac
    ws = workspace_by_slug(workspace)
    try:
        filters = service.parse_filters(status, severity)
    except RBACError as exc:
        raise click.BadParameter(getattr(exc, "message", str(exc)),
                                 param_hint=f"--{getattr(exc, 'field', '')}") from exc
    with override(SYSTEM):
        found = service.query_alerts(rbac, ws, **filters)
    if not found:
        click.echo("No alert.")
    for a in found:
        click.echo(f"#{a.id:<6} {a.created_at:%Y-%m-%d %H:%M} {a.severity:6} {a.status:12} "
                   f"{a.rule:14} {a.summary}")


@alerts_group.command("ack")
@click.argument("alert_id", type=ID)
@click.option("--workspace", required=True, help="The workspace slug.")
@click.option("--as", "as_email", required=True, metavar="EMAIL",
              help="The Owner or Admin acknowledging it (audited as them).")
@with_appcontext
def ack_command(alert_id: int, workspace: str, as_email: str) -> None:
    """Acknowledge an open alert."""
    access = _as(workspace, as_email)
    alert = _run(lambda: service.set_status(current_rbac, access, alert_id, "acknowledge"))
    click.echo(f"Alert #{alert.id} acknowledged.")


@alerts_group.command("resolve")
@click.argument("alert_id", type=ID)
@click.option("--workspace", required=True, help="The workspace slug.")
@click.option("--as", "as_email", required=True, metavar="EMAIL",
              help="The Owner or Admin resolving it (audited as them).")
@with_appcontext
def resolve_command(alert_id: int, workspace: str, as_email: str) -> None:
    """Resolve an open or acknowledged alert."""
    access = _as(workspace, as_email)
    alert = _run(lambda: service.set_status(current_rbac, access, alert_id, "resolve"))
    click.echo(f"Alert #{alert.id} resolved.")


@alerts_group.command("settings")
@click.option("--workspace", required=True, help="The workspace slug.")
@with_appcontext
def settings_command(workspace: str) -> None:
    """Print the workspace's thresholds, business hours and time zone."""
    values = thresholds.thresholds_for(current_rbac, workspace_by_slug(workspace)).as_json()
    for name in thresholds.FIELDS:
        value = values[name]
        click.echo(f"{name:26} {','.join(value) if isinstance(value, list) else value}")


@alerts_group.command("set")
@click.option("--workspace", required=True, help="The workspace slug.")
@click.option("--as", "as_email", required=True, metavar="EMAIL",
              help="The Owner making the change (audited as them).")
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
@with_appcontext
def set_command(workspace: str, as_email: str, assignments: tuple[str, ...]) -> None:
    """Change thresholds, business hours (business_days=mon,tue) or the time zone."""
    access = _as(workspace, as_email)
    changes = parse_assignments(assignments)
    result = _run(lambda: thresholds.save(current_rbac, access, changes))
    if not result:
        click.echo("Nothing changed.")
    for name, (old, new) in result.items():
        click.echo(f"{name}: {old!r} -> {new!r}")


@alerts_group.command("prune")
@with_appcontext
def prune_command() -> None:
    """Delete rule counters older than RBAC_ALERT_COUNTER_DAYS (safe to run from cron)."""
    # At least a day: the approval gate adds up a member's exports and bulk
    # deletes over the last 24 hours from these counters (approvals.volume).
    days = max(setting("RBAC_ALERT_COUNTER_DAYS"), 1)
    before = utcnow() - dt.timedelta(days=days)
    count = _run(lambda: engine.prune(current_rbac, before))
    click.echo(f"{count} counters deleted.")
