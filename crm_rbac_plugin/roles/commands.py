"""``flask rbac assignments give|condition|role-condition|department-give|department-remove``.

Thin wrappers over :mod:`.assignments` and :mod:`.groups`: each acts as the
member named by ``--as`` with the checks of the settings pages and the API,
and a refusal ends the command naming the field at fault::

    flask rbac assignments give --workspace acme --as owner@example.com \\
        --member ann@example.com --role Sales --weekdays mon-fri --start 09:00 --end 18:00
    flask rbac assignments role-condition --workspace acme --as owner@example.com \\
        --role Sales --network 10.0.0.0/8 --network 2001:db8::/32
    flask rbac assignments department-give --workspace acme --as owner@example.com \\
        --department Sales --role Sales
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from ..commandline import member_by_email, workspace_by_slug
from ..errors import RBACError
from ..loader import BYPASS
from ..proxies import current_rbac
from ..role_conditions import DAY_NAMES
from .assignments import assign_role, set_assignment_condition
from .groups import department_roles, give_department_role, remove_department_role, set_role_condition


@click.group("assignments")
def assignments_group() -> None:
    """Give roles with conditions, to members and to departments."""


def _run(change: Callable[[], Any]) -> Any:
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


def _named(model: Any, workspace_id: int, name: str, what: str) -> Any:
    found = current_rbac.db.session.scalar(
        sa.select(model).where(model.workspace_id == workspace_id,
                               sa.or_(model.name == name, *(
                                   [model.key == name] if hasattr(model, "key") else []))),
        execution_options=BYPASS)
    if found is None:
        raise click.ClickException(f"no {what} {name!r} in that workspace")
    return found


def _weekdays(text: str) -> list[str]:
    """``mon-fri``, ``fri-mon`` or ``mon,wed`` as weekday names (a bad name reaches the
    service). A range runs forward through the week, so ``fri-mon`` is Friday to Monday."""
    out: list[str] = []
    for part in (p.strip().lower() for p in text.split(",") if p.strip()):
        first, dash, last = part.partition("-")
        if dash and first in DAY_NAMES and last in DAY_NAMES:
            start, days = DAY_NAMES.index(first), (DAY_NAMES.index(last) - DAY_NAMES.index(first)) % 7
            out += [DAY_NAMES[(start + k) % 7] for k in range(days + 1)]
        else:
            out.append(part)
    return out


def _given(option: str, value: str | None) -> str:
    """An option's text; given but blank, it is an error rather than no condition."""
    if value is not None and not value.strip(" ,"):
        raise click.BadParameter("give a value, or leave the option out for no limit",
                                 param_hint=f"'--{option}'")
    return (value or "").strip()


def _condition(weekdays: str | None, start: str | None, end: str | None,
               networks: tuple[str, ...]) -> dict[str, Any]:
    """The condition the options describe; the options left out limit nothing."""
    for network in networks:
        _given("network", network)
    return {"weekdays": _weekdays(_given("weekdays", weekdays)), "start": _given("start", start),
            "end": _given("end", end), "networks": [n.strip() for n in networks]}


def condition_options(command: Any) -> Any:
    """``--weekdays``, ``--start``, ``--end`` and ``--network`` (repeatable)."""
    for option in reversed([
            click.option("--weekdays", default=None,
                         help="mon-fri, fri-mon or mon,wed (default: every day)."),
            click.option("--start", default=None, help="HH:MM in the workspace's time zone."),
            click.option("--end", default=None, help="HH:MM, after --start."),
            click.option("--network", "networks", multiple=True,
                         help="A CIDR network (repeatable; default: any).")]):
        command = option(command)
    return command


_WS = click.option("--workspace", required=True, help="The workspace slug.")
_AS = click.option("--as", "as_email", required=True, help="Act as this member (email).")


def _context(workspace: str, as_email: str) -> tuple[int, Any]:
    ws = workspace_by_slug(workspace)
    return ws, current_rbac.access_for(member_by_email(as_email, ws))


