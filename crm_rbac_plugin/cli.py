"""The ``flask rbac`` command group: thin wrappers over the Python API."""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from .errors import RBACError
from .loader import BYPASS


def _rbac():  # type: ignore[no-untyped-def]
    return current_app.extensions["rbac"].rbac


@click.group("rbac", help="Inspect and manage access control.")
def rbac_group() -> None:
    pass


@rbac_group.command("resources")
@with_appcontext
def resources_command() -> None:
    """List the protected resources and their actions."""
    for res in _rbac().registry:
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
    rbac = _rbac()
    membership = _membership(rbac, email, workspace)
    resource, _, action = permission.rpartition(".")
    try:
        res = rbac.registry.check_action(resource, action)
        access = rbac.access_for(membership)
        record = None
        if record_id is not None:
            if res.model is None:
                raise click.ClickException(f"{resource} has no records")
            with rbac.system():
                record = rbac.db.session.get(res.model, int(record_id))
            if record is None:
                raise click.ClickException(f"no {resource} record #{record_id}")
        decision = rbac.decide(access, action, resource, record)
    except (RBACError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo("ALLOWED" if decision.allowed else "DENIED")
    for step in decision.steps:
        click.echo(f"  - {step}")


@rbac_group.command("roles")
@click.option("--workspace", required=True, help="The workspace slug.")
@with_appcontext
def roles_command(workspace: str) -> None:
    """List a workspace's roles with their grants."""
    rbac = _rbac()
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
