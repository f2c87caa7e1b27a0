"""``flask rbac workspaces``: the lifecycle's commands, safe to run from cron.

::

    flask rbac workspaces purge            # purge those whose grace period is over
    flask rbac workspaces purge --dry-run  # list them only
"""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from ..proxies import current_rbac
from .purge import due_for_purge, purge_due


@click.group("workspaces")
def workspaces_group() -> None:
    """Manage deleted workspaces."""


@workspaces_group.command("purge")
@click.option("--dry-run", is_flag=True, help="List the workspaces due, purge nothing.")
@with_appcontext
def purge_command(dry_run: bool) -> None:
    """Purge the deleted workspaces whose grace period (RBAC_WORKSPACE_GRACE_DAYS) is over."""
    rbac = current_rbac
    if dry_run:
        with rbac.system():
            due = due_for_purge(rbac)
        for ws in due:
            click.echo(f"due: #{ws.id} {ws.name} (deleted {ws.deleted_at:%Y-%m-%d %H:%M} UTC)")
        click.echo(f"{len(due)} workspace(s) due for purge")
        return
    done: list[tuple[int, str, int]] = []
    try:
        purge_due(rbac, on_purged=done.append)
    except Exception as exc:  # a receiver's or the database's: reported, exit 1
        for ws_id, name, rows in done:
            click.echo(f"purged: #{ws_id} {name} ({rows} rows)")
        click.echo(f"purge failed, that workspace is unchanged: {exc}", err=True)
        raise SystemExit(1) from None
    for ws_id, name, rows in done:
        click.echo(f"purged: #{ws_id} {name} ({rows} rows)")
    click.echo(f"{len(done)} workspace(s) purged")
