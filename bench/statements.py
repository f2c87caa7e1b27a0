"""Where a request of figure 3 spends its database time, statement by statement.

``python -m bench.statements [--backend postgresql] [--leads 100000] [--requests 400]``

Builds the benchmark's world, then requests each page of figure 3 (plugin,
plain: the plugin off, handwritten: off + hand-written WHERE) ``--requests`` times and prints, per
request: the wall time, and for each SQL statement the time from
``before_cursor_execute`` to ``after_cursor_execute`` (sending it, the
server's parse, plan and run, and the wait for the result; on PostgreSQL the
first statement of a request also carries the transaction's BEGIN). Then
the cost of generating SQLAlchemy's cache key for the list statement with
and without the member's criteria.

A diagnostic, not a figure: no baseline ratio, no goal, nothing written to
``bench/results``. It tells which statement a gap of figure 3 comes from.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _top_level(flat: str, keyword: str) -> str | None:
    """The text after ``keyword`` outside any parentheses (not a subquery's), or None."""
    depth = 0
    for i, ch in enumerate(flat):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and flat.startswith(keyword, i):
            return flat[i + len(keyword):]
    return None


def _label(statement: str) -> str:
    """A short name: the first table and the start of the WHERE clause."""
    flat = " ".join(statement.split())
    after_from = _top_level(flat, " FROM ")
    table = after_from.split(" ", 1)[0] if after_from else flat[:30]
    where = _top_level(flat, " WHERE ")
    return f"{table}: {where[:70] if where else '(no WHERE)'}"


def run(backend: str, leads: int, requests: int) -> None:
    import sqlalchemy as sa
    from sqlalchemy import event

    from bench import world as world_mod
    from bench.figures import request_pages, signed_in
    from bench.run import database
    from crm_app.extensions import db
    from crm_app.models import Lead
    from crm_app.rbac_setup import rbac
    from crm_rbac_plugin import listener

    pg = None
    if backend == "postgresql":
        from tests.pgserver import PostgresServer

        pg = PostgresServer().start()
    try:
        with database(backend, pg) as url:
            app = world_mod.make_app(url)
            sizes = world_mod.Sizes(role_counts=(10,), role_members=100, canonical_roles=10)
            with app.app_context():
                world = world_mod.seed(sizes)
                world_mod.load_leads(world, sizes, leads)
                engine = db.engine
            timings: dict[str, list[tuple[str, float]]] = defaultdict(list)
            current = {"url": "", "t0": 0.0}

            def before(*args: Any) -> None:
                current["t0"] = time.perf_counter()

            def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
                timings[current["url"]].append((_label(statement),
                                                time.perf_counter() - current["t0"]))

            event.listen(engine, "before_cursor_execute", before)
            event.listen(engine, "after_cursor_execute", after)
            for scope in ("own", "all"):
                client = signed_in(app, world.members[scope])
                pages = request_pages(app, world.members[scope], scope)
                runs = [(page, version, url) for page, urls in pages.items()
                        for version, url in urls.items()]
                for page, version, url in runs:
                    current["url"] = ""
                    for _ in range(50):
                        client.get(url)
                    key = f"{scope} {page} {version}"
                    current["url"] = key
                    t0 = time.perf_counter()
                    for _ in range(requests):
                        client.get(url)
                    wall = (time.perf_counter() - t0) / requests * 1e6
                    per: dict[str, list[float]] = defaultdict(list)
                    for label, seconds in timings[key]:
                        per[label].append(seconds)
                    print(f"{key}: {wall:,.0f} µs a request")
                    for label, values in per.items():
                        print(f"    {len(values) / requests:.0f}x {sum(values) / len(values) * 1e6:7.1f} µs"
                              f"  {label}")
            event.remove(engine, "before_cursor_execute", before)
            event.remove(engine, "after_cursor_execute", after)

            with app.app_context():
                access = rbac.access_for(world.members["own"].membership_id)
                options = listener.options(rbac, access, "view", Lead, [rbac.registry.get("leads")])

                def page() -> Any:
                    return sa.select(Lead).order_by(Lead.id.desc()).limit(25)

                for name, build in (("plain", page),
                                    ("with the own-scope criteria",
                                     lambda: page().options(*options))):
                    number = 5000
                    t0 = time.perf_counter()
                    for _ in range(number):
                        build()._generate_cache_key()
                    print(f"cache key of the list statement, {name}: "
                          f"{(time.perf_counter() - t0) / number * 1e6:.1f} µs")
                db.session.remove()
                db.engine.dispose()
    finally:
        if pg is not None:
            pg.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.statements",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--backend", default="postgresql", choices=("sqlite", "postgresql"))
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args(argv)
    run(args.backend, args.leads, args.requests)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
