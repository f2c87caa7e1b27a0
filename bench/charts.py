"""The charts: one panel per figure, drawn alone (``<figure>.png``) and together (``latest.png``).

Each panel function draws one figure on a matplotlib ``Axes`` and returns
False when the results hold nothing for it (a run with ``--only`` measures
some sections). :func:`write_figures` writes, for every figure with data, a
PNG of its panel and a JSON file with the run's metadata, the figure's goal
lines and its measurements; :func:`chart` draws every panel on one page.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

SCOPES = ("own", "department", "all")
COLORS = {"sqlite": "tab:blue", "postgresql": "tab:orange"}
STYLES = {"own": "-", "department": "--", "all": ":"}
LINEAR = 0.8


def _sizes(b: dict[str, Any], key: str) -> list[int]:
    return sorted(int(s) for s, e in b.get("sizes", {}).items() if key in e)


def _closest(sizes: list[int], target: int) -> int:
    return min(sizes, key=lambda s: abs(math.log(s / target)))


def decision(ax: Any, data: dict[str, Any]) -> bool:
    names = [("dict", "dict lookup"), ("rbac_warm", "rbac.can warm\n(resource)"),
             ("rbac_warm_record", "rbac.can warm\n(record)"), ("casbin", "pycasbin\nEnforcer"),
             ("casbin_fast", "pycasbin\nFastEnforcer"),
             ("rbac_cold", "rbac.can cold\n(Access from DB)")]
    backends = [k for k, b in data["backends"].items() if _sizes(b, "decision")]
    width = 0.8 / max(1, len(backends))
    for i, backend in enumerate(backends):
        b = data["backends"][backend]
        stats = b["sizes"][str(_sizes(b, "decision")[-1])]["decision"]["stats"]
        vals = [stats[k]["median_ns"] / 1000 if k in stats else 0 for k, _ in names]
        xs = [j + i * width for j in range(len(names))]
        bars = ax.bar(xs, vals, width, label=backend, color=COLORS.get(backend))
        for bar, v in zip(bars, vals, strict=True):
            ax.annotate(f"{v:.3g}", (bar.get_x() + bar.get_width() / 2, v), ha="center",
                        va="bottom", fontsize=6, rotation=90 if len(backends) > 1 else 0)
    ax.axhline(2, color="red", lw=1, label="goal 2 µs (record-level, warm)")
    ax.set_xticks([j + width * (len(backends) - 1) / 2 for j in range(len(names))])
    ax.set_xticklabels([n for _, n in names], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("µs per decision (median, log)")
    ax.set_title("1. One decision: rbac.can vs pycasbin vs dict (largest size)")
    ax.legend(fontsize=8)
    return bool(backends)


def list_ratio(ax: Any, data: dict[str, Any]) -> bool:
    drawn = False
    for backend, b in data["backends"].items():
        sizes = _sizes(b, "list")
        for sc in SCOPES:
            if sizes:
                drawn = True
                ax.plot(sizes, [b["sizes"][str(s)]["list"][sc]["plugin_over_handwritten"]
                                for s in sizes], STYLES[sc], marker="o",
                        color=COLORS.get(backend), label=f"{backend} {sc}")
    ax.axhline(1.2, color="red", lw=1, label="goal 1.2x")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("leads")
    ax.set_ylabel("plugin / hand-written (median)")
    ax.set_title("2. List page of 50: plugin filter vs hand-written WHERE")
    if drawn:
        ax.legend(fontsize=7, ncol=2)
    return drawn


def list_absolute(ax: Any, data: dict[str, Any]) -> bool:
    drawn = False
    for backend, b in data["backends"].items():
        sizes = _sizes(b, "list")
        for sc in SCOPES:
            if not sizes:
                continue
            drawn = True
            ax.plot(sizes, [b["sizes"][str(s)]["list"][sc]["stats"]["plugin"]["median_ns"] / 1e6
                            for s in sizes], STYLES[sc], marker="o", color=COLORS.get(backend),
                    label=f"{backend} {sc} plugin")
            ax.plot(sizes, [b["sizes"][str(s)]["list"][sc]["stats"]["handwritten"]["median_ns"]
                            / 1e6 for s in sizes], STYLES[sc], marker="x", alpha=0.4,
                    color=COLORS.get(backend))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("leads (o plugin, x hand-written, faded)")
    ax.set_ylabel("ms per page (median, log)")
    ax.set_title("2. List page of 50: absolute time")
    if drawn:
        ax.legend(fontsize=7, ncol=2)
    return drawn


def rls(ax: Any, data: dict[str, Any]) -> bool:
    """Figure 2r: the plugin's page over the RLS page, and the hand-written page over it."""
    drawn = False
    for backend, b in data["backends"].items():
        sizes = _sizes(b, "rls")
        for sc in SCOPES:
            if not sizes:
                continue
            drawn = True
            rows = [b["sizes"][str(s)]["rls"][sc] for s in sizes]
            ax.plot(sizes, [r["plugin_over_rls"] for r in rows], STYLES[sc], marker="o",
                    color=COLORS.get(backend), label=f"{backend} {sc}: plugin / RLS")
            if all("plugin_over_rls_statement" in r for r in rows):
                ax.plot(sizes, [r["plugin_over_rls_statement"] for r in rows], STYLES[sc],
                        marker="^", alpha=0.5, color=COLORS.get(backend),
                        label=f"{sc}: plugin / RLS statement alone")
            ax.plot(sizes, [r["plugin_over_rls"] / r["plugin_over_handwritten"] for r in rows],
                    STYLES[sc], marker="x", alpha=0.4, color="tab:grey",
                    label=f"{sc}: hand-written / RLS")
    ax.axhline(1.1, color="red", lw=1, label="goal 1.1x")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("leads")
    ax.set_ylabel("time / RLS page (median)")
    ax.set_title("2r. List page of 50: plugin and hand-written vs PostgreSQL RLS")
    if drawn:
        ax.legend(fontsize=7)
    return drawn


