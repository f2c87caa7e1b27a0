"""Run the benchmark suite: ``python -m bench`` (or ``python bench/run.py``).

Options::

    --quick                     small sizes, a smoke run of a minute or two
    --sizes 10000,100000,1000000
    --backends sqlite,postgresql
    --roles 10,100,1000,10000   role counts of the role-scaling workspaces
    --unowned-hidden            RBAC_UNOWNED_VISIBLE=False (leads without an owner out of scope)
    --no-profile                skip the cProfile pass at the end
    --no-doc                    do not rewrite the results table of docs/benchmarks.md
    --report-only               measure nothing; redraw the chart and table from latest.json

Writes ``bench/results/latest.json``, ``bench/results/latest.png``, the
cProfile reports ``bench/results/profile-*.txt`` and the results table of
``docs/benchmarks.md``. Exits 0 even when a goal fails: the report says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # ``python bench/run.py`` puts bench/ first, not the root
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "bench" / "results"
DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 20_000)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--sizes", help="lead counts, comma-separated (default 10000,100000,"
                                        "1000000; --quick: 2000,20000)")
    parser.add_argument("--backends", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--roles", help="role counts for the role-scaling workspaces "
                                        "(default 10,100,1000,10000; --quick: 10,100,1000)")
    parser.add_argument("--unowned-hidden", action="store_true",
                        help="RBAC_UNOWNED_VISIBLE=False: leads without an owner are out of "
                             "own and department scope (default: visible, the demo's setting)")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile pass")
    parser.add_argument("--no-doc", action="store_true",
                        help="leave the results table of docs/benchmarks.md alone")
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    parser.add_argument("--load", type=float, metavar="SECONDS",
                        help="also run bench/load.py (gunicorn under load) for SECONDS per variant")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: redraw the chart and table from latest.json")
    args = parser.parse_args(argv)
    ints = lambda text: tuple(int(x.replace("_", "")) for x in text.split(",") if x)  # noqa: E731
    args.sizes = ints(args.sizes) if args.sizes else (QUICK_SIZES if args.quick
                                                      else DEFAULT_SIZES)
    args.roles = ints(args.roles) if args.roles else ((10, 100, 1000) if args.quick
                                                      else (10, 100, 1000, 10_000))
    args.backends = tuple(b.strip() for b in args.backends.split(",") if b.strip())
    for b in args.backends:
        if b not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {b!r}")
    if sorted(args.sizes) != list(args.sizes):
        parser.error("--sizes must be increasing (the table grows from one size to the next)")
    return args


@contextmanager
def database(backend: str, pg: Any) -> Iterator[str]:
    """Yield the URL of an empty database, removed afterwards."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="rbac-bench-")
        try:
            yield f"sqlite:///{folder}/bench.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        name = f"rbac_bench_{os.getpid()}"
        url = pg.create_database(name)
        try:
            yield url
        finally:
            pg.drop_database(name)


def machine(pg_version: str | None) -> dict[str, Any]:
    from importlib.metadata import version

    import casbin  # noqa: F401
    import flask
    import sqlalchemy

    return {
        "cpu_count": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlalchemy": sqlalchemy.__version__,
        "flask": flask.__version__,
        "pycasbin": version("pycasbin"),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": pg_version,
    }


