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
    --only request,sparse,rls,costs
                                run only these sections (default: all of them):
                                decision (1), list (2), rls (2r, PostgreSQL), resolution (4),
                                request (3, 3*, 3p), fields (6), roles (1 and 4 by role
                                count), costs (7: the permission change), sparse (2s),
                                audit (7c: audit filters, PostgreSQL), instructions (3i:
                                figure 3*'s instructions by callgrind), workers (3w:
                                figure 3*'s pages in a worker process per version), profile
    --audit-events 10000000     size of the audit trail of section audit (--quick: 20000)
    --merge                     merge the sections measured into the existing latest.json
                                (a run split into several commands gives one report)
    --budget 20                 seconds after which a comparison stops at its minimum of
                                rounds (default 20; --quick: 4): bounds a run's length

Writes ``bench/results/latest.json``, ``bench/results/latest.png``, one
``bench/results/<figure>.json`` and ``<figure>.png`` per figure, the
cProfile reports ``bench/results/profile-*.txt`` and the results section of
``docs/benchmarks.md``. Exits 0 even when a goal fails: the report says so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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
SECTIONS = ("decision", "list", "rls", "resolution", "request", "instructions", "workers",
            "fields", "roles", "costs", "sparse", "audit", "profile")
AUDIT_EVENTS = 10_000_000


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
    parser.add_argument("--only", help="comma-separated sections to run (default: all): "
                                       + ", ".join(SECTIONS))
    parser.add_argument("--audit-events", type=int,
                        help=f"audit events of section audit (default {AUDIT_EVENTS:,}; "
                             "--quick: 20000)")
    parser.add_argument("--merge", action="store_true",
                        help="merge what is measured into the existing latest.json")
    parser.add_argument("--budget", type=float,
                        help="seconds per comparison before it stops at its minimum of rounds "
                             "(default 20; --quick: 4)")
    args = parser.parse_args(argv)
    args.only = (frozenset(x.strip() for x in args.only.split(",") if x.strip())
                 if args.only else frozenset(SECTIONS))
    for section in args.only - set(SECTIONS):
        parser.error(f"unknown section {section!r} (one of {', '.join(SECTIONS)})")
    if args.audit_events is None:
        args.audit_events = 20_000 if args.quick else AUDIT_EVENTS
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
def database(backend: str, pg: Any, suffix: str = "") -> Iterator[str]:
    """Yield the URL of an empty database, removed afterwards."""
    if backend == "sqlite":
        folder = tempfile.mkdtemp(prefix="rbac-bench-")
        try:
            yield f"sqlite:///{folder}/bench.db"
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:
        name = f"rbac_bench_{os.getpid()}{suffix}"
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
    """The figures of the uniform world on one backend, size by size (``args.only``)."""
    import sqlalchemy as sa

    from bench import costs, figures, instructions, policies, profiling, rls, workers
    from bench import world as world_mod
    from crm_app.extensions import db

    want = args.only.__contains__
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
    rls_on = want("rls") and backend == "postgresql"
    for size in args.sizes:
        entry: dict[str, Any] = {"load_average_1min": round(os.getloadavg()[0], 2)}
        with app.app_context():
            entry["load_s"] = round(world_mod.load_leads(world, sizes_cfg, size), 2)
            entry["lead_rows"] = world_mod.lead_count()
            log(f"{backend} {size:,} leads: loaded and analysed in {entry['load_s']} s")
            if rls_on and size == args.sizes[0]:
                db.session.rollback()
                with db.engine.begin() as conn:
                    rls.install(conn, unowned_visible=not args.unowned_hidden)
            if want("decision"):
                entry["decision"] = figures.decisions(app, world, world.members["own"],
                                                      effort, workspace_members=crm_members)
                log(f"{backend} {size:,}: figure 1 done")
            if want("list"):
                entry["list"] = figures.list_queries(world, effort, explain=True)
                log(f"{backend} {size:,}: figure 2 done")
            if rls_on:
                entry["rls"] = rls.rls_pages(world, effort)
                log(f"{backend} {size:,}: figure 2r (RLS) done")
            if want("resolution"):
                rw = world.role_workspaces[canonical]
                entry["resolution"] = figures.resolution(app, rw.stacked, rw.single, effort)
            db.session.rollback()
            db.session.remove()
        if want("request"):
            entry["request"] = figures.guarded_requests(app, world, effort)
            policies.with_policies(app, world, effort, entry["request"])
            log(f"{backend} {size:,}: figures 3 and 3p done")
        if want("instructions"):
            # On PostgreSQL the count is of the app's process alone, not the server's.
            entry["instructions"] = instructions.per_request(
                url, world, unowned_visible=not args.unowned_hidden)
            log(f"{backend} {size:,}: figure 3i done")
        if want("workers"):
            entry["workers"] = workers.per_worker(url, world,
                                                  unowned_visible=not args.unowned_hidden)
            log(f"{backend} {size:,}: figure 3w done")
        if size == fields_at and want("fields"):
            entry["hidden_field"] = figures.hidden_field_requests(app, world, effort)
            with app.app_context():
                entry["edit"] = figures.guarded_edit(world, effort)
                db.session.remove()
            log(f"{backend} {size:,}: figure 6 done")
        if size == fields_at and want("costs"):
            entry["permission_change"] = costs.permission_change(app, world, effort)
            log(f"{backend} {size:,}: figure 7 (permission change) done")
        result["sizes"][str(size)] = entry
    if want("roles"):
        result["roles"] = role_figures(app, world, effort)
    if want("profile") and not args.no_profile:
        result["profile"] = profiling.profile_hot_paths(app, world, backend, out_dir, canonical)
        log(f"{backend}: profiles written")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    return result


def role_figures(app: Any, world: Any, effort: Any) -> dict[str, Any]:
    """Figures 1 and 4 in the role-heavy workspaces, by role count."""
    from bench import figures
    from crm_app.extensions import db

    out: dict[str, Any] = {}
    with app.app_context():
        for count, rw in world.role_workspaces.items():
            enforcers = figures.build_casbin(rw.workspace_id,
                                             {rw.stacked.user_id, rw.single.user_id})
            out[str(count)] = {
                "roles": rw.roles,
                "decision": figures.decisions(app, world, rw.stacked, effort,
                                              workspace_members=[rw.stacked, rw.single],
                                              enforcers=enforcers,
                                              agreement_resource="leads"),
                "resolution": figures.resolution(app, rw.stacked, rw.single, effort),
            }
            db.session.rollback()
            log(f"{count:,} roles done")
        db.session.remove()
    return out


def run_sparse(backend: str, url: str, args: argparse.Namespace, effort: Any
               ) -> dict[str, Any]:
    """The sparse worlds (:mod:`bench.sparse`) on their own database, size by size."""
    from bench import sparse
    from bench import world as world_mod
    from crm_app.extensions import db

    app = world_mod.make_app(url, unowned_visible=not args.unowned_hidden)
    out: dict[str, Any] = {}
    with app.app_context():
        built = sparse.seed_sparse()
        for size in args.sizes:
            t0 = time.perf_counter()
            sparse.load_sparse_leads(built, size)
            rows = world_mod.lead_count()
            load_s = round(time.perf_counter() - t0, 2)
            log(f"{backend} sparse {size:,} leads: loaded in {load_s} s")
            out[str(size)] = {"load_s": load_s, "lead_rows": rows,
                              "pages": sparse.sparse_pages(app, built, effort)}
            log(f"{backend} sparse {size:,}: figure 2s done")
        db.session.remove()
        db.engine.dispose()
    return out


def run_audit(url: str, events: int) -> dict[str, Any]:
    """The audit page's filters on a trail of ``events`` events (PostgreSQL)."""
    from bench import audittrail
    from bench import world as world_mod
    from crm_app.extensions import db

    app = world_mod.make_app(url)
    with app.app_context():
        db.create_all()
        t0 = time.perf_counter()
        audittrail.load_trail(events)
        load_s = round(time.perf_counter() - t0, 2)
        log(f"postgresql audit trail of {events:,} events: loaded in {load_s} s")
        out = {"events": events, "load_s": load_s, "filters": audittrail.filter_plans(events)}
        db.session.remove()
        db.engine.dispose()
    return out


def run_one(backend: str, pg: Any, args: argparse.Namespace, sizes_cfg: Any, effort: Any,
            out_dir: Path) -> dict[str, Any]:
    """Every section asked for on one backend, each world on a database of its own."""
    uniform = {"decision", "list", "rls", "resolution", "request", "instructions", "workers",
               "fields", "roles", "costs", "profile"}
    result: dict[str, Any] = {"sizes": {}, "roles": {}}
    if args.only & uniform:
        with database(backend, pg) as url:
            result = run_backend(backend, url, args, sizes_cfg, effort, out_dir)
    if "sparse" in args.only:
        with database(backend, pg, "_sparse") as url:
            result["sparse"] = run_sparse(backend, url, args, effort)
    if "audit" in args.only and backend == "postgresql":
        with database(backend, pg, "_audit") as url:
            result["audit"] = run_audit(url, args.audit_events)
    if backend == "postgresql" and "server_version" not in result:
        import sqlalchemy as sa

        with database(backend, pg, "_version") as url:
            engine = sa.create_engine(url)
            with engine.connect() as conn:
                result["server_version"] = conn.scalar(sa.text("SHOW server_version"))
            engine.dispose()
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
    if args.budget is not None:
        effort.budget_s = args.budget
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
            "sections": sorted(args.only),
            "audit_events": args.audit_events if "audit" in args.only else None,
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
            data["backends"][backend] = run_one(backend, pg, args, sizes_cfg, effort, out_dir)
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
    if args.merge and (out_dir / "latest.json").exists():
        data = report.merge(json.loads((out_dir / "latest.json").read_text()), data)
    report.finish(data, out_dir, doc)
    log(f"done in {data['meta']['duration_s']} s: {out_dir / 'latest.json'}")
    _print_goals(data)
    return 0


def _print_goals(data: dict[str, Any]) -> None:
    from bench import report

    for goal in data["goals"]:
        where = f" ({goal['where']})" if goal["where"] else ""
        print(f"  {report.verdict(goal).upper():7s}  {goal['figure']} {goal['backend']}: "
              f"{goal['goal']} -> {goal['measured']}{where}")
    print(f"  figures: {', '.join(data.get('figures', []))}")


if __name__ == "__main__":
    raise SystemExit(main())
