"""Who-could's replay builds access exactly as live decisions do.

At "now" no audited change is undone, so for every member and every record
the replayed answer must be ``can()``'s. Hypothesis draws the worlds of the
policy/filter agreement property (random roles, grants with conditions,
parents, departments, manager links, visibility levels, sharing agreements)
and adds time windows to the subject's role assignments. The concrete
cases below pin the member's visibility level, field rules and time windows.
"""

from __future__ import annotations

import datetime as dt
import os
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import loader, workspaces
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.oversight import history
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_agreement import ACTIONS, MODELS, GrantSpec, PolicySpec, apply, policy_specs, vary_records

#: Examples per run and backend (RBAC_WHO_COULD_EXAMPLES raises it).
MAX_EXAMPLES = int(os.environ.get("RBAC_WHO_COULD_EXAMPLES", "25"))

#: Time windows of an assignment relative to now, in days: (starts, expires).
WINDOWS: list[tuple[int | None, int | None]] = [
    (None, None), (-3, None), (None, 3), (-3, 3), (2, None), (None, -1), (-5, -1), (1, 5)]

#: Always tried first: an all-scope role under an "Own" visibility level, in force.
CAPPED = PolicySpec("member", "sales", (), ((GrantSpec("leads", "view", "all", "allow", ()),
                                             GrantSpec("deals", "edit", "all", "allow", ()),
                                             GrantSpec("deals", "view", "all", "allow", ())),),
                    None, None, True, visibility="own")


def _access(membership_id: int) -> Any:
    row = loader.membership_row(db.session, rbac.models, membership_id=membership_id)
    return loader.load_access(db.session, rbac.models, rbac.registry, current_app.config, row)


def mismatches(workspace_id: int, records: list[tuple[str, Any]], actions: tuple[str, ...]
               ) -> list[str]:
    """Every (member, record, action) where the replay at now and ``can()`` differ."""
    out = []
    accesses: dict[int, Any] = {}
    for resource, record in records:
        for action in actions:
            result = history.who_could(rbac, workspace_id, resource, record.id, utcnow(), action)
            for answer in result.answers:
                access = accesses.setdefault(answer.membership_id,
                                             _access(answer.membership_id))
                live = rbac.can(action, resource, record, access=access)
                if live != answer.allowed:
                    out.append(f"member #{answer.membership_id} {action} {resource} "
                               f"#{record.id}: replay {answer.allowed}, can() {live} "
                               f"({answer.reason})")
    return out


def test_who_could_applies_the_visibility_level(app: Flask, world: SimpleNamespace,
                                                login: Any) -> None:
    """An Admin capped to "Own" could not view a lead owned by someone else:
    not in the replay, nor on the page, nor in the CLI."""
    admin = world.members["admin"]
    lead = world.leads["member"]
    with rbac.system():
        admin.visibility = "own"
        db.session.commit()
    access = rbac.access_for(admin)
    assert not rbac.can("view", "leads", lead, access=access)
    result = history.who_could(rbac, world.ws.id, "leads", lead.id, utcnow())
    answer = next(a for a in result.answers if a.membership_id == admin.id)
    assert answer.allowed is False
    assert str(world.users["admin"]) not in {a.user for a in result.allowed}
    own = world.leads["unowned"]  # unowned records stay visible (RBAC_UNOWNED_VISIBLE)
    answer = next(a for a in history.who_could(rbac, world.ws.id, "leads", own.id,
                                               utcnow()).answers
                  if a.membership_id == admin.id)
    assert answer.allowed is True

    page = login(world.users["owner"], world.ws).get(
        f"/settings/who-could?resource=leads&record={lead.id}")
    assert page.status_code == 200
    replay = page.text.split('id="who-could"', 1)[1]  # the replay card, not "who can now"
    row = next(r for r in replay.split("<tr ") if f">{world.users['admin']}<" in r)
    assert 'class="is-denied"' in row and "<td>no</td>" in row
    out = app.test_cli_runner().invoke(args=[
        "rbac", "who-could", "--workspace", "acme", "--resource", "leads",
        "--record", str(lead.id), "--at", utcnow().isoformat()])
    assert out.exit_code == 0, out.output
    line = next(text for text in out.output.splitlines() if f"(member #{admin.id};" in text)
    assert line.strip().startswith("no ")


def test_who_could_applies_field_rules_and_time_windows(world: SimpleNamespace) -> None:
    """A not-yet-started assignment gives nothing; the replayed Access carries
    the field rules of the roles in force, as the live one does."""
    m = rbac.models
    member2 = world.members["member2"]
    deal = world.deals["manager-won"]
    with rbac.system():
        later = workspaces.assign_role(rbac, member2, workspaces.role_by_key(rbac, world.ws,
                                                                             "viewer"))
        later.starts_at = utcnow() + dt.timedelta(days=1)
        db.session.add(m.FieldRule(role=workspaces.role_by_key(rbac, world.ws, "member"),
                                   resource="deals", field="amount", mode="hidden"))
        db.session.commit()
    state, _ = history.policy_as_of(rbac, world.ws.id, utcnow())
    replayed = history.access_as_of(rbac, state, state["member"][member2.id], utcnow())
    live = _access(member2.id)
    assert replayed.rules == live.rules and replayed.hidden_fields == live.hidden_fields
    assert replayed.hidden("deals") == {"amount"}
    assert mismatches(world.ws.id, [("deals", deal)], ("view",)) == []


