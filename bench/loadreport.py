"""The numbers of the load run (``bench/load.py``): summary, goals, chart and markdown.

:func:`summarise` turns the client's tallies, the judge's verdicts and the
connection samples into the result written to ``load.json``; :func:`goals`
gives them in the shape of ``bench/report.py``'s goals table, and
:func:`markdown` renders the result for docs/benchmarks.md.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

VARIANTS = ("plugin", "hand")
OPS = ("list", "detail", "create", "edit", "export")
#: gunicorn's access log line: phase label, method, path, status, microseconds spent.
ACCESS_FORMAT = "%({x-load-phase}i)s %(m)s %(U)s %(s)s %(D)s"
_PAGE = re.compile(r"^/load/(?:rbac|hand)/leads(?P<csv>\.csv)?(?P<id>/\d+)?$")


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of ``values``, in their unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))]


def variant_summary(tally: Any, peak: int) -> dict[str, Any]:
    every = [x for op in OPS for x in tally.latencies[op]]
    count = len(every)
    return {
        "requests": count,
        "seconds": round(tally.seconds, 2),
        "throughput_rps": round(count / tally.seconds, 1) if tally.seconds else 0.0,
        "p50_ms": round(percentile(every, 0.50), 2),
        "p95_ms": round(percentile(every, 0.95), 2),
        "p99_ms": round(percentile(every, 0.99), 2),
        "errors": dict(sorted(tally.errors.items())),
        "error_count": sum(tally.errors.values()),
        "peak_db_connections": peak,
        "by_op": {op: {"requests": len(tally.latencies[op]),
                       "p50_ms": round(percentile(tally.latencies[op], 0.50), 2),
                       "p95_ms": round(percentile(tally.latencies[op], 0.95), 2)}
                  for op in OPS},
    }


def summarise(raw: dict[str, Any], peaks: dict[str, int], samples: int) -> dict[str, Any]:
    """Turn the tallies, verdicts and changes into the result (see the module docstring)."""
    variants = {v: variant_summary(raw["tallies"][v], peaks.get(f"load-{v}", 0)) for v in VARIANTS}
    plugin, hand = variants["plugin"], variants["hand"]
    ratios = {"throughput": round(plugin["throughput_rps"] / hand["throughput_rps"], 3)
              if hand["throughput_rps"] else None,
              "p95": round(plugin["p95_ms"] / hand["p95_ms"], 3) if hand["p95_ms"] else None}
    ratios["throughput_without_changes"] = _quiet_ratio(raw.get("phases", []))
    verdicts = raw["verdicts"]
    first = min(c.sent for c in raw["changes"].values())
    staleness = {
        "changes": [{"kind": c.kind, "status": c.status,
                     "committed_after_s": round(c.committed - c.sent, 4),
                     "stale_answers": verdicts.stale[c.kind],
                     "detail_probes_after": verdicts.exercised[c.kind],
                     "pages_after": verdicts.pages_after[c.kind],
                     "first_check_after_ms": None if verdicts.first_after_s[c.kind] is None
                     else round(verdicts.first_after_s[c.kind] * 1000, 1)}
                    for c in raw["changes"].values()],
        "stale_total": sum(verdicts.stale.values()),
        "answers_checked": verdicts.checked,
        "wrong_answers": verdicts.wrong,
        "first_change_sent": first != float("inf"),
    }
    result = {"variants": variants, "ratios": ratios, "staleness": staleness,
              "phases": raw["phases"],
              "same_rows_differ": raw["same_rows_differ"],
              "connection_samples": samples, "peak_db_connections": peaks}
    result["goals"] = goals(result)
    return result


def _quiet_ratio(phases: list[dict[str, Any]]) -> float | None:
    """Throughput of the plugin's phases without the changes over the hand phases'.

    Context for the main ratio: the phase of the changes also carries the
    API requests that make them, the refusals the role probe then gets
    (each written to the audit trail) and every worker's re-resolution of
    the members' access.
    """
    def rate(chosen: list[dict[str, Any]]) -> float:
        seconds = sum(p["seconds"] for p in chosen)
        return sum(p["requests"] for p in chosen) / seconds if seconds else 0.0

    quiet = rate([p for p in phases if p["variant"] == "plugin" and not p["changes"]])
    hand = rate([p for p in phases if p["variant"] == "hand"])
    return round(quiet / hand, 3) if quiet and hand else None


def goal_line(goal: str, measured: str, passed: bool | None) -> dict[str, Any]:
    """One line of the goals table; ``passed=None`` marks a context line, not a goal."""
    return {"figure": "load", "backend": "postgresql", "goal": goal, "measured": measured,
            "where": "gunicorn", "passed": passed}


def goals(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's goals, in the shape of ``bench/report.py``'s goals table."""
    v, r, st = result["variants"], result["ratios"], result["staleness"]
    errors = sum(x["error_count"] for x in v.values())
    throughput, p95 = r["throughput"], r["p95"]
    probes = sum(c["detail_probes_after"] + c["pages_after"] for c in st["changes"])
    return [
        goal_line("throughput plugin / hand >= 0.9", f"{throughput}x",
              throughput is not None and throughput >= 0.9),
        goal_line("p95 plugin / hand <= 1.15", f"{p95}x", p95 is not None and p95 <= 1.15),
        goal_line("throughput plugin / hand, phases without the changes (context)",
                  f"{r['throughput_without_changes']}x", None),
        goal_line("errors = 0", f"{errors} ({v['plugin']['error_count']} plugin, "
              f"{v['hand']['error_count']} hand)", errors == 0),
        goal_line("stale answers after a change = 0",
              f"{st['stale_total']} of {probes} probes after the commits",
              st["stale_total"] == 0),
        goal_line("both variants answer the same rows", f"{result['same_rows_differ']} pages differ",
              result["same_rows_differ"] == 0),
        goal_line("database connections (context)",
              ", ".join(f"{k or 'other'}: {n}" for k, n in sorted(result["peak_db_connections"].items())),
              None),
    ]


