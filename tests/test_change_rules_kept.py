"""A permission change's reason rule, time zone and alert settings, kept per policy version.

Each worker keeps a workspace's reason rule (``ReviewSchedule.require_reason``),
time zone and alert settings by ``(workspace, policy_version)``, so a role
change in a request reads them only when its version is new to the worker.
Writing any of them bumps the version: the next request of every worker
meets a new key and reads them again. Two app objects on one database stand
for two workers (as in ``test_warm_revocation``); SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import alerts, roles, workspaces
from crm_rbac_plugin.alerts import rules as alert_rules
from crm_rbac_plugin.certification import schedule
from crm_rbac_plugin.context import change_reason
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.identity import request_state
from tests.rbac_helpers import access_of, fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_sessions import sign_in
from tests.test_warm_revocation import two_workers


@pytest.fixture
def workers(backend: str, request: pytest.FixtureRequest,
            tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Worker A (world built, settings changed here, its app context open) and worker B."""
    def ids_of(world: SimpleNamespace) -> SimpleNamespace:
        return SimpleNamespace(ws=world.ws.id, owner=world.members["owner"].id,
                               viewer=world.members["viewer"].id,
                               finance=workspaces.role_by_key(rbac, world.ws, "finance").id)
    with two_workers(backend, request, tmp_path, ids_of) as pair:
        yield pair


def owner_access(ids: SimpleNamespace) -> Any:
    db.session.expire_all()
    return access_of(db.session.get(rbac.models.Membership, ids.owner))


def toggle(client: FlaskClient, ids: SimpleNamespace, reason: str | None = None) -> int:
    """Give the viewer Finance through the settings page, or take it away; the status."""
    data = {"reason": reason} if reason else {}
    with client.application.app_context():
        M = rbac.models.MemberRole
        held = db.session.scalar(sa.select(M.id).where(M.membership_id == ids.viewer,
                                                       M.role_id == ids.finance))
        db.session.remove()
    if held is None:
        url, data = f"/settings/members/{ids.viewer}/roles", {**data, "role_id": ids.finance}
    else:
        url = f"/settings/members/{ids.viewer}/roles/{held}/remove"
    return client.post(url, data=data).status_code


def warm(app: Flask, ids: SimpleNamespace) -> FlaskClient:
    """The Owner's client on ``app``, after changes that leave the worker holding the rules."""
    client = sign_in(app, "owner@example.test")
    for _ in range(4):  # given and taken away twice: the viewer ends without it
        assert toggle(client, ids) == 302
    assert app.extensions["rbac"].policies._rules  # the worker keeps the workspace's rules
    return client


@contextmanager
def owner_request(workers: SimpleNamespace) -> Iterator[Any]:
    """A request on worker A whose Access is the Owner's, read after A keeps the rules."""
    warm(workers.a, workers.ids)
    with workers.a.test_request_context("/"):
        access = owner_access(workers.ids)
        state = request_state()
        state.access, state.resolved = access, True
        yield access


def rule_reads(app: Flask, client: FlaskClient, ids: SimpleNamespace) -> int:
    """Statements reading the reason rule or alert settings in one role change on ``app``."""
    seen: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", note)
    try:
        assert toggle(client, ids) == 302
    finally:
        sa.event.remove(engine, "before_cursor_execute", note)
    return len([s for s in seen if "rbac_review_schedule" in s or "rbac_alert_settings" in s])


def test_consecutive_role_changes_read_the_rules_once(workers: SimpleNamespace) -> None:
    ids = workers.ids
    client = sign_in(workers.b, "owner@example.test")
    assert rule_reads(workers.b, client, ids) == 1  # a version new to the worker
    assert [rule_reads(workers.b, client, ids) for _ in range(3)] == [0, 0, 0]


def test_a_reason_required_on_one_worker_binds_the_others_next_change(
        workers: SimpleNamespace) -> None:
    ids = workers.ids
    client = warm(workers.b, ids)
    schedule.save(rbac, owner_access(ids), require_reason=True)
    db.session.commit()
    assert toggle(client, ids) == 400
    assert toggle(client, ids, reason="month-end close") == 302
    schedule.save(rbac, owner_access(ids), require_reason=False)
    db.session.commit()
    assert toggle(client, ids) == 302


