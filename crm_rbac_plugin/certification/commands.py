"""``flask rbac review ...``: reminders, the schedule, certification runs and their report.

Thin wrappers over :mod:`.schedule`, :mod:`.runs` and :mod:`.report`::

    flask rbac review remind                       # from cron, e.g. daily
    flask rbac review schedule --workspace acme --as owner@example.com --every 30 --require-reason
    flask rbac review start --workspace acme --as admin@example.com --resource deals
    flask rbac review runs --workspace acme
    flask rbac review refresh --workspace acme --as admin@example.com --run 3
    flask rbac review decide --workspace acme --as admin@example.com --run 3 \\
        --member rep@example.com --decision revoke --reason "left the sales team"
    flask rbac review complete --workspace acme --as admin@example.com --run 3
    flask rbac review report --workspace acme --run 3 > run-3.csv

``runs`` lists what changed since an open run's lines were listed, and
``refresh`` brings them up to the roles in force (a decision on a line whose
roles changed is refused until then). A refusal prints the
service's message (with the field it names) and exits non-zero; nothing is
saved. A revoke carries ``--reason`` (or the run's
default), so a workspace that requires a reason accepts it.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from ..commandline import ID, member_by_email, workspace_by_slug
from ..errors import RBACError
from ..proxies import current_rbac
from . import lines, report, runs, schedule


@click.group("review")
def review_group() -> None:
    """Access reviews: reminders, the schedule and certification runs."""


def _commit(access: Any, change: Any) -> Any:
    """Run ``change`` as ``access`` and commit; a refusal rolls back and exits with its message."""
    rbac = current_rbac
    if access is None:
        raise click.ClickException("that member has no access in the workspace")
    try:
        with rbac.as_member(access):
            result = change()
            rbac.db.session.commit()
        return result
    except RBACError as exc:
        rbac.db.session.rollback()
        field = getattr(exc, "field", None)
        message = getattr(exc, "message", str(exc))
        raise click.ClickException(f"{field}: {message}" if field else message) from exc


def _run(workspace_id: int, run_id: int) -> Any:
    with current_rbac.system():
        run = runs.run_in(current_rbac, workspace_id, run_id)
    if run is None:
        raise click.ClickException(f"no run #{run_id} in that workspace")
    return run


def _acting_on_run(workspace: str, as_email: str, run_id: int) -> tuple[Any, Any]:
    """The access of the member ``as_email`` and the run ``run_id``, of one workspace."""
    ws = workspace_by_slug(workspace)
    return current_rbac.access_for(member_by_email(as_email, ws)), _run(ws, run_id)


_WS = click.option("--workspace", required=True, help="The workspace slug.")
_AS = click.option("--as", "as_email", required=True, metavar="EMAIL",
                   help="The member acting (audited as them).")
_RUN = click.option("--run", "run_id", required=True, type=ID, help="The run's number.")


@review_group.command("remind")
@with_appcontext
def remind_command() -> None:
    """Send ``review_due`` for every workspace whose review is due (once per due period)."""
    rbac = current_rbac
    with rbac.system():
        reminded = schedule.remind(rbac)
    click.echo(f"Reminded {len(reminded)} workspace(s)"
               + (f": {', '.join(map(str, reminded))}." if reminded else "."))


@review_group.command("schedule")
@_WS
@click.option("--as", "as_email", default=None, metavar="EMAIL",
              help="The Owner changing it; without it the schedule is shown.")
@click.option("--every", "interval_days", default=None, help="Days between reviews (1-3650).")
@click.option("--require-reason/--no-require-reason", default=None,
              help="Whether permission changes need a written reason.")
@with_appcontext
def schedule_command(workspace: str, as_email: str | None, interval_days: str | None,
                     require_reason: bool | None) -> None:
    """Show the workspace's schedule, or change it as an Owner."""
    rbac = current_rbac
    ws = workspace_by_slug(workspace)
    if as_email is not None:
        access = rbac.access_for(member_by_email(as_email, ws))
        changes = _commit(access, lambda: schedule.save(rbac, access, interval_days=interval_days,
                                                require_reason=require_reason))
        for name, (old, new) in changes.items():
            click.echo(f"{name}: {old!r} -> {new!r}")
    with rbac.system():
        current = schedule.schedule_for(rbac, ws)
    click.echo(f"every {current.interval_days} days; reason required: "
               f"{'yes' if current.require_reason else 'no'}; last review: "
               f"{current.last_reviewed_at or 'never'}; due: {current.due_at():%Y-%m-%d}")


