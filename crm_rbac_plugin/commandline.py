"""What the ``flask rbac`` subcommands share: naming a workspace and a member on the command line.

A command takes a workspace by its slug and a member by their email; an
unknown one ends the command with a :class:`click.ClickException` naming
it, as every subcommand (security, approvals, alerts, reviews) answers.
The lookups bypass the query filter: the operator running the CLI names
them before acting as anyone.
"""

from __future__ import annotations

from typing import Any

import click
import sqlalchemy as sa

from .inputs import MAX_ID
from .loader import BYPASS
from .proxies import current_rbac

#: The type of an id option or argument: an id the database's integer columns
#: can hold, so a larger one is a usage error naming the option, not a
#: driver's overflow.
ID = click.IntRange(0, MAX_ID)


def workspace_by_slug(slug: str) -> int:
    """The id of the workspace whose slug is ``slug``."""
    W = current_rbac.models.Workspace
    ws = current_rbac.db.session.scalar(sa.select(W.id).where(W.slug == slug),
                                        execution_options=BYPASS)
    if ws is None:
        raise click.ClickException(f"no workspace {slug!r}")
    return int(ws)


def member_by_email(email: str, workspace_id: int) -> Any:
    """The membership of the user with ``email`` (any case) in the workspace."""
    rbac = current_rbac
    M, U = rbac.models.Membership, rbac.user_model
    membership = rbac.db.session.scalar(
        sa.select(M).join(U, M.user).where(M.workspace_id == workspace_id,
                                           sa.func.lower(U.email) == email.strip().lower()),
        execution_options=BYPASS)
    if membership is None:
        raise click.ClickException(f"{email} is not a member of that workspace")
    return membership
