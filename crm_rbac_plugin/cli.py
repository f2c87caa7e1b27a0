"""The ``flask rbac`` command group: thin wrappers over the Python API."""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from . import adoption, sharing, team, workspaces
from .alerts.commands import alerts_group
from .approvals.commands import approvals_group
from .certification.commands import review_group
from .commandline import ID
from .context import change_reason
from .errors import RBACError
from .inputs import MAX_ID
from .lifecycle.commands import workspaces_group
from .loader import BYPASS
from .models import utcnow
from .notify.commands import notify_group
from .oversight.explain import explain  # with plan and field rules
from .proxies import current_rbac
from .queries import parse_utc
from .roles.commands import assignments_group
from .security.commands import security_group

F = TypeVar("F", bound=Callable[..., Any])


def as_member_option(command: F) -> F:
    """Add ``--as EMAIL --workspace SLUG`` to a host command and run it as that member.

    ::

        @app.cli.command("export-leads")
        @as_member_option
        def export_leads():
            ...  # queries see what the member may see, writes are checked
    """
    @click.option("--as", "as_email", required=True, metavar="EMAIL",
                  help="Act as the member with this email.")
    @click.option("--workspace", "as_workspace", required=True, metavar="SLUG",
                  help="The workspace the member acts in.")
    @functools.wraps(command)
    def wrapper(*args: Any, as_email: str, as_workspace: str, **kwargs: Any) -> Any:
        rbac = current_rbac
        with rbac.as_member(_membership(rbac, as_email, as_workspace)):
            return command(*args, **kwargs)
    return wrapper  # type: ignore[return-value]


@click.group("rbac", help="Inspect and manage access control.")
@click.option("--reason", default=None, metavar="TEXT",
              help="The reason of the permission changes this command makes (stored on their "
                   "audit event; required where the workspace requires one).")
@click.pass_context
def rbac_group(ctx: click.Context, reason: str | None) -> None:
    if reason:
        ctx.with_resource(change_reason(reason))


rbac_group.add_command(security_group)
rbac_group.add_command(notify_group)
rbac_group.add_command(approvals_group)
rbac_group.add_command(alerts_group)
rbac_group.add_command(review_group)
rbac_group.add_command(assignments_group)
rbac_group.add_command(workspaces_group)


@rbac_group.command("resources")
@with_appcontext
def resources_command() -> None:
    """List the protected resources and their actions."""
    for res in current_rbac.registry:
        kind = res.model.__name__ if res.model else "(administrative)"
        click.echo(f"{res.name:12} {res.module:15} {kind:18} {', '.join(res.actions)}")


def _membership(rbac, email: str, workspace: str):  # type: ignore[no-untyped-def]
    m = rbac.models
    user_model = rbac.user_model
    row = rbac.db.session.execute(
        sa.select(m.Membership).join(m.Workspace).join(user_model)
        .where(m.Workspace.slug == workspace, user_model.email == email),
        execution_options=BYPASS).scalar_one_or_none()
    if row is None:
        raise click.ClickException(f"{email} is not a member of workspace {workspace!r}")
    return row


@rbac_group.command("explain")
@click.option("--user", "email", required=True, help="The member's email.")
@click.option("--workspace", required=True, help="The workspace slug.")
@click.option("--record", "record_id", default=None, help="A record id to decide on.")
@click.argument("permission")
@with_appcontext
def explain_command(email: str, workspace: str, record_id: str | None, permission: str) -> None:
    """Explain the decision for PERMISSION (e.g. leads.edit) of a member."""
    rbac = current_rbac
    membership = _membership(rbac, email, workspace)
    resource, _, action = permission.rpartition(".")
    try:
        res = rbac.registry.check_action(resource, action)
        access = rbac.access_for(membership)
        record = None
        if record_id is not None:
            if res.model is None:
                raise click.ClickException(f"{resource} has no records")
            key = int(record_id)
            if not 0 <= key <= MAX_ID:  # past what an id column holds: no such record
                raise click.ClickException(f"no {resource} record #{record_id}")
            with rbac.system():
                record = rbac.db.session.get(res.model, key)
            if record is None:
                raise click.ClickException(f"no {resource} record #{record_id}")
        explanation = explain(rbac, access, action, resource, record)
    except (RBACError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    for line in explanation.lines():
        click.echo(line)


@rbac_group.command("adopt")
@click.option("--workspace", default=None, metavar="SLUG",
              help="The workspace to create or fill (default: RBAC_DEFAULT_WORKSPACE).")
@click.option("--name", default=None, help="The name of a workspace created now.")
@click.option("--owner", default=None, metavar="EMAIL",
              help="The user who becomes the Owner (required while the workspace has none).")
@click.option("--role", default="member", show_default=True,
              help="The role every other existing user gets.")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(min=1),
              help="Rows per UPDATE of the workspace backfill.")
