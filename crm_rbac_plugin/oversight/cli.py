"""``flask rbac who-could`` (and the field rules of ``flask rbac explain``)."""

from __future__ import annotations

import datetime as dt

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..commandline import ID
from ..errors import RBACError
from ..models import naive_utc
from ..proxies import current_rbac
from . import history


def register(group: click.Group) -> None:
    """Add the oversight commands to ``flask rbac`` (idempotent)."""
    group.add_command(who_could_command)


@click.command("who-could")
@click.option("--workspace", required=True, help="The workspace slug.")
@click.option("--resource", required=True, help="e.g. deals")
@click.option("--record", "record_id", required=True, type=ID, help="The record id.")
@click.option("--at", "at", required=True, help="UTC instant, e.g. 2026-11-01T00:00")
@click.option("--action", default="view", show_default=True)
@with_appcontext
def who_could_command(workspace: str, resource: str, record_id: int, at: str,
                      action: str) -> None:
    """List who could ACTION a record at an instant, replaying the audit trail."""
    rbac = current_rbac
    W = rbac.models.Workspace
    ws = rbac.db.session.scalar(sa.select(W).where(W.slug == workspace))
    if ws is None:
        raise click.ClickException(f"no workspace {workspace!r}")
    try:
        when = naive_utc(dt.datetime.fromisoformat(at))
    except (ValueError, OverflowError) as exc:  # an offset that leaves the calendar
        raise click.BadParameter(str(exc), param_hint="--at") from exc
    try:
        result = history.who_could(rbac, ws.id, resource, record_id, when, action)
    except OverflowError as exc:
        # An instant at the calendar's edge: the replay's time windows step past year 9999.
        raise click.BadParameter(f"{at} is out of range", param_hint="--at") from exc
    except (RBACError, LookupError) as exc:
        raise click.ClickException(str(exc)) from exc
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"{action} {resource} #{record_id} at {when.isoformat(' ', 'minutes')} UTC:")
    for answer in result.answers:
        mark = "YES" if answer.allowed else "no "
        where = f" of {answer.workspace}, shared" if answer.workspace else ""
        click.echo(f"  {mark} {answer.user}{where} (member #{answer.membership_id}; "
                   f"{', '.join(answer.roles) or 'no role'}): {answer.reason}")
