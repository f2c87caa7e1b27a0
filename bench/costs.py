"""What the new features cost: a permission-changing request with its side effects on and off.

The Owner gives a member the *Viewer* role, or takes it away when held
(``POST /bench/rbac/members/<membership>/roles/<role>``, :mod:`.views`),
through the test client: one permission change per request, committed by
the roles service. A sample is two requests, the grant and its removal,
so that every sample does the same work. It is timed twice, interleaved:

* *on*: as deployed: the audit trail collects the change and writes one
  event at commit, the alert rules evaluate that event
  (``RBAC_ALERTS``), and the notification source queues *role assigned* /
  *role removed* for the member;
* *off*: ``RBAC_ALERTS=False``, and the audit trail's and the notification
  source's session listeners do nothing. Neither has a configuration key
  that turns it off (the trail is the plugin's evidence; a member's
  notification preferences silence mail, not the row), so for the twin the
  module functions the listeners call (``audit.changes._before_flush`` and
  ``_before_commit``, ``notify.sources.collect``) are replaced by no-ops
  around each call and restored after it. The listeners look the
  functions up when called, so nothing else changes.

The access cache's invalidation, the write guard and the request's own
checks run in both: they are the permission change, not its reporting. The
notification's mail is queued by the *on* twin and sent later by
``flask rbac notify send`` (``RBAC_NOTIFY_INLINE=False``, as deployed), so
the request pays for queueing it, not for the SMTP round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.audit import changes as audit_changes
from crm_rbac_plugin.notify import sources as notify_sources

from . import sql
from .figures import Effort, _stats, signed_in
from .timing import compare, ratio
from .world import World

#: The module functions the audit and notification listeners call, by module.
_SILENCED: tuple[tuple[Any, str], ...] = (
    (audit_changes, "_before_flush"), (audit_changes, "_before_commit"),
    (notify_sources, "collect"))
#: The crm member (by user index) whose role the Owner changes: not a figure's member.
TARGET_INDEX = 5


def _nothing(*args: Any) -> None:
    return None


@contextmanager
def features_off(app: Flask) -> Iterator[None]:
    """Run the block with alerts off and the audit and notification listeners idle."""
    saved = [(module, name, getattr(module, name)) for module, name in _SILENCED]
    alerts = app.config["RBAC_ALERTS"]
    app.config["RBAC_ALERTS"] = False
    for module, name, _ in saved:
        setattr(module, name, _nothing)
    try:
        yield
    finally:
        for module, name, fn in saved:
            setattr(module, name, fn)
        app.config["RBAC_ALERTS"] = alerts


def _target(world: World) -> tuple[int, int]:
    """The membership id of the target member and the crm workspace's Viewer role id."""
    m = rbac.models
    with rbac.system():
        membership = db.session.scalar(sa.select(m.Membership.id).where(
            m.Membership.workspace_id == world.crm_ws,
            m.Membership.user_id == world.user_ids[TARGET_INDEX]))
        role = db.session.scalar(sa.select(m.Role.id).where(
            m.Role.workspace_id == world.crm_ws, m.Role.key == "viewer"))
    db.session.remove()
    return int(membership), int(role)


def _counts(app: Flask) -> dict[str, int]:
    m = rbac.models
    with app.app_context(), rbac.system():
        return {name: int(db.session.scalar(sa.select(sa.func.count()).select_from(model)))
                for name, model in (("audit_events", m.AuditEvent),
                                    ("notifications", m.Notification))}


def permission_change(app: Flask, world: World, effort: Effort) -> dict[str, Any]:
    """Time the permission-changing request with audit, alerts and notifications on and off.

    Runs with no app context pushed. Checks first that the *on* request writes
    an audit event and a notification and the *off* one writes neither, so
    the two differ by exactly the features measured.
    """
    with app.app_context():
        membership, role = _target(world)
    client = signed_in(app, world.members["owner"])
    url = f"/bench/rbac/members/{membership}/roles/{role}"

    def request() -> None:
        response = client.post(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}: "
                               f"{response.get_data(as_text=True)[:300]}")

    def call() -> None:
        # A grant and a removal, so that every sample is the same work: a sample
        # of one request was a grant or a removal, which differ by several
        # statements, and the median of such a mix falls between the two.
        request()
        request()

    def off() -> None:
        with features_off(app):
            call()

    written, statements = {}, {}
    # The client's first request opens its session (a row of its own) and the worker
    # keeps the workspace's reason rule from a change: counted as the timed requests
    # run, not for the twin that happens to go first.
    call()
    for name, fn in (("on", call), ("off", off)):
        before = _counts(app)
        with app.app_context():
            engine = db.engine
        with sql.capture(engine) as seen:
            fn()  # the role given, then taken back
        after = _counts(app)
        written[name] = {k: after[k] - before[k] for k in after}
        statements[name] = len(seen)
    if not (written["on"]["audit_events"] and written["on"]["notifications"]) or any(
            written["off"].values()):
        raise RuntimeError(f"the feature-cost twins do not differ as they should: {written}")
    candidates: dict[str, Callable[[], None]] = {"on": call, "off": off}
    stats = compare(candidates, warmup=effort.warmup, repeat=effort.requests_repeat,
                    budget_s=effort.budget_s, equal_batches=True)
    return {"url": url, "requests_per_sample": 2, "written_per_two_requests": written,
            "statements_per_two_requests": statements, "stats": _stats(stats),
            "on_over_off": ratio(stats["on"], stats["off"])}
