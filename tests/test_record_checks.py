"""The compiled record checks (``record_checks``) decide exactly as :func:`policy.decide`.

``rbac.can(action, resource, record)`` answers from the Access's compiled
check when it can, and from the full policy otherwise. Hypothesis draws the
same random policies as ``tests/test_agreement.py`` (stacked and inherited
roles, denies, conditions, visibility levels, teams, departments, sharing
agreements, conditional roles); for every record of every resource and
every action, the compiled check's answer (when it gives one), ``rbac.can``
and ``rbac.decide(...).allowed`` must be equal. Some records have attributes
expired, so that the check must hand over to the full path, which reads them.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, example, given, settings

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import Access
from crm_rbac_plugin.errors import UnknownResource
from crm_rbac_plugin.record_checks import check_for, compile_check
from tests.rbac_helpers import fast_passwords  # noqa: F401
from tests.test_agreement import (
    ACTIONS,
    EXPLICIT,
    MAX_EXAMPLES,
    MODELS,
    PolicySpec,
    apply,
    fresh_access,
    policy_specs,
    vary_records,
)

#: Attributes expired on some records: the check cannot read them and hands over.
EXPIRED = ("owner_id", "workspace_id", "client_id", "name", "amount", "stage")


def mismatches(access: Access, records: dict[str, list[Any]]) -> tuple[list[str], int]:
    """Return the disagreements between the three answers, and how many the check gave."""
    out, decided = [], 0
    for resource, recs in records.items():
        for action in ACTIONS:
            check = compile_check(access, rbac.registry, resource, action)
            for record in recs:
                full = rbac.decide(access, action, resource, record).allowed
                fast = check(record)
                decided += fast is not None
                if fast is not None and fast != full:
                    out.append(f"check {resource}.{action} #{record.id}: {fast}, decide: {full}")
                if rbac.can(action, resource, record, access=access) != full:
                    out.append(f"can {resource}.{action} #{record.id} differs from decide")
    return out, decided


def test_compiled_checks_agree_with_decide(app: Flask, world: SimpleNamespace) -> None:
    vary_records(world)
    ids = {"users": [u.id for u in world.users.values()],
           "clients": [c.id for c in world.clients.values()]}
    totals = {"examples": 0, "decided": 0}

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(spec=policy_specs(ids))
    def check(spec: PolicySpec) -> None:
        totals["examples"] += 1
        try:
            membership = apply(world, spec)
            access = fresh_access(app, membership, spec.unowned_visible, spec.gate)
            with rbac.system():
                records = {res: list(db.session.scalars(sa.select(model)))
                           for res, model in MODELS.items()}
            for n, record in enumerate(r for recs in records.values() for r in recs):
                if n % 3 == 0:
                    db.session.expire(record, [EXPIRED[n % len(EXPIRED)]]
                                      if hasattr(type(record), EXPIRED[n % len(EXPIRED)]) else None)
            with rbac.system():
                found, decided = mismatches(access, records)
            assert found == []
            totals["decided"] += decided
        finally:
            db.session.rollback()

    for spec in EXPLICIT:
        check = example(spec=spec)(check)
    check()
    assert totals["examples"] >= MAX_EXAMPLES
    # Most answers come from the compiled check: the test is not vacuous.
    assert totals["decided"] > 0


def test_can_uses_and_keeps_the_compiled_check(app: Flask, world: SimpleNamespace) -> None:
    access = rbac.access_for(world.members["member"].id)
    own, other = world.leads["member"], world.leads["member2"]
    assert rbac.can("edit", "leads", own, access=access) is True
    assert rbac.can("edit", "leads", other, access=access) is False
    check = access.record_checks[("leads", "edit")]
    assert check_for(access, rbac.registry, "leads", "edit") is check
    assert check(own) is True and check(other) is False


def test_the_check_hands_over_what_it_cannot_read(app: Flask, world: SimpleNamespace) -> None:
    """An expired owner, a record of another workspace, a child whose parent
    decides, or an object that is no instance of the model: None, and ``can``
    still answers as ``decide``."""
    access = rbac.access_for(world.members["member"].id)
    check = compile_check(access, rbac.registry, "leads", "view")
    lead = world.leads["member"]
    db.session.expire(lead, ["owner_id"])
    assert check(lead) is None
    assert rbac.can("view", "leads", lead, access=access) is True  # reloads the owner
    assert check(lead) is True
    with rbac.system():
        foreign = db.session.get(Lead, world.other["lead"].id)
    assert check(foreign) is None
    assert rbac.can("view", "leads", foreign, access=access) is False
    plain = SimpleNamespace(workspace_id=world.ws.id, owner_id=world.users["member"].id)
    assert check(plain) is None
    assert rbac.can("view", "leads", plain, access=access) == rbac.decide(
        access, "view", "leads", plain).allowed
    task_check = compile_check(access, rbac.registry, "tasks", "view")
    task = world.tasks["on-member"]  # owned by member2, on the member's client
    assert task_check(task) is None
    assert rbac.can("view", "tasks", task, access=access) == rbac.decide(
        access, "view", "tasks", task).allowed


def test_unknown_resource_or_action_is_refused_and_not_kept(app: Flask,
                                                            world: SimpleNamespace) -> None:
    access = rbac.access_for(world.members["member"].id)
    with pytest.raises(UnknownResource):
        rbac.can("view", "nonsense", world.leads["member"], access=access)
    with pytest.raises(UnknownResource):
        rbac.can("fly", "leads", world.leads["member"], access=access)
    assert ("nonsense", "view") not in access.record_checks
