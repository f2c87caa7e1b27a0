"""Bulk ORM statements on policy tables retire the access every worker keeps.

A flush names the workspace of each policy row it writes and bumps that
workspace's ``policy_version``; ``session.execute(delete(Grant)...)`` and its
kin write no object, so the query listener bumps every workspace's version
before they run (``guard.bump_for_statement``), or only the workspaces the
code names with the ``rbac_policy_workspaces`` execution option. An UPDATE
that sets only a column without effect on access (a member's last activity)
bumps nothing. SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.guard import POLICY_WORKSPACES
from crm_rbac_plugin.roles import editing
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)


def _versions() -> dict[int, int]:
    W = rbac.models.Workspace
    with rbac.system():
        return dict(db.session.execute(sa.select(W.id, W.policy_version)).tuples().all())


def _ids(column: Any, condition: Any) -> list[int]:
    """The values of ``column`` where ``condition`` holds, read past the query filter."""
    with rbac.system():
        return list(db.session.scalars(sa.select(column).where(condition)))


def _role_ids(membership_id: int) -> list[int]:
    MR = rbac.models.MemberRole
    return _ids(MR.role_id, MR.membership_id == membership_id)


def test_a_bulk_delete_of_grants_is_enforced_on_the_next_request(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """The member's warm access opened leads; a bulk DELETE of their roles' lead grants,
    committed, closes them on the very next request and in ``access_for``."""
    member = world.members["member"]
    client = login(world.users["member"], world.ws)
    assert client.get("/leads/").status_code == 200  # the access is now kept
    assert ("leads", "view") in rbac.access_for(member.id).rules
    G = rbac.models.Grant
    with rbac.system():
        deleted = db.session.execute(sa.delete(G).where(
            G.role_id.in_(_role_ids(member.id)), G.resource == "leads"))
        db.session.commit()
    assert deleted.rowcount > 0
    assert client.get("/leads/").status_code == 403
    assert ("leads", "view") not in rbac.access_for(member.id).rules


def test_a_bulk_update_of_assignments_retires_the_kept_roles(
        app: Flask, world: SimpleNamespace) -> None:
    """An UPDATE of member-role rows (their expiry set in the past) through the session
    moves every workspace's version; the member's next access holds no role."""
    member = world.members["member"]
    before_versions = _versions()
    assert rbac.access_for(member.id).roles
    MR = rbac.models.MemberRole
    with rbac.system():
        db.session.execute(sa.update(MR).where(MR.membership_id == member.id)
                           .values(expires_at=dt.datetime(2000, 1, 1)))
        db.session.commit()
    after = _versions()
    assert all(after[ws] == v + 1 for ws, v in before_versions.items())
    assert rbac.access_for(member.id).roles == ()


@pytest.mark.parametrize(("values", "moved"), [
    ({"last_seen_at": dt.datetime(2026, 1, 1)}, 0),  # as the activity tracker writes it
    ({"last_seen_at": dt.datetime(2026, 1, 1), "visibility": "own"}, 1),
], ids=["last-activity-alone", "with-a-policy-column"])
def test_an_update_of_members_moves_versions_unless_it_sets_inert_columns_only(
        app: Flask, world: SimpleNamespace, values: dict[str, Any], moved: int) -> None:
    """``last_seen_at`` changes nobody's access; any other column beside it counts."""
    before_versions = _versions()
    M = rbac.models.Membership
    with rbac.system():
        db.session.execute(sa.update(M).where(M.id == world.members["member"].id).values(**values))
        db.session.commit()
    after = _versions()
    assert all(after[ws] == v + moved for ws, v in before_versions.items())


def test_the_option_names_the_only_workspaces_bumped(app: Flask, world: SimpleNamespace) -> None:
    """``rbac_policy_workspaces`` narrows the bump to the workspaces the code names."""
    before_versions = _versions()
    G = rbac.models.Grant
    with rbac.system():
        db.session.execute(sa.delete(G).where(G.role_id.in_(_role_ids(world.members["member"].id)),
                                              G.resource == "tasks"),
                           execution_options={POLICY_WORKSPACES: (world.ws.id,)})
        db.session.commit()
    after = _versions()
    assert after[world.ws.id] == before_versions[world.ws.id] + 1
    assert after[world.ws2.id] == before_versions[world.ws2.id]


def test_deleting_a_role_leaves_other_workspaces_caches_alone(
        app: Flask, world: SimpleNamespace) -> None:
    """Deleting a role deletes its conflicts in bulk, naming the role's workspace: a
    member of another workspace keeps their cached access."""
    M = rbac.models.Membership
    outsider = _ids(M.id, M.workspace_id == world.ws2.id)[0]
    kept = rbac.access_for(outsider)
    owner = rbac.access_for(world.members["owner"].id)
    role = editing.create_role(rbac, owner, name="Short-lived")
    db.session.commit()
    before_versions = _versions()
    editing.delete_role(rbac, owner, role)
    db.session.commit()
    after = _versions()
    assert after[world.ws2.id] == before_versions[world.ws2.id]
    assert after[world.ws.id] > before_versions[world.ws.id]
    assert rbac.access_for(outsider) is kept


def test_an_orm_insert_of_grants_is_enforced_on_the_next_request(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """``session.execute(insert(Grant), rows)`` in trusted code: the member's kept access
    gains the grant on their very next request."""
    member = world.members["member"]
    client = login(world.users["member"], world.ws)
    assert client.get("/leads/").status_code == 200
    G = rbac.models.Grant
    role_ids = _role_ids(member.id)
    with rbac.system():
        db.session.execute(sa.delete(G).where(G.role_id.in_(role_ids), G.resource == "leads"))
        db.session.commit()
    assert client.get("/leads/").status_code == 403
    with rbac.system():
        db.session.execute(sa.insert(G), [{"role_id": role_ids[0], "resource": "leads",
                                           "action": "view", "scope": "own", "effect": "allow"}])
        db.session.commit()
    assert client.get("/leads/").status_code == 200