@assignments_group.command("give")
@_WS
@_AS
@click.option("--member", required=True, help="The member's email.")
@click.option("--role", required=True, help="The role's name or key.")
@condition_options
@with_appcontext
def give_command(workspace: str, as_email: str, member: str, role: str, weekdays: str | None,
                 start: str | None, end: str | None, networks: tuple[str, ...]) -> None:
    """Give MEMBER a role, in force only within the condition given."""
    ws, actor = _context(workspace, as_email)
    target = _named(current_rbac.models.Role, ws, role, "role")
    mr = _run(lambda: assign_role(current_rbac, actor, member_by_email(member, ws), target,
                                  condition=_condition(weekdays, start, end, networks)))
    click.echo(f"{member} holds {target.name} (assignment #{mr.id}).")


@assignments_group.command("condition")
@_WS
@_AS
@click.option("--member", required=True, help="The member's email.")
@click.option("--role", required=True, help="The role's name or key.")
@condition_options
@with_appcontext
def condition_command(workspace: str, as_email: str, member: str, role: str, weekdays: str | None,
                      start: str | None, end: str | None, networks: tuple[str, ...]) -> None:
    """Replace the condition of MEMBER's assignments of a role (no option: always)."""
    ws, actor = _context(workspace, as_email)
    target = _named(current_rbac.models.Role, ws, role, "role")
    found = [mr for mr in member_by_email(member, ws).member_roles if mr.role_id == target.id]
    if not found:
        raise click.ClickException(f"{member} does not hold {target.name}")
    cond = _condition(weekdays, start, end, networks)
    _run(lambda: [set_assignment_condition(current_rbac, actor, mr, cond) for mr in found])
    click.echo(f"{member}'s {target.name}: condition saved.")


@assignments_group.command("role-condition")
@_WS
@_AS
@click.option("--role", required=True, help="The role's name or key.")
@condition_options
@with_appcontext
def role_condition_command(workspace: str, as_email: str, role: str, weekdays: str | None,
                           start: str | None, end: str | None, networks: tuple[str, ...]) -> None:
    """Replace the condition under which a role is in force for all its holders."""
    ws, actor = _context(workspace, as_email)
    target = _named(current_rbac.models.Role, ws, role, "role")
    _run(lambda: set_role_condition(current_rbac, actor, target,
                                    _condition(weekdays, start, end, networks)))
    click.echo(f"{target.name}: condition saved.")


@assignments_group.command("department-give")
@_WS
@_AS
@click.option("--department", required=True, help="The department's name.")
@click.option("--role", required=True, help="The role's name or key.")
@condition_options
@with_appcontext
def department_give_command(workspace: str, as_email: str, department: str, role: str,
                            weekdays: str | None, start: str | None, end: str | None,
                            networks: tuple[str, ...]) -> None:
    """Give a role to every member of a department while they belong to it."""
    ws, actor = _context(workspace, as_email)
    m = current_rbac.models
    dept, target = _named(m.Department, ws, department, "department"), _named(m.Role, ws, role, "role")
    _run(lambda: give_department_role(current_rbac, actor, dept, target,
                                      condition=_condition(weekdays, start, end, networks)))
    click.echo(f"Members of {dept.name} hold {target.name}.")


@assignments_group.command("department-remove")
@_WS
@_AS
@click.option("--department", required=True, help="The department's name.")
@click.option("--role", required=True, help="The role's name or key.")
@with_appcontext
def department_remove_command(workspace: str, as_email: str, department: str, role: str) -> None:
    """Take a role away from a department."""
    ws, actor = _context(workspace, as_email)
    m = current_rbac.models
    dept, target = _named(m.Department, ws, department, "department"), _named(m.Role, ws, role, "role")
    row = next((r for r in department_roles(current_rbac, dept) if r.role_id == target.id), None)
    if row is None:
        raise click.ClickException(f"{dept.name} does not give {target.name}")
    _run(lambda: remove_department_role(current_rbac, actor, row))
    click.echo(f"{dept.name} no longer gives {target.name}.")
