"""``python -m bench.alerts``: what the alert rules add to an audited write (a few seconds).

One member's audited write, an export of 10 rows (one ``export`` audit
event) committed through the app's session, is timed with the rules on and
off (``RBAC_ALERTS``), interleaved in the same run: wall-clock medians
(:func:`.timing.compare`) and this thread's CPU time per call (steadier on a
shared machine), in two workspaces' settings:

* *default*: the default thresholds (no business hours): the thresholds read
  and the export counter's upsert;
* *off_hours*: business days that exclude today, so every event is also
  outside business hours: a second counter upsert, the worst case of one event.

Reading pages runs no rule (the listener acts on a flush that writes audit
events), so figure 3 of the main suite is unchanged; this measures the write
path, which pays the counters. Prints the medians and the on/off ratios::

    python -m bench.alerts                       # SQLite in memory
    python -m bench.alerts --url postgresql://...  # an empty PostgreSQL database
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.alerts",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="sqlite://", help="database URL (default: SQLite "
                                                           "in memory); its tables are created")
    parser.add_argument("--budget", type=float, default=2.0,
                        help="seconds per comparison (default 2)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser.parse_args(argv)


def _setup(url: str) -> tuple[Any, Any, Callable[[bool], None]]:
    """The demo app on ``url`` with one workspace, and the write to time."""
    import sqlalchemy as sa

    from crm_app import create_app
    from crm_app.extensions import db
    from crm_app.models import User
    from crm_app.rbac_setup import rbac
    from crm_rbac_plugin import workspaces

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
                      "WTF_CSRF_ENABLED": False, "RBAC_REGISTER_BLUEPRINTS": False})
    ctx = app.app_context()
    ctx.push()
    db.create_all()
    owner, member = User(email="owner@bench.test", name="Owner"), User(
        email="member@bench.test", name="Member")
    db.session.add_all([owner, member])
    db.session.flush()
    ws = workspaces.create_workspace(rbac, "Bench", owner=owner, slug="bench")
    membership = workspaces.add_member(rbac, ws, member, ["member"])
    db.session.commit()
    access = rbac.access_for(membership)

    def write(alerts_on: bool) -> None:
        app.config["RBAC_ALERTS"] = alerts_on
        with rbac.as_member(access):
            rbac.audit_export("leads", {ws.id: 10}, target="leads (10 rows)")
            db.session.commit()

    M = rbac.models.Membership
    owner_membership = db.session.scalar(sa.select(M).where(M.workspace_id == ws.id,
                                                           M.user_id == owner.id))
    return app, rbac.access_for(owner_membership), write


def measure(url: str, budget_s: float) -> dict[str, Any]:
    """Time the write with the rules on and off, in both settings; return the figures."""
    from crm_app.extensions import db
    from crm_app.rbac_setup import rbac
    from crm_rbac_plugin import alerts

    from .timing import compare, ratio

    _app, owner, write = _setup(url)
    out: dict[str, Any] = {"url": url.split("@")[-1], "write": "export audit event + commit"}
    not_today = [alerts.thresholds.DAY_NAMES[(dt.datetime.now(dt.UTC).weekday() + 3) % 7]]
    for name, changes in (("default", {}), ("off_hours", {"business_days": not_today})):
        if changes:
            alerts.save(rbac, owner, changes)
            db.session.commit()
        stats = compare({"alerts_on": lambda: write(True), "alerts_off": lambda: write(False)},
                        warmup=3, repeat=9, min_repeat=3, budget_s=budget_s,
                        equal_batches=True)
        cpu = cpu_medians({"on": lambda: write(True), "off": lambda: write(False)})
        out[name] = {"on_us": round(stats["alerts_on"].median_ns / 1000, 1),
                     "off_us": round(stats["alerts_off"].median_ns / 1000, 1),
                     "ratio": ratio(stats["alerts_on"], stats["alerts_off"]),
                     "samples": stats["alerts_on"].samples,
                     "cpu_on_us": round(cpu["on"] / 1000, 1),
                     "cpu_off_us": round(cpu["off"] / 1000, 1),
                     "cpu_ratio": round(cpu["on"] / cpu["off"], 3)}
    return out


def cpu_medians(candidates: dict[str, Callable[[], None]], rounds: int = 15,
                batch: int = 40) -> dict[str, float]:
    """Median CPU time per call (this thread's, in ns) of each candidate, interleaved.

    Wall-clock medians swing with whatever else the machine runs; the CPU time
    the thread itself spends does not, so its ratio is the steadier figure on
    a shared machine.
    """
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    names = list(candidates)
    for round_no in range(rounds):
        order = names[round_no % len(names):] + names[:round_no % len(names)]
        for name in order:
            start = time.thread_time_ns()
            for _ in range(batch):
                candidates[name]()
            samples[name].append((time.thread_time_ns() - start) / batch)
    return {name: statistics.median(values) for name, values in samples.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args.url, args.budget)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"Audited write ({result['write']}) on {result['url']}, alert rules on vs off:")
    for name in ("default", "off_hours"):
        r = result[name]
        print(f"  {name:10} wall: on {r['on_us']:8.1f} us  off {r['off_us']:8.1f} us  "
              f"ratio {r['ratio']:.3f} ({r['samples']} samples)   "
              f"cpu: on {r['cpu_on_us']:8.1f} us  off {r['cpu_off_us']:8.1f} us  "
              f"ratio {r['cpu_ratio']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
