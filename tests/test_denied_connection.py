"""A refused write is audited once, after its rollback, on the connection the request used.

The request's transaction is rolled back before the refusal is stored, so
the refusal's own session takes the connection the request gave back: a
worker serving a refused write holds one database connection, not two.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac


@contextmanager
def peak_connections(engine: sa.Engine) -> Iterator[list[int]]:
    """The most pool connections checked out at once inside the block (``peak[0]``)."""
    out, peak = [0], [0]

    def checkout(*args: Any) -> None:
        out[0] += 1
        peak[0] = max(peak[0], out[0])

    def checkin(*args: Any) -> None:
        out[0] -= 1

    sa.event.listen(engine, "checkout", checkout)
    sa.event.listen(engine, "checkin", checkin)
    try:
        yield peak
    finally:
        sa.event.remove(engine, "checkout", checkout)
        sa.event.remove(engine, "checkin", checkin)


def denied_events() -> list[Any]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A).where(A.action == "access.denied")
                                   .order_by(A.id)))


@pytest.mark.parametrize("alerts", [False, True])
def test_a_refused_write_is_audited_once_and_survives_its_rollback(
        app: Flask, world: SimpleNamespace, login: Any, backend: str, alerts: bool) -> None:
    app.config["RBAC_ALERTS"] = alerts
    junior = login(world.users["junior_rep"], world.ws)
    own = world.leads["junior_rep"]
    lead_id, path = own.id, f"/leads/{own.id}/delete"
    before = len(denied_events())
    db.session.commit()  # the test's own session gives its connection back
    with peak_connections(db.engine) as peak:
        assert junior.post(path).status_code == 403
    refusals = denied_events()[before:]
    assert [(e.resource, e.detail["action"], e.detail["path"]) for e in refusals] == [
        ("leads", "delete", path)]
    with rbac.system():
        assert db.session.get(Lead, lead_id) is not None  # the refused delete rolled back
    # The refusal takes the connection the rolled back request gave back, and the
    # alert rules read their thresholds through the refusal's session.
    assert peak[0] == 1
