"""Serialise concurrent changes: the workspace row is written first, and a unique-key
clash at flush becomes a refusal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ValidationError
from ..loader import BYPASS
from ..locking import write_lock

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def lock_workspace(rbac: RBACProtocol, workspace_id: int) -> None:
    """Write the workspace row first: serialises owner changes on every backend.

    On PostgreSQL the UPDATE takes the row lock, so a concurrent transaction
    waits here and then counts owners afresh; on SQLite it takes the database
    write lock. Bumping the policy version is what this change needs anyway.
    """
    W = rbac.models.Workspace.__table__
    rbac.db.session.execute(sa.update(W).where(W.c.id == workspace_id)
                            .values(policy_version=W.c.policy_version + 1))


def lock_for_role_change(rbac: RBACProtocol, role: Any) -> None:
    """Serialise writers of ``role``'s matrix, then re-read what the role holds.

    Two admins saving the same role at the same moment would otherwise each
    delete the cells *they* loaded and insert their own: the stored matrix
    became a mix of both submissions (or a unique-key clash on a shared
    cell). Writing the workspace row first (:func:`lock_workspace`) makes
    the second save wait until the first commits, on PostgreSQL (row lock)
    and SQLite (database write lock) alike; every change to a role bumps
    that row at flush anyway, so this serialises nothing that was not
    already serialised, only earlier. What this transaction read before the
    lock may be stale, so the session is expired (the lock's statement has
    just flushed it) and the role's grants and field rules are read again
    when the change is computed: the stored matrix is exactly one submission.
    """
    session = rbac.db.session
    Role = rbac.models.Role
    role_id = role.id
    lock_workspace(rbac, role.workspace_id)
    session.expire_all()
    if session.scalar(sa.select(Role.id).where(Role.id == role_id),
                      execution_options=BYPASS) is None:
        raise ValidationError("this role was deleted meanwhile; reload the page")


def lock_for_member_change(rbac: RBACProtocol, membership: Any,
                           member_role: Any = None) -> None:
    """Serialise changes to ``membership``'s roles, then read its assignments afresh.

    Two assignments at once would each check the segregation-of-duties pairs,
    and two removals each the role a member keeps, against what the other has
    not committed yet. Writing the membership's row first
    (:func:`..locking.write_lock`) makes the second wait and then read what the
    first committed. ``member_role``: the assignment about to be taken away,
    which must still be there.
    """
    session = rbac.db.session
    M = rbac.models.Membership
    write_lock(session, M, M.id == membership.id)
    if "member_roles" not in sa.inspect(membership).unloaded:
        session.expire(membership, ["member_roles"])
    if member_role is not None:
        MR = rbac.models.MemberRole
        if session.scalar(sa.select(MR.id).where(MR.id == member_role.id),
                          execution_options=BYPASS) is None:
            raise ValidationError("this role was taken away meanwhile; reload the page")


@contextmanager
def concurrent_change_refused(what: str) -> Iterator[None]:
    """Turn a unique-key clash at flush into a clear refusal instead of a 500.

    The locks above prevent it for one role; two requests *creating* similar
    rows at once (two roles given the same new name) can still meet at the
    database's unique constraints. The caller rolls back, as for any refusal.
    """
    try:
        yield
    except sa.exc.IntegrityError:
        raise ValidationError(f"someone else changed {what} at the same moment; "
                              "reload the page and try again") from None
