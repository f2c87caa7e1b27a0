"""``flask rbac approvals list|approve|reject|expire|policy``: approvals from the command line.

Thin wrappers over :mod:`.decisions` and :mod:`.policy`: ``approve`` and
``reject`` act as the member named by ``--as`` with every rule of the pages
(never one's own request, the approver permission, 409 when decided).
``expire`` marks overdue requests expired; it is safe to run from cron.

::

    flask rbac approvals list --workspace acme
    flask rbac approvals approve 12 --workspace acme --as admin@example.com --reason "checked"
    flask rbac approvals reject 12 --workspace acme --as admin@example.com --reason "no"
"""

from __future__ import annotations

import json
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..commandline import ID, member_by_email, workspace_by_slug
from ..errors import RBACError
from ..models import REQUEST_STATUSES
from ..proxies import current_rbac
from .changes import is_stale
from .decisions import approve, expire_due, reject
from .policy import settings_for
from .requests import request_in


@click.group("approvals")
def approvals_group() -> None:
    """List and decide approval requests."""


@approvals_group.command("list")
@click.option("--workspace", required=True, help="The workspace slug.")
@click.option("--status", default=None, type=click.Choice(REQUEST_STATUSES),
              help="Only requests in this status (e.g. pending).")
@with_appcontext
def list_command(workspace: str, status: str | None) -> None:
    """Print the workspace's requests, newest first."""
    rbac = current_rbac
    ws = workspace_by_slug(workspace)
    if expire_due(rbac, ws):
        rbac.db.session.commit()
    R = rbac.models.ApprovalRequest
    stmt = sa.select(R).where(R.workspace_id == ws).order_by(R.id.desc())
    if status:
        stmt = stmt.where(R.status == status)
    for req in rbac.db.session.scalars(stmt):
        click.echo(f"#{req.id}\t{req.status}\t{req.operation}\t{req.summary}\t"
                   f"requester #{req.requester_id}\texpires {req.expires_at:%Y-%m-%d %H:%M}")


def _decide(decide: Any, request_id: int, workspace: str, email: str, reason: str) -> None:
    rbac = current_rbac
    ws = workspace_by_slug(workspace)
    access = current_rbac.access_for(member_by_email(email, ws))
    req = request_in(rbac, ws, request_id)
    if req is None:
        raise click.ClickException(f"no request #{request_id} in {workspace}")
    try:
        outcome = decide(rbac, access, req, reason)
        rbac.db.session.commit()
    except RBACError as exc:
        rbac.db.session.rollback()
        raise click.ClickException(getattr(exc, "message", str(exc))) from None
    if outcome == "failed" and is_stale(req.failure):
        raise click.ClickException(f"Request #{req.id}: failed. {req.failure}")
    click.echo(f"Request #{req.id}: {outcome}." + (f" {req.failure}" if req.failure else ""))


def _decision_command(name: str, decide: Any, help_text: str) -> None:
    @approvals_group.command(name, help=help_text)
    @click.argument("request_id", type=ID)
    @click.option("--workspace", required=True, help="The workspace slug.")
    @click.option("--as", "email", required=True, metavar="EMAIL", help="The deciding member.")
    @click.option("--reason", default="", help="Why (stored on the decision and audited).")
    @with_appcontext
    def command(request_id: int, workspace: str, email: str, reason: str) -> None:
        _decide(decide, request_id, workspace, email, reason)


_decision_command("approve", approve, "Approve a request; the last approval executes it once.")
_decision_command("reject", reject, "Reject a request: nothing is changed.")


@approvals_group.command("expire")
@with_appcontext
def expire_command() -> None:
    """Mark every overdue pending request expired (safe to run from cron)."""
    count = expire_due(current_rbac)
    current_rbac.db.session.commit()
    click.echo(f"{count} request(s) expired.")


@approvals_group.command("policy")
@click.option("--workspace", required=True, help="The workspace slug.")
@with_appcontext
def policy_command(workspace: str) -> None:
    """Print the workspace's approval policy as JSON."""
    click.echo(json.dumps(settings_for(current_rbac, workspace_by_slug(workspace)).to_json(),
                          indent=2, sort_keys=True))
