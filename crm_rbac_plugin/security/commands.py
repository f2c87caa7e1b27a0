"""``flask rbac security show|set``: the workspace's security policy from the command line.

A thin wrapper over :mod:`.editing`, the Security page's service: ``set``
acts as the Owner named by ``--as``, with the same validation and audit
event. A command has no client address, so the allowlist's own-address rule
does not apply: the CLI is the way back in for an Owner whom a network
change left outside.

::

    flask rbac security show --workspace acme
    flask rbac security mfa-reset --workspace acme owner@example.com
    flask rbac security set --workspace acme --as owner@example.com \\
        mfa=privileged idle_minutes_member=240 ip_allowlist=203.0.113.0/24,2001:db8::/32 \\
        allowed_devices=desktop,tablet

``ip_allowlist`` takes networks separated by commas, ``allowed_devices``
device types (``desktop``, ``mobile``, ``tablet``) separated by commas; an
empty value (``max_sessions=``) clears an optional field, and an empty
``allowed_devices=`` is refused like any policy allowing no device. A
command has no device either, so the device policy's own-device rule does
not apply.
"""

from __future__ import annotations

from typing import Any

import click
from flask.cli import with_appcontext

from ..commandline import member_by_email, workspace_by_slug
from ..errors import RBACError
from ..proxies import current_rbac
from . import editing
from .mfa import is_enrolled, reset_by_operator
from .policy import FIELDS, policy_for


@click.group("security")
def security_group() -> None:
    """Show or change a workspace's security policy."""


def parse_assignments(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``field=value`` arguments as policy changes (commas in ``ip_allowlist`` part lines,
    in ``allowed_devices`` list items)."""
    changes: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise click.UsageError(f"{pair!r}: write field=value (fields: {', '.join(FIELDS)})")
        name = name.strip()
        if name == "ip_allowlist":
            changes[name] = "\n".join(p.strip() for p in value.split(","))
        elif name == "allowed_devices":
            changes[name] = [p.strip() for p in value.split(",") if p.strip()]
        else:
            changes[name] = value.strip()
    return changes


@security_group.command("show")
@click.option("--workspace", required=True, help="The workspace slug.")
@with_appcontext
def show_command(workspace: str) -> None:
    """Print every field of the workspace's policy."""
    policy = policy_for(current_rbac, workspace_by_slug(workspace))
    for name in FIELDS:
        value = getattr(policy, name)
        if name == "ip_allowlist":
            value = ", ".join(value.splitlines()) or "(any address)"
        elif name == "allowed_devices":
            value = ", ".join(value)
        click.echo(f"{name:28} {'(none)' if value is None else value}")
    if not policy.saved:
        click.echo("(the defaults: never saved)")


@security_group.command("set")
@click.option("--workspace", required=True, help="The workspace slug.")
@click.option("--as", "as_email", required=True, metavar="EMAIL",
              help="The Owner making the change (audited as them).")
@click.argument("assignments", nargs=-1, required=True, metavar="FIELD=VALUE...")
@with_appcontext
def set_command(workspace: str, as_email: str, assignments: tuple[str, ...]) -> None:
    """Change fields of the workspace's policy, as an Owner."""
    rbac = current_rbac
    changes = parse_assignments(assignments)
    membership = member_by_email(as_email, workspace_by_slug(workspace))
    access = rbac.access_for(membership)
    hook = rbac.hooks.mfa_verified
    enrolled = is_enrolled(rbac, membership.user_id) or (
        hook is not None and hook(membership.user) is not None)
    try:
        result = editing.save(rbac, access, changes, ip=None, enrolled=enrolled)
        rbac.db.session.commit()
    except RBACError as exc:
        rbac.db.session.rollback()
        field = getattr(exc, "field", None)
        message = getattr(exc, "message", str(exc))
        raise click.ClickException(f"{field}: {message}" if field else message) from exc
    if not result.changes:
        click.echo("Nothing changed.")
    for name, (old, new) in result.changes.items():
        click.echo(f"{name}: {old!r} -> {new!r}")


@security_group.command("mfa-reset")
@click.option("--workspace", required=True, help="The workspace slug.")
@click.argument("email")
@with_appcontext
def mfa_reset_command(workspace: str, email: str) -> None:
    """Remove a member's two-factor authentication and end their sessions.

    For an account no Owner can reset on the members page (a sole Owner who lost
    both their phone and their recovery codes): they sign in with their password
    and enrol again. Audited as done from the command line.
    """
    rbac = current_rbac
    membership = member_by_email(email, workspace_by_slug(workspace))
    enrolled = is_enrolled(rbac, membership.user_id)
    reset_by_operator(rbac, membership)
    rbac.db.session.commit()
    click.echo(f"{email}: two-factor authentication "
               f"{'removed' if enrolled else 'was not on'}; every session ended.")