@review_group.command("start")
@_WS
@_AS
@click.option("--resource", default="", help="Also list the members who may view this resource.")
@with_appcontext
def start_command(workspace: str, as_email: str, resource: str) -> None:
    """Start a certification run."""
    rbac = current_rbac
    access = rbac.access_for(member_by_email(as_email, workspace_by_slug(workspace)))
    run = _commit(access, lambda: runs.start_run(rbac, access, resource))
    click.echo(f"Run #{run.id} started with {len(run.items)} item(s).")


@review_group.command("runs")
@_WS
@with_appcontext
def runs_command(workspace: str) -> None:
    """List the workspace's runs, newest first, and what changed since an open run's lines
    were listed (``refresh`` brings them in)."""
    rbac = current_rbac
    with rbac.system():
        for run in runs.runs_of(rbac, workspace_by_slug(workspace)):
            decided = sum(i.decision is not None for i in run.items)
            click.echo(f"#{run.id}\t{run.status}\t{run.started_at:%Y-%m-%d}\t"
                       f"{run.started_by_name}\t{decided}/{len(run.items)} decided\t"
                       f"{run.resource or '-'}")
            for words in lines.pending_words(rbac, run):
                click.echo(f"#{run.id}: changed since listed: {words}")


@review_group.command("refresh")
@_WS
@_AS
@_RUN
@with_appcontext
def refresh_command(workspace: str, as_email: str, run_id: int) -> None:
    """Bring an open run's lines up to the roles in force."""
    rbac = current_rbac
    access, run = _acting_on_run(workspace, as_email, run_id)
    words = _commit(access, lambda: runs.refresh(rbac, access, run))
    for line in words:
        click.echo(f"#{run_id}: refreshed: {line}")
    click.echo(f"Run #{run_id}: {len(words)} line(s) refreshed.")


@review_group.command("decide")
@_WS
@_AS
@_RUN
@click.option("--member", "member_email", required=True, help="The listed member's email.")
@click.option("--decision", type=click.Choice(["keep", "revoke"]), required=True)
@click.option("--reason", default="", help="Why (stored on the item and the audit event).")
@with_appcontext
def decide_command(workspace: str, as_email: str, run_id: int, member_email: str,
                   decision: str, reason: str) -> None:
    """Mark a listed member keep or revoke (a revoke takes their listed roles away)."""
    rbac = current_rbac
    ws = workspace_by_slug(workspace)
    access = rbac.access_for(member_by_email(as_email, ws))
    run, member = _run(ws, run_id), member_by_email(member_email, ws)
    item = next((i for i in run.items if i.membership_id == member.id), None)
    if item is None:
        raise click.ClickException(f"{member_email} is not listed in run #{run_id}")
    item = _commit(access, lambda: runs.decide(rbac, access, item, decision, reason))
    click.echo(f"{item.member_name}: {item.decision} ({item.outcome})")


@review_group.command("complete")
@_WS
@_AS
@_RUN
@with_appcontext
def complete_command(workspace: str, as_email: str, run_id: int) -> None:
    """Complete a run whose items are all decided."""
    rbac = current_rbac
    access, run = _acting_on_run(workspace, as_email, run_id)
    _commit(access, lambda: runs.complete_run(rbac, access, run))
    click.echo(f"Run #{run_id} completed.")


@review_group.command("report")
@_WS
@_RUN
@with_appcontext
def report_command(workspace: str, run_id: int) -> None:
    """Print the run's compliance report as CSV."""
    rbac = current_rbac
    run = _run(workspace_by_slug(workspace), run_id)
    with rbac.system():
        click.echo(report.to_csv(report.build(rbac, run)), nl=False)
