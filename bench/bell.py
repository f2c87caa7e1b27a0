"""``python -m bench.bell``: what the notification bell's unread count adds to a page.

The same page is timed twice in one run, interleaved (:func:`.timing.compare`):
with the bell as shipped (one ``count(*)``, capped at 999, on the
``(membership_id, read_at)`` index), and with the count preset on ``g`` so that the bell renders the same
markup without its query. The member has ``--rows`` notifications, half of
them unread. Prints the medians and their ratio per page, as JSON.

    python -m bench.bell --rows 2000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from typing import Any

import sqlalchemy as sa
from flask import g
from flask_login import FlaskLoginClient

from crm_app import create_app
from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.notify.inbox import unread_count
from tests.conftest import build_world

from .timing import compare, ratio

PAGES = ("/settings/profile", "/")


def _seed(member: Any, rows: int) -> None:
    N = rbac.models.Notification
    now = utcnow()
    db.session.execute(sa.insert(N), [
        {"workspace_id": member.workspace_id, "membership_id": member.id, "category": "roles",
         "event": "bench", "summary": f"Bench notification {i}", "link": "/settings/profile",
         "created_at": now, "read_at": now if i % 2 else None, "mail_state": "skipped",
         "attempts": 0} for i in range(rows)])
    db.session.commit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"TESTING": True, "SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                          "SQLALCHEMY_DATABASE_URI": "sqlite:///" + os.path.join(tmp, "b.db"),
                          "RBAC_MAIL_CONSOLE": False})
        app.test_client_class = FlaskLoginClient
        preset = {"on": False}

        @app.before_request
        def _without_count() -> None:
            if preset["on"]:
                g._rbac_bell = {"count": 0, "capped": False,
                                "href": "/settings/account/notifications"}

        with app.app_context():
            db.create_all()
            world = build_world()
            _seed(world.members["member"], args.rows)
            ws_id = world.ws.id
            client = app.test_client(user=world.users["member"])
        with client.session_transaction() as sess:
            sess[app.config["RBAC_SESSION_KEY"]] = ws_id
        report = {}
        for page in PAGES:
            def with_bell(page: str = page) -> None:
                preset["on"] = False
                assert client.get(page).status_code == 200

            def without(page: str = page) -> None:
                preset["on"] = True
                assert client.get(page).status_code == 200

            stats = compare({"with_bell": with_bell, "without_count": without},
                            equal_batches=True, target_ns=50_000_000, repeat=15)
            report[page] = {"with_bell_ms": round(stats["with_bell"].median_ns / 1e6, 3),
                            "without_count_ms": round(stats["without_count"].median_ns / 1e6, 3),
                            "ratio": ratio(stats["with_bell"], stats["without_count"])}
        with app.app_context():
            member_id = db.session.scalar(sa.select(rbac.models.Membership.id).where(
                rbac.models.Membership.workspace_id == ws_id,
                rbac.models.Membership.user_id == db.session.scalar(
                    sa.select(rbac.user_model.id).where(
                        rbac.user_model.email == "member@example.test"))))
            query = compare({"unread_count": lambda: unread_count(rbac, member_id),
                             "select_1": lambda: db.session.execute(sa.text("select 1"))},
                            repeat=15)
            plan = db.session.execute(sa.text(
                "EXPLAIN QUERY PLAN SELECT count(*) FROM (SELECT id FROM rbac_notification "
                "WHERE membership_id = :m AND read_at IS NULL LIMIT 999)"), {"m": member_id}).all()
    report["count_query"] = {"unread_count_us": round(query["unread_count"].median_ns / 1e3, 1),
                             "select_1_us": round(query["select_1"].median_ns / 1e3, 1),
                             "plan": [str(row[-1]) for row in plan]}
    print(json.dumps({"rows": args.rows, "pages": report}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