@click.option("--dry-run", is_flag=True, help="Print what would be done and change nothing.")
@with_appcontext
def adopt_command(workspace: str | None, name: str | None, owner: str | None, role: str,
                  batch: int, dry_run: bool) -> None:
    """Put an existing app's users and rows into a workspace (idempotent)."""
    try:
        report = adoption.adopt(current_rbac, workspace=workspace, name=name, owner=owner,
                                role=role, batch=batch, dry_run=dry_run, progress=_progressbar)
    except RBACError as exc:
        raise click.ClickException(str(exc)) from exc
    if dry_run:
        click.echo("Dry run: nothing is changed.")
    for line in report.lines():
        click.echo(line)


@contextmanager
def _progressbar(label: str, total: int) -> Iterator[Callable[[int], None]]:
    with click.progressbar(length=total, label=f"Backfilling {label}") as bar:
        yield bar.update


@rbac_group.command("roles")
@click.option("--workspace", required=True, help="The workspace slug.")
@with_appcontext
def roles_command(workspace: str) -> None:
    """List a workspace's roles with their grants."""
    rbac = current_rbac
    m = rbac.models
    ws = rbac.db.session.scalar(sa.select(m.Workspace).where(m.Workspace.slug == workspace))
    if ws is None:
        raise click.ClickException(f"no workspace {workspace!r}")
    for role in rbac.db.session.scalars(sa.select(m.Role).where(m.Role.workspace_id == ws.id)
                                        .order_by(m.Role.id)):
        click.echo(f"{role.name}{' (owner)' if role.is_owner else ''}")
        for g in role.grants:
            cond = f" where {g.condition}" if g.condition else ""
            click.echo(f"    {g.effect:5} {g.resource}.{g.action} [{g.scope}]{cond}")


# -- flask rbac members: thin wrappers over crm_rbac_plugin.team ----------------


@rbac_group.group("members")
def members_group() -> None:
    """List, invite, deactivate, reactivate members and reassign their records."""


def _workspace(rbac, slug: str):  # type: ignore[no-untyped-def]
    ws = rbac.db.session.scalar(sa.select(rbac.models.Workspace)
                                .where(rbac.models.Workspace.slug == slug))
    if ws is None:
        raise click.ClickException(f"no workspace {slug!r}")
    return ws


def _actor(rbac, email: str | None, workspace: str):  # type: ignore[no-untyped-def]
    """The acting member's Access: ``--as`` or, by default, the workspace's first Owner."""
    if email:
        return rbac.access_for(_membership(rbac, email, workspace))
    ws = _workspace(rbac, workspace)
    for membership in sorted(_memberships(rbac, ws.id), key=lambda ms: ms.id):
        access = rbac.access_for(membership)
        if access is not None and access.active and access.is_owner:
            return access
    raise click.ClickException(f"workspace {workspace!r} has no active Owner; use --as")


def _memberships(rbac, workspace_id: int) -> list:  # type: ignore[no-untyped-def, type-arg]
    M = rbac.models.Membership
    return list(rbac.db.session.scalars(sa.select(M).where(M.workspace_id == workspace_id)
                                        .order_by(M.id), execution_options=BYPASS))