def code_state() -> dict[str, Any]:
    """The commit measured, and the files changed since (others work in this tree)."""
    import subprocess

    def git(*cmd: str) -> str:
        try:
            # rstrip only: a porcelain status line starts with a space (" M path").
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                                  timeout=20).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD"),
            "changed_files": [line[3:] for line in git("status", "--porcelain").splitlines()
                              if not line[3:].startswith(("bench/", "docs/benchmarks.md"))]}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_backend(backend: str, url: str, args: argparse.Namespace, sizes_cfg: Any,
                effort: Any, out_dir: Path) -> dict[str, Any]:
    import sqlalchemy as sa

    from bench import figures, policies, profiling
    from bench import world as world_mod
    from crm_app.extensions import db

    app = world_mod.make_app(url, unowned_visible=not args.unowned_hidden)
    result: dict[str, Any] = {"sizes": {}, "roles": {}}
    with app.app_context():
        if backend == "postgresql":
            result["server_version"] = db.session.scalar(sa.text("SHOW server_version"))
        t0 = time.perf_counter()
        world = world_mod.seed(sizes_cfg)
        result["seed_s"] = round(time.perf_counter() - t0, 2)
        log(f"{backend}: seeded users, workspaces and roles in {result['seed_s']} s")
        crm_members = [world.members[k] for k in ("owner", "own", "department", "all")]
    canonical = sizes_cfg.canonical_roles
    fields_at = min(args.sizes, key=lambda s: abs(math.log(s / 100_000)))  # as goal 3
    for size in args.sizes:
        entry: dict[str, Any] = {"load_average_1min": round(os.getloadavg()[0], 2)}
        with app.app_context():
            entry["load_s"] = round(world_mod.load_leads(world, sizes_cfg, size), 2)
            entry["lead_rows"] = world_mod.lead_count()
            log(f"{backend} {size:,} leads: loaded and analysed in {entry['load_s']} s")
            entry["decision"] = figures.decisions(app, world, world.members["own"], effort,
                                                  workspace_members=crm_members)
            log(f"{backend} {size:,}: figure 1 done")
            entry["list"] = figures.list_queries(world, effort, explain=True)
            log(f"{backend} {size:,}: figure 2 done")
            rw = world.role_workspaces[canonical]
            entry["resolution"] = figures.resolution(app, rw.stacked, rw.single, effort)
            db.session.rollback()
            db.session.remove()
        entry["request"] = figures.guarded_requests(app, world, effort)
        policies.with_policies(app, world, effort, entry["request"])
        log(f"{backend} {size:,}: figures 3 and 4 done")
        if size == fields_at:
            entry["hidden_field"] = figures.hidden_field_requests(app, world, effort)
            with app.app_context():
                entry["edit"] = figures.guarded_edit(world, effort)
                db.session.remove()
            log(f"{backend} {size:,}: figure 6 done")
        result["sizes"][str(size)] = entry
    with app.app_context():
        for count, rw in world.role_workspaces.items():
            enforcers = figures.build_casbin(rw.workspace_id,
                                             {rw.stacked.user_id, rw.single.user_id})
            result["roles"][str(count)] = {
                "roles": rw.roles,
                "decision": figures.decisions(app, world, rw.stacked, effort,
                                              workspace_members=[rw.stacked, rw.single],
                                              enforcers=enforcers,
                                              agreement_resource="leads"),
                "resolution": figures.resolution(app, rw.stacked, rw.single, effort),
            }
            db.session.rollback()
            log(f"{backend}: {count:,} roles done")
        db.session.remove()
    if not args.no_profile:
        result["profile"] = profiling.profile_hot_paths(app, world, backend, out_dir, canonical)
        log(f"{backend}: profiles written")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return result


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: stop PostgreSQL, remove files


def main(argv: list[str] | None = None) -> int:
    import signal

    signal.signal(signal.SIGTERM, _stop)
    args = parse_args(argv)
    from bench import report
    from bench.figures import Effort
    from bench.world import Sizes

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = None if args.no_doc else ROOT / "docs" / "benchmarks.md"
    if args.report_only:
        data = report.rerender(out_dir, doc)
        _print_goals(data)
        return 0
    if args.quick:
        sizes_cfg = Sizes(role_counts=args.roles, role_members=1000,
                          canonical_roles=1000 if 1000 in args.roles else max(args.roles))
        effort = Effort(repeat=7, warmup=3, budget_s=4.0, requests_repeat=15)
    else:
        sizes_cfg = Sizes(role_counts=args.roles,
                          canonical_roles=1000 if 1000 in args.roles else max(args.roles))
        effort = Effort()
    started = time.perf_counter()
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    data: dict[str, Any] = {
        "meta": {
            "command": command.strip(),
            "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "quick": args.quick,
            "backends": list(args.backends),
            "sizes": {"leads": list(args.sizes), "role_counts": list(args.roles),
                      "canonical_roles": sizes_cfg.canonical_roles,
                      "role_workspace_members": sizes_cfg.role_members,
                      "crm_members": sizes_cfg.crm_members,
                      "departments": sizes_cfg.departments,
                      "grants_per_role": sizes_cfg.grants_per_role,
                      "list_page": 50, "request_page": 25},
            "effort": vars(effort),
            "config": {"RBAC_UNOWNED_VISIBLE": not args.unowned_hidden},
            "code": code_state(),
            "load_average_start": [round(x, 2) for x in os.getloadavg()],
        },
        "backends": {},
    }
    pg = None
    pg_version = None
    try:
        if "postgresql" in args.backends:
            from tests.pgserver import PostgresServer

            log("starting a throwaway PostgreSQL server")
            pg = PostgresServer().start()
        for backend in args.backends:
            log(f"=== {backend} ===")
            with database(backend, pg) as url:
                data["backends"][backend] = run_backend(backend, url, args, sizes_cfg, effort,
                                                        out_dir)
            pg_version = data["backends"][backend].get("server_version", pg_version)
    finally:
        if pg is not None:
            pg.stop()
    if args.load:
        from bench import load

        data["load"] = load.measure(duration=args.load, out_dir=out_dir)
    data["meta"]["machine"] = machine(pg_version)
    data["meta"]["duration_s"] = round(time.perf_counter() - started, 1)
    data["meta"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    report.finish(data, out_dir, doc)
    log(f"done in {data['meta']['duration_s']} s: {out_dir / 'latest.json'}")
    _print_goals(data)
    return 0


def _print_goals(data: dict[str, Any]) -> None:
    from bench import report

    for goal in data["goals"]:
        print(f"  {report.verdict(goal).upper():7s}  {goal['figure']} {goal['backend']}: "
              f"{goal['goal']} -> {goal['measured']}")


if __name__ == "__main__":
    raise SystemExit(main())