def sparse(ax: Any, data: dict[str, Any]) -> bool:
    """Figure 2s: database time of each sparse page at the largest size, per backend."""
    labels: list[str] = []
    bars: dict[str, list[float]] = {}
    size = 0
    for backend, b in data["backends"].items():
        if not b.get("sparse"):
            continue
        size = max(int(s) for s in b["sparse"])
        pages = b["sparse"][str(size)]["pages"]
        labels = labels or list(pages)
        bars[backend] = [pages[k].get("db_ms", 0) for k in labels]
    if not bars:
        return False
    width = 0.8 / len(bars)
    for i, (backend, vals) in enumerate(bars.items()):
        ax.bar([j + i * width for j in range(len(labels))], vals, width, label=backend,
               color=COLORS.get(backend))
    ax.axhline(2, color="red", lw=1, label="goal 2 ms (PostgreSQL)")
    ax.set_xticks([j + width * (len(bars) - 1) / 2 for j in range(len(labels))])
    ax.set_xticklabels([k.replace("/unowned-", "\nunowned ") for k in labels], fontsize=6,
                       rotation=90)
    ax.set_yscale("log")
    ax.set_ylabel("database time per page, ms (median, log)")
    ax.set_title(f"2s. Sparse worlds: scoped page of 50 at {size:,} leads")
    ax.legend(fontsize=7)
    return True


def requests(ax: Any, data: dict[str, Any]) -> bool:
    labels, plain, hand, cols = [], [], [], []
    at = 0
    for backend, b in data["backends"].items():
        sizes = _sizes(b, "request")
        if not sizes:
            continue
        at = _closest(sizes, 100_000)
        for sc, pages in b["sizes"][str(at)]["request"].items():
            for pg, r in pages.items():
                labels.append(f"{backend[:6]}\n{pg}/{sc}")
                plain.append((r["plugin_over_plain"] - 1) * 100)
                hand.append((r["plugin_over_handwritten"] - 1) * 100)
                cols.append(COLORS.get(backend))
    if not labels:
        return False
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], plain, 0.4, color=cols, label="vs plugin off (same query)")
    ax.bar([x + 0.2 for x in xs], hand, 0.4, color=cols, alpha=0.45,
           label="vs plugin off + hand-written WHERE (3*)")
    ax.axhline(15, color="red", lw=1, label="goal 3: +15%")
    ax.axhline(5, color="darkred", lw=1, ls="--", label="goal 3*: +5%")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("% added by the plugin (median)")
    ax.set_title(f"3. Whole request through the test client ({at:,} leads)")
    ax.legend(fontsize=7)
    return True


