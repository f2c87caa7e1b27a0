"""Two notification workers at once send each mail exactly once.

On PostgreSQL, and on SQLite in a database file (two connections, one write
lock). Each worker runs ``send_due`` in its own app context, so with its own
session and connection; sending is slowed so that both are inside the send
at the same moment.
"""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.notify import delivery
from crm_rbac_plugin.roles import assignments
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_notify import role

#: On SQLite, a database file of the module's own (see ``database_url``).
pytestmark = pytest.mark.sqlite_file


def test_two_workers_at_once_send_each_mail_once(app: Flask, world: SimpleNamespace,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    owner = rbac.access_for(world.members["owner"])
    for key in ("viewer", "member", "member2"):
        assignments.assign_role(rbac, owner, world.members[key], role(world, "finance"))
    db.session.commit()
    N = rbac.models.Notification
    queued = db.session.scalar(sa.select(sa.func.count()).select_from(N)
                               .where(N.mail_state == "pending"))
    assert queued >= 3
    sent: list[str] = []
    lock = threading.Lock()

    def slow_send(subject: str, address: str, *args: Any, **kwargs: Any) -> None:
        time.sleep(0.2)
        with lock:
            sent.append(address)

    monkeypatch.setattr(delivery, "send_mail", slow_send)
    barrier = threading.Barrier(2)
    counts: list[int] = []
    errors: list[str] = []

    def worker() -> None:
        with app.app_context():
            barrier.wait()
            try:
                counts.append(delivery.send_due(rbac).sent)
            except Exception as exc:  # noqa: BLE001  (reported below, not lost in a thread)
                errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert sum(counts) == queued, counts  # every row counted once, by one worker
    assert len(sent) == queued, sent  # and mailed once
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(N)
                             .where(N.mail_state == "pending")) == 0