def draw(result: dict[str, Any], path: Path) -> None:
    """Throughput and latency quantiles of both variants, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    v = result["variants"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.bar(VARIANTS, [v[x]["throughput_rps"] for x in VARIANTS], color=["#3b6ea5", "#999"])
    left.set_ylabel("requests / s")
    left.set_title(f"Throughput ({result['ratios']['throughput']}x)")
    width = 0.38
    for k, variant in enumerate(VARIANTS):
        quantiles = [v[variant][f"p{q}_ms"] for q in (50, 95, 99)]
        right.bar([i + (k - 0.5) * width for i in range(3)], quantiles, width, label=variant,
                  color=["#3b6ea5", "#999"][k])
    right.set_xticks(range(3), ["p50", "p95", "p99"])
    right.set_ylabel("ms")
    right.set_title(f"Latency (p95 {result['ratios']['p95']}x)")
    right.legend()
    meta = result.get("meta", {})
    fig.suptitle(f"{meta.get('members')} members, gunicorn {meta.get('workers')} workers x 2, "
                 f"PostgreSQL, {meta.get('duration_s')} s per variant")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(result: dict[str, Any]) -> str:
    """The results of the load run as a docs/benchmarks.md section body."""
    v, meta = result["variants"], result.get("meta", {})
    lines = [f"`{meta.get('command', 'python -m bench.load')}`: {meta.get('members')} signed-in "
             f"members, gunicorn with {meta.get('workers')} sync workers per variant on "
             f"PostgreSQL {meta.get('postgresql', '')}, phases {' / '.join(meta.get('phases', []))}"
             f", {meta.get('duration_s')} s per variant.", "",
             "| variant | req/s | p50 ms | p95 ms | p99 ms | errors | peak DB connections |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name in VARIANTS:
        x = v[name]
        lines.append(f"| {name} | {x['throughput_rps']} | {x['p50_ms']} | {x['p95_ms']} | "
                     f"{x['p99_ms']} | {x['error_count']} | {x['peak_db_connections']} |")
    if "server" in v["plugin"]:
        lines += ["", "Time a worker spent per request (the access log; no queueing), mean ms:",
                  "", "| variant | all | " + " | ".join(OPS) + " |",
                  "|---|---:|" + "---:|" * len(OPS)]
        for name in VARIANTS:
            server = v[name]["server"]
            lines.append(f"| {name} | {server['mean_ms']} | " + " | ".join(
                str(server["by_op"][op]["mean_ms"]) for op in OPS) + " |")
    lines += ["", "| phase | variant | req/s | p50 ms | p95 ms | errors |",
              "|---:|---|---:|---:|---:|---:|"]
    for number, phase in enumerate(result.get("phases", []), 1):
        changes = " (the two changes)" if phase["changes"] else ""
        lines.append(f"| {number} | {phase['variant']}{changes} | {phase['throughput_rps']} | "
                     f"{phase['p50_ms']} | {phase['p95_ms']} | {phase['error_count']} |")
    lines += ["", "| goal | measured | verdict |", "|---|---|---|"]
    for g in result["goals"]:
        verdict = "context" if g["passed"] is None else "pass" if g["passed"] else "FAIL"
        lines.append(f"| {g['goal']} | {g['measured']} | {verdict} |")
    lines.append("")
    for c in result["staleness"]["changes"]:
        lines.append(f"- {c['kind']} change: {c['stale_answers']} stale answers; "
                     f"{c['detail_probes_after']} detail probes and {c['pages_after']} pages "
                     f"of affected members started after its commit, the first "
                     f"{c['first_check_after_ms']} ms after it.")
    return "\n".join(lines) + "\n"


def server_times(access_log: Path) -> dict[str, Any]:
    """Time the server spent per measured request, per operation, from its access log.

    The client's latency includes waiting for a free worker (50 members, 4
    workers); this is the time a worker spent on the request alone, the
    closest measure of what each page costs.
    """
    per_op: dict[str, list[float]] = {op: [] for op in OPS}
    per_phase: dict[str, list[float]] = {}
    for line in access_log.read_text().splitlines():
        parts = line.split()
        if len(parts) != 5 or not parts[0].isdigit():
            continue  # warm-up, sign-in, the readiness probes
        page = _PAGE.match(parts[2])
        if page is None:
            continue
        op = ("export" if page["csv"] else
              ("edit" if page["id"] else "create") if parts[1] == "POST" else
              ("detail" if page["id"] else "list"))
        per_op[op].append(int(parts[4]) / 1000)
        per_phase.setdefault(parts[0], []).append(int(parts[4]) / 1000)
    every = [x for values in per_op.values() for x in values]
    return {"requests": len(every),
            "mean_ms": round(sum(every) / len(every), 2) if every else None,
            "p50_ms": round(percentile(every, 0.5), 2), "p95_ms": round(percentile(every, 0.95), 2),
            "by_op": {op: {"mean_ms": round(sum(v) / len(v), 2) if v else None,
                           "p95_ms": round(percentile(v, 0.95), 2)}
                      for op, v in per_op.items()},
            "by_phase_mean_ms": {label: round(sum(v) / len(v), 2)
                                 for label, v in sorted(per_phase.items())}}