def _page_bars(ax: Any, data: dict[str, Any], rows: Any, figure: str, ylabel: str,
               title: str, spread: bool = False) -> bool:
    """Figure 3*'s four pages per size and backend as bars of % over the hand-filtered page
    (``rows(backend_entry)`` gives (size, scope, page, entry)); ``spread`` draws each
    entry's middle half of rounds (``ratio_p25`` to ``ratio_p75``)."""
    labels, vals, low, high, cols = [], [], [], [], []
    for backend, b in data["backends"].items():
        for size, sc, pg, e in rows(b):
            labels.append(f"{backend[:2]} {size:,}\n{pg}/{sc}")
            mid = (e["plugin_over_handwritten"] - 1) * 100
            vals.append(mid)
            cols.append(COLORS.get(backend))
            if spread:
                low.append(mid - (e["ratio_p25"] - 1) * 100)
                high.append((e["ratio_p75"] - 1) * 100 - mid)
    if not labels:
        return False
    ax.bar(range(len(labels)), vals, 0.6, color=cols,
           **({"yerr": [low, high], "capsize": 3} if spread else {}))
    ax.axhline(5, color="darkred", lw=1, ls="--", label=f"goal {figure}: +5%")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(list(range(len(labels))))
    ax.set_xticklabels([label.replace("\n", " ") for label in labels], fontsize=7, rotation=90)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return True


def instructions(ax: Any, data: dict[str, Any]) -> bool:
    from .sections import instruction_rows

    return _page_bars(ax, data, instruction_rows, "3i", "% instructions added by the plugin",
                      "3i. Instructions per request vs hand-filtered (callgrind; PostgreSQL: "
                      "app process)")


def workers(ax: Any, data: dict[str, Any]) -> bool:
    from .sections import worker_rows

    return _page_bars(ax, data, worker_rows, "3w",
                      "% time added by the plugin (bars: rounds' middle half)",
                      "3w. Request time vs hand-filtered, each version in its own worker "
                      "process", spread=True)


def resolution(ax: Any, data: dict[str, Any]) -> bool:
    drawn = False
    for backend, b in data["backends"].items():
        counts = sorted(int(c) for c in b.get("roles", {}))
        if not counts:
            continue
        drawn = True
        xs = [b["roles"][str(c)]["roles"] for c in counts]
        ax.plot(xs, [b["roles"][str(c)]["resolution"]["stats"]["stacked_5"]["median_ns"] / 1e6
                     for c in counts], "-o", color=COLORS.get(backend),
                label=f"{backend}: 5 stacked roles")
        ax.plot(xs, [b["roles"][str(c)]["resolution"]["stats"]["single_role"]["median_ns"]
                     / 1e6 for c in counts], "--x", color=COLORS.get(backend),
                label=f"{backend}: single role")
    ax.axhline(1, color="red", lw=1, label="goal 1 ms")
    ax.set_xscale("log")
    ax.set_xlabel("roles in the workspace")
    ax.set_ylabel("ms per cold resolution (median)")
    ax.set_ylim(bottom=0)
    ax.set_title("4. Effective access from the database, cache cleared")
    if drawn:
        ax.legend(fontsize=7)
    return drawn


def growth(ax: Any, data: dict[str, Any]) -> bool:
    rows = [g for g in data.get("growth", [])
            if g["plugin"] or g["metric"].startswith("pycasbin")]
    if not rows:
        return False
    labels = [f"{g['backend'][:6]} {g['axis']}: {g['metric']}" for g in rows]
    exps = [g["exponent"] for g in rows]
    cols = ["tab:red" if g["class"] == "linear" else
            ("tab:olive" if g["class"] == "sublinear" else "tab:green") for g in rows]
    ax.barh(range(len(rows)), exps, color=cols)
    for i, g in enumerate(rows):
        ax.annotate(f"x{g['growth']}", (max(exps[i], 0), i), fontsize=6, va="center")
    ax.axvline(LINEAR, color="red", lw=1, label="linear (exponent 0.8+)")
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("growth exponent: log(growth) / log(size ratio); 1 = linear")
    ax.set_xlim(right=1.25)
    ax.set_title("5. Growth with leads and roles")
    ax.legend(fontsize=7)
    return True