def test_alert_settings_saved_on_one_worker_drive_the_others_next_change(
        workers: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = workers.ids
    client = warm(workers.b, ids)
    used: list[alert_rules.Thresholds] = []
    counts = alert_rules.counts_for_event

    def spy(ev: Any, limits: Any) -> Any:
        used.append(limits)
        return counts(ev, limits)

    monkeypatch.setattr(alert_rules, "counts_for_event", spy)
    alerts.save(rbac, owner_access(ids), {"business_days": ["mon", "tue"], "business_start_hour": 8,
                                       "business_end_hour": 18})
    db.session.commit()
    assert toggle(client, ids) == 302
    assert (used[-1].business_days, used[-1].business_end_hour) == ((0, 1), 18)
    alerts.save(rbac, owner_access(ids), {"timezone": "Asia/Tokyo"})
    db.session.commit()
    assert toggle(client, ids) == 302
    assert used[-1].timezone == "Asia/Tokyo"
    assert (used[-1].business_days, used[-1].business_end_hour) == ((0, 1), 18)


def test_a_transaction_that_requires_a_reason_reads_the_rule_fresh(
        workers: SimpleNamespace) -> None:
    ids = workers.ids
    M = rbac.models.Membership
    with owner_request(workers) as access:
        kept = workers.a.extensions["rbac"].policies.get_rules(ids.ws, access.policy_version)
        assert kept is not None and kept[0] is False  # the worker holds "no reason needed"
        with rbac.as_member(db.session.get(M, ids.owner)):
            schedule.save(rbac, access, require_reason=True)
            roles.assign_role(rbac, access, db.session.get(M, ids.viewer),
                              db.session.get(rbac.models.Role, ids.finance))
            with pytest.raises(ValidationError):
                db.session.commit()
        db.session.rollback()


def test_the_rules_of_a_committed_change_in_this_request_are_read_again(
        workers: SimpleNamespace) -> None:
    ids = workers.ids
    M = rbac.models.Membership
    with owner_request(workers) as access:
        with rbac.as_member(db.session.get(M, ids.owner)):
            schedule.save(rbac, access, require_reason=True)
            db.session.commit()  # the request's Access still names the version before it
            roles.assign_role(rbac, access, db.session.get(M, ids.viewer),
                              db.session.get(rbac.models.Role, ids.finance))
            with pytest.raises(ValidationError):
                db.session.commit()
        db.session.rollback()


def test_a_reason_required_by_another_worker_while_a_change_is_in_flight_binds_it(
        workers: SimpleNamespace) -> None:
    """Worker A's request loaded its Access, and the rules kept for its version say
    "no reason needed"; worker B then requires a reason and commits. A's change bumps
    the version past B's: the version it leaves is not the one its request started
    with, so it reads the rule again in its transaction and is refused without a reason."""
    ids = workers.ids
    M = rbac.models.Membership
    with owner_request(workers) as access:
        kept = workers.a.extensions["rbac"].policies.get_rules(ids.ws, access.policy_version)
        assert kept is not None and kept[0] is False
        db.session.rollback()  # the request's reads are done: B may write
        with workers.b.app_context():
            schedule.save(rbac, owner_access(ids), require_reason=True)
            db.session.commit()
            db.session.remove()
        with rbac.as_member(db.session.get(M, ids.owner)):
            roles.assign_role(rbac, access, db.session.get(M, ids.viewer),
                              db.session.get(rbac.models.Role, ids.finance))
            with pytest.raises(ValidationError) as refused:
                db.session.commit()
            assert refused.value.field == "reason"
        db.session.rollback()
        with rbac.as_member(db.session.get(M, ids.owner)), change_reason("month-end close"):
            roles.assign_role(rbac, access, db.session.get(M, ids.viewer),
                              db.session.get(rbac.models.Role, ids.finance))
            db.session.commit()
    assert ids.finance in set(db.session.scalars(sa.select(rbac.models.MemberRole.role_id).where(
        rbac.models.MemberRole.membership_id == ids.viewer)))