def _windows(spec_windows: list[tuple[int | None, int | None]], membership: Any) -> None:
    now = utcnow()
    for mr, (starts, expires) in zip(membership.member_roles, spec_windows, strict=False):
        mr.starts_at = None if starts is None else now + dt.timedelta(days=starts)
        mr.expires_at = None if expires is None else now + dt.timedelta(days=expires)
    db.session.flush()


def test_who_could_now_equals_can(app: Flask, world: SimpleNamespace,
                                  record_property: Any) -> None:
    vary_records(world)
    ids = {"users": [u.id for u in world.users.values()],
           "clients": [c.id for c in world.clients.values()]}
    examples = 0

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(spec=policy_specs(ids),
           windows=st.lists(st.sampled_from(WINDOWS), min_size=2, max_size=2),
           action=st.sampled_from(ACTIONS))
    @example(spec=CAPPED, windows=[(None, None), (None, None)], action="edit")
    def check(spec: PolicySpec, windows: list[tuple[int | None, int | None]],
              action: str) -> None:
        nonlocal examples
        examples += 1
        app.config["RBAC_UNOWNED_VISIBLE"] = spec.unowned_visible
        try:
            membership = apply(world, spec)
            _windows(windows, membership)
            with rbac.system():
                records = {ws: [(res, r) for res, model in MODELS.items()
                                for r in db.session.scalars(sa.select(model).where(
                                    model.workspace_id == ws))]
                           for ws in (world.ws.id, world.ws2.id)}
            for ws, recs in records.items():
                assert mismatches(ws, recs, ("view", action)) == []
        finally:
            db.session.rollback()
            app.config["RBAC_UNOWNED_VISIBLE"] = True

    check()
    record_property("hypothesis_examples", examples)
    print(f"who-could/can agreement: {examples} examples")
    assert examples >= MAX_EXAMPLES


def test_who_could_replays_a_visibility_change(world: SimpleNamespace) -> None:
    """The level in force at the instant asked about counts, not today's."""
    admin = world.members["admin"]
    lead = world.leads["member"]
    before = utcnow()
    with rbac.system():
        admin.visibility = "own"
        db.session.commit()

    def could(at: dt.datetime) -> bool:
        result = history.who_could(rbac, world.ws.id, "leads", lead.id, at)
        return next(a.allowed for a in result.answers if a.membership_id == admin.id)

    assert could(before) is True
    assert could(utcnow()) is False


def test_a_security_policy_change_is_skipped_by_the_replay(app: Flask, world: SimpleNamespace,
                                                            login: Any) -> None:
    """A security-policy change keeps ``{field: [old, new]}`` in its event: the replay
    skips it (it changes no record access) on the page, in the CLI and in Python."""
    lead = world.leads["member"]
    before = utcnow()
    owner = login(world.users["owner"], world.ws)
    saved = owner.patch("/api/v1/security-policy", json={"idle_minutes_member": 120})
    assert saved.status_code == 200, saved.text
    with rbac.system():
        A = rbac.models.AuditEvent
        event = db.session.scalar(sa.select(A).where(A.action == "security_policy.changed"))
        assert isinstance(event.detail["changes"], dict)  # the shape the replay meets
    then = history.who_could(rbac, world.ws.id, "leads", lead.id, before)
    now = history.who_could(rbac, world.ws.id, "leads", lead.id, utcnow())
    assert [(a.membership_id, a.allowed) for a in then.answers] == [
        (a.membership_id, a.allowed) for a in now.answers]
    at = before.isoformat()
    page = owner.get(f"/settings/who-could?action=view&resource=leads&record={lead.id}&at={at}")
    assert page.status_code == 200, page.text
    out = app.test_cli_runner().invoke(args=[
        "rbac", "who-could", "--workspace", "acme", "--resource", "leads",
        "--record", str(lead.id), "--at", at])
    assert out.exit_code == 0, out.output


def test_an_instant_past_the_calendar_is_a_usage_error(app: Flask, world: SimpleNamespace,
                                                       login: Any) -> None:
    """A condition's next change after 9999-12-31 leaves the calendar: the CLI answers
    a usage error naming ``--at``, as the page answers 400."""
    lead = world.leads["member"]
    with rbac.system():
        world.ws.timezone = "Europe/Paris"
        world.members["member2"].member_roles[0].access_condition = {"weekdays": ["mon"]}
        db.session.commit()
    at = "9999-12-31T23:59"
    out = app.test_cli_runner().invoke(args=[
        "rbac", "who-could", "--workspace", "acme", "--resource", "leads",
        "--record", str(lead.id), "--at", at])
    assert out.exit_code == 2 and "--at" in out.output, out.output
    assert out.exception is None or isinstance(out.exception, SystemExit)
    page = login(world.users["owner"], world.ws).get(
        f"/settings/who-could?resource=leads&record={lead.id}&at={at}")
    assert page.status_code == 400