def fields(ax: Any, data: dict[str, Any]) -> bool:
    """Figure 6: a hidden field's cost on list and detail, and the guarded edit's."""
    labels, vals, cols = [], [], []
    for backend, b in data["backends"].items():
        for size, e in b.get("sizes", {}).items():
            if "hidden_field" not in e or "edit" not in e:
                continue
            for name, r in (("list, hidden field", e["hidden_field"]["list"]["hidden_over_visible"]),
                            ("detail, hidden field",
                             e["hidden_field"]["detail"]["hidden_over_visible"]),
                            ("edit vs system", e["edit"]["member_over_system"]),
                            ("edit vs plugin off", e["edit"]["member_over_plugin_off"])):
                labels.append(f"{backend} {int(size):,}: {name}")
                vals.append((r - 1) * 100)
                cols.append(COLORS.get(backend))
    if not labels:
        return False
    ax.barh(range(len(labels)), vals, color=cols)
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_yticks(range(len(labels)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("% over the twin (median)")
    ax.set_title("6. Field rules and the write path (context)")
    return True


def costs(ax: Any, data: dict[str, Any]) -> bool:
    """Figure 7: each feature on against its "off" twin (ratio of medians)."""
    from .sections import cost_ratios

    rows = cost_ratios(data)
    if not rows:
        return False
    ax.barh(range(len(rows)), [(r - 1) * 100 for _, r, _ in rows],
            color=[COLORS.get(backend) for backend, _, _ in rows])
    ax.axvline(10, color="red", lw=1, label="goal +10%")
    ax.axvline(0, color="grey", lw=0.5)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{backend}: {label}" for backend, _, label in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("% over the same work with the feature off (median)")
    ax.set_title("7. What the new features cost")
    ax.legend(fontsize=7)
    return True


def audit(ax: Any, data: dict[str, Any]) -> bool:
    """Figure 7c: rows of the trail each audit filter's page read, and its database time."""
    for backend, b in data["backends"].items():
        if not b.get("audit"):
            continue
        a = b["audit"]
        labels = list(a["filters"])
        shares = [a["filters"][k]["share"] * 100 for k in labels]
        ax.barh(range(len(labels)), shares, color=COLORS.get(backend), label="% of the trail read")
        for i, k in enumerate(labels):
            f = a["filters"][k]
            ax.annotate(f"{f['rows_read']:,} rows, {f['db_ms']:.2f} ms", (shares[i], i),
                        fontsize=6, va="center")
        ax.axvline(5, color="red", lw=1, label="limit 5%")
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("% of the audit trail's rows read for a page of 50")
        ax.set_title(f"7c. Audit page filters on {a['events']:,} events ({backend})")
        ax.legend(fontsize=7)
        return True
    return False


def load(ax: Any, data: dict[str, Any]) -> bool:
    """The load run (bench/load.py): throughput and p95 of the plugin over the hand-filtered app."""
    result = data.get("load")
    if not result:
        return False
    ratios, stale = result["ratios"], result["staleness"]
    names = ["throughput", "p95"]
    vals = [ratios.get(n) or 0 for n in names]
    errors = sum(v["error_count"] for v in result["variants"].values())
    stale_answers = sum(c["stale_answers"] for c in stale["changes"])
    ax.bar(names, vals, color=["tab:green", "tab:purple"])
    ax.axhline(0.9, color="red", lw=1, ls="--", label="throughput goal >= 0.9x")
    ax.axhline(1.15, color="red", lw=1, label="p95 goal <= 1.15x")
    ax.set_ylabel("plugin / hand-filtered")
    ax.set_title(f"8. Under load: stale {stale_answers}, errors {errors}")
    ax.legend(fontsize=7)
    return True


Panel = Callable[[Any, dict[str, Any]], bool]

#: Figure file name -> (panel, goal figures in the goals table, keys of a size entry,
#: keys of a backend entry, top-level keys): what the figure's JSON file holds.
FIGURES: dict[str, tuple[Panel, tuple[str, ...], tuple[str, ...], tuple[str, ...],
                         tuple[str, ...]]] = {
    "fig1-decision": (decision, ("1", "1r"), ("decision",), ("roles",), ()),
    "fig2-list": (list_ratio, ("2",), ("list",), (), ()),
    "fig2-list-absolute": (list_absolute, ("2",), ("list",), (), ()),
    "fig2r-rls": (rls, ("2r",), ("rls",), (), ()),
    "fig2s-sparse": (sparse, ("2s",), (), ("sparse",), ()),
    "fig3-request": (requests, ("3", "3*", "3p", "3°"), ("request",), (), ()),
    "fig3i-instructions": (instructions, ("3i",), ("instructions",), (), ()),
    "fig3w-workers": (workers, ("3w",), ("workers",), (), ()),
    "fig4-resolution": (resolution, ("4",), ("resolution",), ("roles",), ()),
    "fig5-growth": (growth, ("5",), (), (), ("growth",)),
    "fig6-fields": (fields, ("6",), ("hidden_field", "edit"), (), ()),
    "fig7-costs": (costs, ("7",), ("permission_change", "request"), (), ()),
    "fig7c-audit": (audit, ("7c",), (), ("audit",), ()),
    "fig8-load": (load, ("8",), (), (), ("load",)),
}


def _figure_data(data: dict[str, Any], goals: tuple[str, ...], size_keys: tuple[str, ...],
                 backend_keys: tuple[str, ...], top_keys: tuple[str, ...]) -> dict[str, Any]:
    backends: dict[str, Any] = {}
    for backend, b in data["backends"].items():
        entry: dict[str, Any] = {k: b[k] for k in backend_keys if b.get(k)}
        sizes = {s: {k: e[k] for k in size_keys if k in e} for s, e in b.get("sizes", {}).items()}
        sizes = {s: e for s, e in sizes.items() if e}
        if sizes:
            entry["sizes"] = sizes
        if entry:
            backends[backend] = entry
    out = {"meta": data["meta"],
           "goals": [g for g in data.get("goals", []) if g["figure"] in goals],
           "backends": backends}
    out.update({k: data[k] for k in top_keys if data.get(k)})
    return out


def write_figures(data: dict[str, Any], out_dir: Path) -> list[str]:
    """Write ``<figure>.json`` and ``<figure>.png`` for every figure with data; return their names.

    A figure the run did not measure gets neither; with ``--merge`` the
    results hold every section measured so far, so every figure is redrawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name, (panel, goals, size_keys, backend_keys, top_keys) in FIGURES.items():
        fig, ax = plt.subplots(figsize=(9, 6))
        try:
            if not panel(ax, data):
                continue  # not measured in this run
            fig.tight_layout()
            fig.savefig(out_dir / f"{name}.png", dpi=110)
        finally:
            plt.close(fig)
        part = _figure_data(data, goals, size_keys, backend_keys, top_keys)
        (out_dir / f"{name}.json").write_text(json.dumps(part, indent=1, default=str))
        written.append(name)
    return written


def chart(data: dict[str, Any], path: Path) -> None:
    """Every figure with data on one page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [panel for panel, *_ in FIGURES.values()]
    cols = 4
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(6.5 * cols, 5.5 * rows))
    m = data["meta"]
    mc = m.get("machine", {})
    fig.suptitle(f"crm_rbac_plugin benchmarks — {m['command']} — {mc.get('cpu_count')} "
                 f"CPUs, Python {mc.get('python')}, SQLAlchemy {mc.get('sqlalchemy')}, "
                 f"PostgreSQL {mc.get('postgresql')}, SQLite {mc.get('sqlite')}", fontsize=11)
    flat = [ax for row in axes for ax in row]
    for ax, panel in zip(flat, panels, strict=False):
        if not panel(ax, data):
            ax.axis("off")
    for ax in flat[len(panels):]:
        ax.axis("off")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=90)
    plt.close(fig)