def _team_call(func, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run a team service call and commit, turning refusals into ClickExceptions."""
    rbac = current_rbac
    try:
        result = func(rbac, *args, **kwargs)
        rbac.db.session.commit()
        return result
    except RBACError as exc:
        rbac.db.session.rollback()
        raise click.ClickException(getattr(exc, "message", str(exc))) from exc


_WS = click.option("--workspace", required=True, help="The workspace slug.")
_AS = click.option("--as", "as_email", default=None,
                   help="Act as this member (email); default: the first active Owner.")


@members_group.command("list")
@_WS
@click.option("--status", type=click.Choice(["", "active", "pending", "inactive"]), default="")
@with_appcontext
def members_list_command(workspace: str, status: str) -> None:
    """List a workspace's members with status, roles and department."""
    rbac = current_rbac
    ws = _workspace(rbac, workspace)
    for ms in team.list_members(rbac, ws.id, team.MemberFilter(status=status)):
        names = ", ".join(sorted(mr.role.name for mr in ms.member_roles)) or "-"
        dept = ms.department.name if ms.department else "-"
        seen = ms.last_seen_at.strftime("%Y-%m-%d %H:%M") if ms.last_seen_at else "never"
        click.echo(f"{ms.user.email:32} {ms.status:9} {dept:12} {seen:16} {names}")


@members_group.command("invite")
@_WS
@click.option("--email", required=True, help="Address to invite.")
@click.option("--role", "role_keys", multiple=True, required=True,
              help="Role key or name (repeatable).")
@_AS
@with_appcontext
def members_invite_command(workspace: str, email: str, role_keys: tuple[str, ...],
                           as_email: str | None) -> None:
    """Invite EMAIL with one or more roles; the link is mailed (and printed)."""
    rbac = current_rbac
    ws = _workspace(rbac, workspace)
    actor = _actor(rbac, as_email, workspace)
    try:
        chosen = [workspaces.role_by_key(rbac, ws, key) for key in role_keys]
    except RBACError as exc:
        raise click.ClickException(str(exc)) from exc
    invitation, _token = _team_call(team.invite, actor, email, chosen)
    click.echo(f"Invited {invitation.email}; link valid until "
               f"{invitation.expires_at:%Y-%m-%d %H:%M} UTC.")


@members_group.command("deactivate")
@_WS
@click.option("--email", required=True)
@_AS
@with_appcontext
def members_deactivate_command(workspace: str, email: str, as_email: str | None) -> None:
    """Deactivate a member (their records stay theirs)."""
    rbac = current_rbac
    actor = _actor(rbac, as_email, workspace)
    _team_call(team.deactivate, actor, _membership(rbac, email, workspace))
    click.echo(f"{email} is inactive.")


@members_group.command("token")
@_WS
@click.argument("email")
@click.option("--name", required=True, help="What the token is for (1 to 80 characters).")
@click.option("--days", type=click.IntRange(1, 3650), default=None,
              help="Expires after this many days; default: never.")
@_AS
@with_appcontext
def members_token_command(workspace: str, email: str, name: str, days: int | None,
                          as_email: str | None) -> None:
    """Issue an API token to a member, as an Owner, and print it once.

    For an account whose roles let it use the workspace through tokens only.
    """
    rbac = current_rbac
    actor = _actor(rbac, as_email, workspace)
    expires = utcnow() + dt.timedelta(days=days) if days else None
    _, plaintext = _team_call(team.issue_token, actor, _membership(rbac, email, workspace),
                              name, expires_at=expires)
    click.echo(plaintext)


@members_group.command("reactivate")
@_WS
@click.option("--email", required=True)
@_AS
@with_appcontext
def members_reactivate_command(workspace: str, email: str, as_email: str | None) -> None:
    """Reactivate an inactive member."""
    rbac = current_rbac
    actor = _actor(rbac, as_email, workspace)
    _team_call(team.reactivate, actor, _membership(rbac, email, workspace))
    click.echo(f"{email} is active again.")


@members_group.command("reassign")
@_WS
@click.option("--from", "from_email", required=True, help="Current owner's email.")
@click.option("--to", "to_email", required=True, help="New owner's email.")
@click.option("--resource", "resources", multiple=True, help="Only these resources (repeatable).")
@click.option("--yes", is_flag=True, help="Apply without asking.")
@_AS
@with_appcontext
def members_reassign_command(workspace: str, from_email: str, to_email: str,
                             resources: tuple[str, ...], yes: bool, as_email: str | None) -> None:
    """Move records from one owner to another, all or nothing, with a preview."""
    rbac = current_rbac
    actor = _actor(rbac, as_email, workspace)
    source = _membership(rbac, from_email, workspace)
    target = _membership(rbac, to_email, workspace)
    args = (actor, source.user_id, target.user_id, list(resources) or None)
    counts = _team_call(team.reassign_preview, *args)
    for name, count in counts.items():
        click.echo(f"{name:12} {count}")
    total = sum(counts.values())
    if total == 0:
        click.echo("Nothing to reassign.")
        return
    if not yes:
        click.confirm(f"Reassign {total} record(s) from {from_email} to {to_email}?",
                      abort=True)
    with click.progressbar(length=total, label="Reassigning") as bar:
        done = _team_call(team.reassign, *args, progress=bar.update)
    click.echo(f"Reassigned {sum(done.values())} record(s).")


# -- sharing agreements ------------------------------------------------------------------


@rbac_group.group("sharing")
def sharing_group() -> None:
    """List, create, change and end sharing agreements between workspaces."""


def _agreement(rbac, workspace_id: int, agreement_id: int):  # type: ignore[no-untyped-def]
    agreement = sharing.agreement_in(rbac, workspace_id, agreement_id)
    if agreement is None:
        raise click.ClickException(f"no agreement #{agreement_id} involving this workspace")
    return agreement


def _describe_agreement(agreement) -> str:  # type: ignore[no-untyped-def]
    perms = ", ".join(sharing.describe_permission(current_rbac, p) for p in agreement.permissions)
    until = f" until {agreement.expires_at:%Y-%m-%d %H:%M} UTC" if agreement.expires_at else ""
    return (f"#{agreement.id:<4} {agreement.granting_workspace.slug} -> "
            f"{agreement.receiving_workspace.slug:16} {sharing.state(agreement):9}{until}  "
            f"{perms}")


@sharing_group.command("list")
@_WS
@with_appcontext
def sharing_list_command(workspace: str) -> None:
    """Agreements shared by and with a workspace."""
    rbac = current_rbac
    ws = _workspace(rbac, workspace)
    for side, title in (("granting", "Shared by you"), ("receiving", "Shared with you")):
        click.echo(f"{title}:")
        found = sharing.agreements(rbac, ws.id, side)
        for agreement in found:
            click.echo("  " + _describe_agreement(agreement))
        if not found:
            click.echo("  (none)")


@sharing_group.command("create")
@_WS
@click.option("--with", "receiving", required=True, help="The receiving workspace's slug.")
@click.option("--permission", "permissions", multiple=True, required=True,
              help="resource.action to share (repeatable), e.g. clients.view.")
@click.option("--condition", "condition_json", default=None,
              help='A JSON object {"resource.action": [clauses]} of record conditions.')
@click.option("--notes", default="")
@click.option("--expires", "expires", default=None, help="ISO date/time (UTC) it ends.")
@_AS
@with_appcontext
def sharing_create_command(workspace: str, receiving: str, permissions: tuple[str, ...],
                           condition_json: str | None, notes: str, expires: str | None,
                           as_email: str | None) -> None:
    """Offer workspace --with access to this workspace's records (pending until accepted)."""
    rbac = current_rbac
    actor = _actor(rbac, as_email, workspace)
    try:
        conds = json.loads(condition_json) if condition_json else {}
        if not isinstance(conds, dict):
            raise ValueError("--condition must be a JSON object")
        items = [{"resource": p.rpartition(".")[0], "action": p.rpartition(".")[2],
                  "condition": conds.get(p)} for p in permissions]
        expires_at = parse_utc(expires, "expires") if expires else None
    except (ValueError, RBACError) as exc:
        raise click.ClickException(getattr(exc, "message", str(exc))) from exc
    agreement = _team_call(sharing.create_agreement, actor, workspace=receiving,
                           permissions=items, notes=notes, expires_at=expires_at)
    click.echo(f"Created (pending until {receiving} accepts): {_describe_agreement(agreement)}")


@sharing_group.command("end")
@_WS
@click.argument("verb", type=click.Choice(["revoke", "accept", "decline", "leave"]))
@click.argument("agreement_id", type=ID)
@_AS
@with_appcontext
def sharing_end_command(workspace: str, verb: str, agreement_id: int,
                        as_email: str | None) -> None:
    """revoke (granting side), accept, decline or leave (receiving side) an agreement."""
    rbac = current_rbac
    actor = _actor(rbac, as_email, workspace)
    ws = _workspace(rbac, workspace)
    agreement = _agreement(rbac, ws.id, agreement_id)
    _team_call(sharing.ACTIONS[verb], actor, agreement)
    click.echo(_describe_agreement(agreement))
