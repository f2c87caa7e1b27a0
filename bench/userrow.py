"""What the user loader's one statement costs PostgreSQL, part by part.

``python -m bench.userrow [--rounds 3000]``

A diagnostic, not a figure (no baseline ratio, no goal, nothing written to
``bench/results``). On the benchmark's world (PostgreSQL, 2,000 leads) it
times, through psycopg with server-side prepared statements and a COMMIT
after each, as a request runs them, interleaved round by round:

* ``hand``: the hand-written page's lookup of the user by their login id;
* ``membership``: that, plus the membership joined to its workspace as one
  JSON array (what any workspace app reads to know the member's status,
  department and plan);
* ``plugin``: the plugin's statement (:func:`crm_rbac_plugin.user_rows.
  user_with_membership`): the membership array with the MFA credential and
  the session record the security checks read;
* ``no_session``: the plugin's statement with the session record's lookup
  taken out.

Each line is the median of ``--rounds`` executions, in microseconds. The
differences tell what figure 3's user statement spends on what the hand
page does not read.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def variants(sql: str, hand: str) -> dict[str, str]:
    """The statements timed, by name, from the plugin's and the hand page's SQL."""
    flat, hand = " ".join(sql.split()), " ".join(hand.split())
    session = re.search(r", \(SELECT json_build_array\(rbac_session\..*?::VARCHAR\)", flat)
    credential = re.search(r", \(SELECT rbac_mfa_credential\.confirmed_at .*?\.user_id\)", flat)
    if session is None or credential is None:
        raise RuntimeError("the plugin's user statement changed shape: update bench/userrow.py")
    membership = flat.replace(session.group(0), "").replace(credential.group(0), "")
    unused = " AND %(sid_hash)s::VARCHAR IS NOT NULL"
    return {"hand": hand + " AND %(workspace_id)s::INTEGER IS NOT NULL" + unused,
            "membership": membership + unused,
            "plugin": flat,
            "no_session": flat.replace(session.group(0), "") + unused}


def run(rounds: int) -> dict[str, float]:
    import sqlalchemy as sa

    from bench import world as world_mod
    from bench.run import database
    from crm_app.extensions import db
    from crm_app.models import User
    from crm_app.rbac_setup import rbac
    from crm_rbac_plugin import user_rows
    from tests.pgserver import PostgresServer

    pg = PostgresServer().start()
    try:
        with database("postgresql", pg) as url:
            app = world_mod.make_app(url)
            sizes = world_mod.Sizes(role_counts=(10,), role_members=100, canonical_roles=10)
            with app.app_context():
                world = world_mod.seed(sizes)
                world_mod.load_leads(world, sizes, 2000)
                member = world.members["all"]
                login_id = db.session.scalar(sa.select(User.session_token).where(
                    User.id == member.user_id))
                dialect = db.engine.dialect
                plugin = user_rows._user_statement(rbac.models, User, User.session_token)[0]
                hand = sa.select(User).where(User.session_token == sa.bindparam("user_id"))
                statements = variants(str(plugin.compile(dialect=dialect)),
                                      str(hand.compile(dialect=dialect)))
                params = {"user_id": login_id, "workspace_id": member.workspace_id,
                          "sid_hash": "0" * 64}
                raw = db.engine.raw_connection()
                try:
                    conn: Any = raw.driver_connection
                    times: dict[str, list[float]] = {name: [] for name in statements}
                    for i in range(rounds + 200):
                        order = list(statements.items())
                        for name, sql in order if i % 2 else reversed(order):
                            cursor = conn.cursor()
                            t0 = time.perf_counter()
                            cursor.execute(sql, params, prepare=True)
                            cursor.fetchall()
                            conn.commit()
                            if i >= 200:  # past the warm-up
                                times[name].append(time.perf_counter() - t0)
                finally:
                    raw.close()
                db.engine.dispose()
            return {name: statistics.median(values) * 1e6 for name, values in times.items()}
    finally:
        pg.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=3000)
    args = parser.parse_args(argv)
    medians = run(args.rounds)
    for name, micros in medians.items():
        print(f"{name:>12}: {micros:7.1f} µs  ({micros - medians['hand']:+6.1f} over hand)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
