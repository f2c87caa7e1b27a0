"""Two approvers deciding one request at the same moment execute it exactly once.

On PostgreSQL, and on SQLite in a database file (the demo's setting: two
connections, one write lock; an in-memory database has one connection and
no race). Each round: a Manager's export waits for approval; two approvers
(two API clients, one thread each, two database connections) approve it together.
With one approval required, one executes and the other gets 409; with two
required, one records the first approval and the other executes. Either
way the export is produced once (one ``export`` event, one
``approval.executed``) and the request ends ``executed``, never stuck.
"""

from __future__ import annotations

import os
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals, workspaces
from crm_rbac_plugin.gate import ApprovalPending
from tests.rbac_helpers import (
    access_of,
    ask_for_approval,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.security.test_concurrency import race, token
from tests.test_settings_ui import role

ROUNDS = int(os.environ.get("RBAC_RACE_ROUNDS", "5"))


#: On SQLite, a database file of the module's own (see ``database_url``).
pytestmark = pytest.mark.sqlite_file


def export_request(app: Flask, world: SimpleNamespace) -> int:
    """A pending export request of the Manager (threshold 1 row)."""
    client = app.test_client(user=world.users["manager"])
    with client.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = world.ws.id
    r = ask_for_approval(client, "/leads/export.csv")
    assert r.status_code == 303, r.text
    R = rbac.models.ApprovalRequest
    db.session.expire_all()
    return int(db.session.scalar(sa.select(sa.func.max(R.id))))


def count(action: str) -> int:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return int(db.session.scalar(sa.select(sa.func.count()).where(A.action == action)))


@pytest.mark.parametrize("required", [1, 2])
def test_two_approvers_at_once_execute_once(app: Flask, world: SimpleNamespace,
                                            required: int) -> None:
    workspaces.assign_role(rbac, world.members["finance"], role(world, "admin"))
    db.session.commit()
    approvals.save(rbac, access_of(world.members["owner"]),
                   {"operations": {"export": 1}, "approvals_required": required})
    db.session.commit()
    first, second = token(app, world, "admin"), token(app, world, "finance")
    for _ in range(ROUNDS):
        rid = export_request(app, world)
        exports, executed = count("export"), count("approval.executed")
        statuses, errors = race(lambda: first.post(f"/approvals/{rid}/approve", {}),
                                lambda: second.post(f"/approvals/{rid}/approve", {}))
        assert not errors, errors
        expected = [200, 409] if required == 1 else [200, 200]
        assert sorted(statuses) == expected
        db.session.expire_all()
        req = db.session.get(rbac.models.ApprovalRequest, rid)
        assert req.status == "executed", req.failure
        assert count("export") == exports + 1
        assert count("approval.executed") == executed + 1
        assert len(req.decisions) == required


def test_the_service_refuses_a_request_taken_meanwhile(world: SimpleNamespace) -> None:
    """The conditional UPDATE alone refuses a second execution (no lock needed to see it)."""
    approvals.save(rbac, access_of(world.members["owner"]), {"operations": {"plan": True}})
    db.session.commit()
    from crm_rbac_plugin import roles
    with pytest.raises(ApprovalPending) as pending:
        roles.set_plan(rbac, access_of(world.members["owner"]), world.ws, "pro")
    req: Any = db.session.get(rbac.models.ApprovalRequest, pending.value.request_id)
    with db.engine.begin() as other:  # another worker took it first
        other.execute(sa.text("UPDATE rbac_approval_request SET status = 'executing' "
                              "WHERE id = :id"), {"id": req.id})
    from crm_rbac_plugin.errors import RuleConflict
    with pytest.raises(RuleConflict):
        approvals.execute(rbac, req, access_of(world.members["admin"]), "")
    db.session.rollback()
    db.session.refresh(world.ws)
    assert world.ws.plan == "enterprise"
