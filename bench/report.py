"""Turn the raw measurements into goals, growth factors, JSON, a chart and a table."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

MARK_START = "<!-- results:start -->"
MARK_END = "<!-- results:end -->"
SCOPES = ("own", "department", "all")
LINEAR = 0.8      # growth exponent from which growth is called linear
SUBLINEAR = 0.2   # below: flat
#: A plugin figure's growth is the plugin's doing only if it outgrows its hand-written
#: twin (the same work without the plugin) by more than this (figure 2's tolerance).
TWIN_TOLERANCE = 1.2


# -- goals --------------------------------------------------------------------

def _goal(figure: str, backend: str, goal: str, measured: str, passed: bool | None,
          where: str = "") -> dict[str, Any]:
    """One line of the goals table; ``passed=None`` marks a context line, not a goal."""
    return {"figure": figure, "backend": backend, "goal": goal, "measured": measured,
            "where": where, "passed": None if passed is None else bool(passed)}


def verdict(goal: dict[str, Any]) -> str:
    """``pass``, ``FAIL`` or ``context`` (a line that explains a goal, not one)."""
    return "context" if goal["passed"] is None else "pass" if goal["passed"] else "FAIL"


def handwritten_over_plain(page: dict[str, Any]) -> float:
    """The cost of filtering at all: the hand-filtered page over the plugin-off page.

    Computed from the medians rather than stored, so that older result files
    re-render with it.
    """
    st = page["stats"]
    return round(st["handwritten"]["median_ns"] / st["plain"]["median_ns"], 3)


def _closest(sizes: list[int], target: int) -> int:
    return min(sizes, key=lambda s: abs(math.log(s / target)))


def goals(data: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    canonical = data["meta"]["sizes"]["canonical_roles"]
    for backend, b in data["backends"].items():
        sizes = sorted(int(s) for s in b["sizes"])
        per = {s: b["sizes"][str(s)] for s in sizes}

        worst = min(((e["decision"]["casbin_over_rbac_warm"], s) for s, e in per.items()))
        out.append(_goal("1", backend, "rbac.can (warm, resource-level) >= 10x faster than "
                         "pycasbin enforce", f"{worst[0]:.1f}x faster", worst[0] >= 10,
                         f"worst over sizes: {worst[1]:,} leads"))
        fastest = [(e["decision"]["casbin_fastest_over_rbac_warm"], s) for s, e in per.items()
                   if "casbin_fastest_over_rbac_warm" in e["decision"]]
        if fastest:
            worst = min(fastest)
            out.append(_goal("1", backend, "rbac.can (warm, resource-level) faster than "
                             "pycasbin's fastest enforcer (plain, Fast, Synced)",
                             f"{worst[0]:.1f}x faster", worst[0] >= 1,
                             f"worst over sizes: {worst[1]:,} leads"))
        worst = max(((e["decision"]["rbac_warm_over_dict"], s) for s, e in per.items()))
        out.append(_goal("1", backend, "rbac.can (warm, resource-level) within 20x of a dict "
                         "lookup", f"{worst[0]:.1f}x the dict", worst[0] <= 20,
                         f"worst over sizes: {worst[1]:,} leads"))

        worst = max(((e["list"][sc]["plugin_over_handwritten"], s, sc)
                     for s, e in per.items() for sc in SCOPES))
        out.append(_goal("2", backend, "filtered list page within 1.2x of the hand-written "
                         "WHERE at every size", f"{worst[0]:.2f}x", worst[0] <= 1.2,
                         f"worst: {worst[2]} scope, {worst[1]:,} leads"))
        same = all(e["list"][sc]["same_rows"] for e in per.values() for sc in SCOPES)
        out.append(_goal("2", backend, "plugin and hand-written pages return the same rows",
                         "identical" if same else "DIFFERENT", same))

        at = _closest(sizes, 100_000)
        req = per[at]["request"]
        # "3*" is context, not the brief's goal: the plugin-off view of "3"
        # filters nothing (it lists every workspace's leads); the other one
        # answers the same page as the plugin with a hand-written WHERE.
        for figure, key, goal in (
                ("3", "plugin_over_plain", "a guarded request costs at most 15% more than "
                 "the same view with the plugin off, at 100k records"),
                ("3*", "plugin_over_handwritten", "(context) the same, against the plugin-off "
                 "view filtered by hand so that it answers the same page")):
            worst = max((req[sc][pg][key], sc, pg) for sc in req for pg in req[sc])
            out.append(_goal(figure, backend, goal, f"+{(worst[0] - 1) * 100:.0f}%",
                             worst[0] <= 1.15,
                             f"worst: {worst[2]} page, {worst[1]} scope, {at:,} leads"))
        # "3p": 3* again with every account-protection policy on (bench/policies.py).
        with_policies = [(req[sc][pg]["policies"]["plugin_over_handwritten"], sc, pg)
                         for sc in req for pg in req[sc] if "policies" in req[sc][pg]]
        if with_policies:
            worst = max(with_policies)
            out.append(_goal("3p", backend, "3* with every security policy on (MFA for "
                             "everyone, session records and cap, IP allowlist): within "
                             "figure 3's 15% budget", f"+{(worst[0] - 1) * 100:.0f}%",
                             worst[0] <= 1.15,
                             f"worst: {worst[2]} page, {worst[1]} scope, {at:,} leads"))
        # "3°" is what filtering costs without the plugin: when the hand-filtered
        # page is itself over 15%, goal 3 is out of any filtering code's reach.
        over = [(handwritten_over_plain(req[sc][pg]), sc, pg) for sc in req for pg in req[sc]]
        out.append(_goal("3°", backend, "(context) the plugin-off view filtered by hand, "
                         "against the plugin-off view: the cost of filtering at all",
                         ", ".join(f"{pg} {sc} {(r - 1) * 100:+.0f}%"
                                   for r, sc, pg in sorted(over, reverse=True)),
                         None, f"{at:,} leads, no plugin"))

        worst = max(((e["resolution"]["stacked_ms"], s) for s, e in per.items()))
        ratio = per[worst[1]]["resolution"]["stacked_over_single"]
        out.append(_goal("4", backend, f"cold resolution of 5 stacked inherited roles "
                         f"({canonical:,} roles in the workspace) under 5 ms",
                         f"{worst[0]:.2f} ms ({ratio:.2f}x a single-role member)",
                         worst[0] < 5, f"worst over sizes: {worst[1]:,} leads"))

    linear = [g for g in data["growth"] if g["plugin"] and g["class"] == "linear"]
    mine = [g for g in linear if g.get("over_twin") is None or g["over_twin"] > TWIN_TOLERANCE]
    shared = [g for g in linear if g not in mine]
    out.append(_goal("5", "all", "no linear growth attributable to the plugin",
                     "none" if not mine else "; ".join(
                         f"{g['backend']} {g['metric']} x{g['growth']}" for g in mine),
                     not mine,
                     "" if not shared else "linear in the hand-written twin too: " + "; ".join(
                         f"{g['backend']} {g['metric']} x{g['growth']} (hand-written "
                         f"x{g['twin_growth']})" for g in shared)))
    out += field_and_write_lines(data)
    return out


def _pct(r: float) -> str:
    return f"{(r - 1) * 100:+.0f}%"


def _figure6(b: dict[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The size figure 6 was measured at and its entry, or None (older results)."""
    at = [int(s) for s, e in b["sizes"].items() if "hidden_field" in e and "edit" in e]
    return (at[0], b["sizes"][str(at[0])]) if at else None


def field_and_write_lines(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Figure 6's context lines: the cost of a hidden field and of the write path."""
    out = []
    for backend, b in data["backends"].items():
        found = _figure6(b)
        if found is None:
            continue
        at, e = found
        hf, ed = e["hidden_field"], e["edit"]
        field = ", ".join(hf["hidden_fields"]["hidden"])
        out.append(_goal("6", backend, "(context) list/detail with a hidden field vs without",
                         f"{_pct(hf['list']['hidden_over_visible'])}, "
                         f"{_pct(hf['detail']['hidden_over_visible'])}", None,
                         f"{at:,} leads, own scope, leads.{field} hidden vs its twin member"))
        out.append(_goal("6", backend, "(context) one-record edit through the guard vs system "
                         "context", _pct(ed["member_over_system"]), None,
                         f"{at:,} leads, own-scope member; load, change, commit"))
        out.append(_goal("6", backend, "(context) the same edit vs the plugin off (a session "
                         "without the plugin's listeners)", _pct(ed["member_over_plugin_off"]),
                         None, f"{at:,} leads, own-scope member"))
    return out


# -- growth -------------------------------------------------------------------

def _classify(exponent: float) -> str:
    if exponent >= LINEAR:
        return "linear"
    if exponent >= SUBLINEAR:
        return "sublinear"
    return "flat"


def growth(data: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def exponent_of(v0: float, v1: float, a0: int, a1: int) -> float:
        g = v1 / v0
        return math.log(g) / math.log(a1 / a0) if a1 > a0 and g > 0 else 0.0

    def add(backend: str, figure: str, axis: str, metric: str, values: list[float],
            at: list[int], plugin: bool, twin: str | None = None) -> None:
        """One row from the measurements ``values`` at the sizes ``at``.

        The class is that of the steepest step, not of the whole span alone: a
        cost flat from 10k to 100k and linear from 100k to 1M is linear at scale.
        """
        exponent = exponent_of(values[0], values[-1], at[0], at[-1])
        steepest = max((exponent_of(values[i], values[i + 1], at[i], at[i + 1]), at[i], at[i + 1])
                       for i in range(len(at) - 1))
        rows.append({"backend": backend, "figure": figure, "axis": axis, "metric": metric,
                     "from": at[0], "to": at[-1], "value_from_ns": round(values[0], 1),
                     "value_to_ns": round(values[-1], 1),
                     "growth": round(values[-1] / values[0], 2),
                     "exponent": round(exponent, 3),
                     "steepest_step": {"from": steepest[1], "to": steepest[2],
                                       "exponent": round(steepest[0], 3)},
                     "class": _classify(max(exponent, steepest[0])),
                     "plugin": plugin, "twin": twin})

    for backend, b in data["backends"].items():
        sizes = sorted(int(s) for s in b["sizes"])
        entries = [b["sizes"][str(size)] for size in sizes]

        def by_size(figure: str, name: str, path: tuple[str, ...], plugin: bool,
                    twin: str | None = None) -> None:
            add(backend, figure, "leads", name, [_dig(e, *path, "median_ns") for e in entries],
                sizes, plugin, twin)

        if len(sizes) >= 2:
            for key, name, plugin in (("rbac_warm", "rbac.can warm (resource)", True),
                                      ("rbac_warm_record", "rbac.can warm (record)", True),
                                      ("rbac_cold", "rbac.can cold", True),
                                      ("casbin", "pycasbin enforce", False),
                                      ("casbin_fast", "pycasbin FastEnforcer", False),
                                      ("dict", "dict lookup", False)):
                if all(key in e["decision"]["stats"] for e in entries):
                    by_size("1", name, ("decision", "stats", key), plugin)
            for sc in SCOPES:
                by_size("2", f"list page, {sc} scope: plugin", ("list", sc, "stats", "plugin"),
                        True, twin=f"list page, {sc} scope: hand-written")
                by_size("2", f"list page, {sc} scope: hand-written",
                        ("list", sc, "stats", "handwritten"), False)
            for sc in entries[0]["request"]:
                for pg in entries[0]["request"][sc]:
                    by_size("3", f"{pg} request, {sc} scope: plugin",
                            ("request", sc, pg, "stats", "plugin"), True,
                            twin=f"{pg} request, {sc} scope: hand-written")
                    by_size("3", f"{pg} request, {sc} scope: hand-written",
                            ("request", sc, pg, "stats", "handwritten"), False)
            by_size("4", "resolution, 5 stacked roles", ("resolution", "stats", "stacked_5"),
                    True)
        role_entries = [b["roles"][c] for c in sorted(b["roles"], key=int)]
        if len(role_entries) >= 2:
            roles = [r["roles"] for r in role_entries]

            def by_roles(figure: str, name: str, path: tuple[str, ...], plugin: bool) -> None:
                add(backend, figure, "roles", name,
                    [_dig(r, *path, "median_ns") for r in role_entries], roles, plugin)

            for key, name, plugin in (("rbac_warm", "rbac.can warm (resource)", True),
                                      ("rbac_cold", "rbac.can cold", True),
                                      ("casbin", "pycasbin enforce", False),
                                      ("casbin_fast", "pycasbin FastEnforcer", False),
                                      ("dict", "dict lookup", False)):
                by_roles("1", name, ("decision", "stats", key), plugin)
            for key, name in (("stacked_5", "resolution, 5 stacked roles"),
                              ("single_role", "resolution, single role")):
                by_roles("4", name, ("resolution", "stats", key), True)
    by_name = {(r["backend"], r["axis"], r["metric"]): r for r in rows}
    for r in rows:
        twin = by_name.get((r["backend"], r["axis"], r["twin"])) if r["twin"] else None
        if twin is not None:
            r["twin_growth"] = twin["growth"]
            r["over_twin"] = round(r["growth"] / twin["growth"], 2)
    return rows


def _dig(obj: Any, *path: str) -> Any:
    for key in path:
        obj = obj[key]
    return obj


# -- chart ----------------------------------------------------------------------

def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(data["backends"])
    colors = {"sqlite": "tab:blue", "postgresql": "tab:orange"}
    styles = {"own": "-", "department": "--", "all": ":"}
    fig, axes = plt.subplots(2, 3, figsize=(19, 11))
    m = data["meta"]
    fig.suptitle(f"crm_rbac_plugin benchmarks — {m['command']} — {m['machine']['cpu_count']} "
                 f"CPUs, Python {m['machine']['python']}, SQLAlchemy "
                 f"{m['machine']['sqlalchemy']}, PostgreSQL {m['machine']['postgresql']}, "
                 f"SQLite {m['machine']['sqlite']}", fontsize=11)

    # 1. decisions (largest size)
    ax = axes[0][0]
    names = [("dict", "dict lookup"), ("rbac_warm", "rbac.can warm\n(resource)"),
             ("rbac_warm_record", "rbac.can warm\n(record)"), ("casbin", "pycasbin\nEnforcer"),
             ("casbin_fast", "pycasbin\nFastEnforcer"),
             ("rbac_cold", "rbac.can cold\n(Access from DB)")]
    width = 0.8 / max(1, len(backends))
    for i, backend in enumerate(backends):
        sizes = sorted(int(s) for s in data["backends"][backend]["sizes"])
        stats = data["backends"][backend]["sizes"][str(sizes[-1])]["decision"]["stats"]
        vals = [stats[k]["median_ns"] / 1000 if k in stats else 0 for k, _ in names]
        xs = [j + i * width for j in range(len(names))]
        bars = ax.bar(xs, vals, width, label=backend, color=colors.get(backend))
        for bar, v in zip(bars, vals, strict=True):
            ax.annotate(f"{v:.3g}", (bar.get_x() + bar.get_width() / 2, v), ha="center",
                        va="bottom", fontsize=6, rotation=90 if len(backends) > 1 else 0)
    ax.set_xticks([j + width * (len(backends) - 1) / 2 for j in range(len(names))])
    ax.set_xticklabels([n for _, n in names], fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("µs per decision (median, log)")
    ax.set_title("1. One decision: rbac.can vs pycasbin vs dict (largest size)")
    ax.legend(fontsize=8)

    # 2. list query ratio
    ax = axes[0][1]
    for backend in backends:
        b = data["backends"][backend]
        sizes = sorted(int(s) for s in b["sizes"])
        for sc in SCOPES:
            ax.plot(sizes, [b["sizes"][str(s)]["list"][sc]["plugin_over_handwritten"]
                            for s in sizes], styles[sc], marker="o",
                    color=colors.get(backend), label=f"{backend} {sc}")
    ax.axhline(1.2, color="red", lw=1, label="goal 1.2x")
    ax.axhline(1.0, color="grey", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("leads")
    ax.set_ylabel("plugin / hand-written (median)")
    ax.set_title("2. List page of 50: plugin filter vs hand-written WHERE")
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))

    # 2b. list query absolute
    ax = axes[0][2]
    for backend in backends:
        b = data["backends"][backend]
        sizes = sorted(int(s) for s in b["sizes"])
        for sc in SCOPES:
            ax.plot(sizes, [b["sizes"][str(s)]["list"][sc]["stats"]["plugin"]["median_ns"] / 1e6
                            for s in sizes], styles[sc], marker="o", color=colors.get(backend),
                    label=f"{backend} {sc} plugin")
            ax.plot(sizes, [b["sizes"][str(s)]["list"][sc]["stats"]["handwritten"]["median_ns"]
                            / 1e6 for s in sizes], styles[sc], marker="x", alpha=0.4,
                    color=colors.get(backend))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("leads (o plugin, x hand-written, faded)")
    ax.set_ylabel("ms per page (median, log)")
    ax.set_title("2. List page of 50: absolute time")
    ax.legend(fontsize=7, ncol=2, loc="upper center", bbox_to_anchor=(0.5, -0.12))

    # 3. requests
    ax = axes[1][0]
    labels, plain, hand, cols = [], [], [], []
    at = 0
    for backend in backends:
        b = data["backends"][backend]
        sizes = sorted(int(s) for s in b["sizes"])
        at = _closest(sizes, 100_000)
        for sc, pages in b["sizes"][str(at)]["request"].items():
            for pg, r in pages.items():
                labels.append(f"{backend[:6]}\n{pg}/{sc}")
                plain.append((r["plugin_over_plain"] - 1) * 100)
                hand.append((r["plugin_over_handwritten"] - 1) * 100)
                cols.append(colors.get(backend))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], plain, 0.4, color=cols, label="vs plugin off (same query)")
    ax.bar([x + 0.2 for x in xs], hand, 0.4, color=cols, alpha=0.45,
           label="vs plugin off + hand-written WHERE")
    ax.axhline(15, color="red", lw=1, label="goal +15%")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("% added by the plugin (median)")
    ax.set_title(f"3. Whole request through the test client ({at:,} leads)")
    ax.legend(fontsize=7)

    # 4. resolution
    ax = axes[1][1]
    for backend in backends:
        b = data["backends"][backend]
        counts = sorted(int(c) for c in b["roles"])
        xs_r = [b["roles"][str(c)]["roles"] for c in counts]
        ax.plot(xs_r, [b["roles"][str(c)]["resolution"]["stats"]["stacked_5"]["median_ns"] / 1e6
                       for c in counts], "-o", color=colors.get(backend),
                label=f"{backend}: 5 stacked roles")
        ax.plot(xs_r, [b["roles"][str(c)]["resolution"]["stats"]["single_role"]["median_ns"]
                       / 1e6 for c in counts], "--x", color=colors.get(backend),
                label=f"{backend}: single role")
    ax.axhline(5, color="red", lw=1, label="goal 5 ms")
    ax.set_xscale("log")
    ax.set_xlabel(f"roles in the workspace ({m['sizes']['role_workspace_members']:,} members)")
    ax.set_ylabel("ms per cold resolution (median)")
    ax.set_ylim(bottom=0)
    ax.set_title("4. Effective access from the database, cache cleared")
    ax.legend(fontsize=7)

    # 5. growth
    ax = axes[1][2]
    rows = [g for g in data["growth"] if g["plugin"] or g["metric"].startswith("pycasbin")]
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
    leads, counts = m["sizes"]["leads"], m["sizes"]["role_counts"]
    ax.set_title(f"5. Growth: {leads[0]:,}→{leads[-1]:,} leads, "
                 f"{counts[0]:,}→{counts[-1]:,} roles")
    ax.legend(fontsize=7)

    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- markdown -------------------------------------------------------------------

def _us(ns: float) -> str:
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.1f} µs"
    return f"{ns:.0f} ns"


def _plan_summary(plan: list[str]) -> str:
    """The access-path lines of a plan, without costs: what a reviewer looks for."""
    keep = [re.sub(r"\s*\(cost=[^)]*\)", "", line).replace("->", "").strip() for line in plan
            if re.search(r"Scan|SEARCH|SCAN|Sort|TEMP B-TREE|MULTI-INDEX", line)]
    return " / ".join(keep).replace("|", "\\|")[:160]


def _load_warning(meta: dict[str, Any]) -> str:
    busiest = max(meta["load_average_start"][0], meta["load_average_end"][0])
    # The benchmark itself keeps one CPU busy; more than that is someone else.
    if busiest - 1 > 0.25 * (meta["machine"]["cpu_count"] or 1):
        return (": **the machine was busy with other work during the run; the ratios are "
                "interleaved and hold up better than the absolute times.**")
    return "."


def markdown(data: dict[str, Any]) -> str:
    m = data["meta"]
    mc = m["machine"]
    lines = [
        f"Generated by `{m['command']}` on {m['started']} in {m['duration_s']:.0f} s. "
        f"Machine: {mc['cpu_count']} CPUs ({mc['platform']}), Python {mc['python']}, "
        f"SQLAlchemy {mc['sqlalchemy']}, Flask {mc['flask']}, pycasbin {mc['pycasbin']}, "
        f"SQLite {mc['sqlite']}, PostgreSQL {mc['postgresql']}. Sizes: leads "
        f"{', '.join(f'{s:,}' for s in m['sizes']['leads'])}; role workspaces of "
        f"{', '.join(f'{r:,}' for r in m['sizes']['role_counts'])} roles with "
        f"{m['sizes']['role_workspace_members']:,} members; RBAC_UNOWNED_VISIBLE="
        f"{m.get('config', {}).get('RBAC_UNOWNED_VISIBLE', True)}. All times are medians. "
        f"Load average at start {m['load_average_start'][0]}, at end "
        f"{m['load_average_end'][0]} (1 min){_load_warning(m)}",
        "",
        "### Goals",
        "",
        "| figure | backend | goal | measured | where | result |",
        "|---|---|---|---|---|---|",
    ]
    for g in data["goals"]:
        lines.append(f"| {g['figure']} | {g['backend']} | {g['goal']} | {g['measured']} | "
                     f"{g['where']} | {verdict(g).replace('FAIL', '**FAIL**')} |")
    lines += ["", "### 1. One decision", "",
              "| backend | leads | dict | rbac.can warm | rbac.can warm (record) | pycasbin | "
              "pycasbin Fast | rbac.can cold | casbin / rbac warm | Fast / rbac warm | "
              "rbac warm / dict |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for backend, b in data["backends"].items():
        for s in sorted(b["sizes"], key=int):
            d = b["sizes"][s]["decision"]
            st = d["stats"]
            rec = _us(st["rbac_warm_record"]["median_ns"]) if "rbac_warm_record" in st else "-"
            lines.append(f"| {backend} | {int(s):,} | {_us(st['dict']['median_ns'])} | "
                         f"{_us(st['rbac_warm']['median_ns'])} | {rec} | "
                         f"{_us(st['casbin']['median_ns'])} | {_us(st['casbin_fast']['median_ns'])} | "
                         f"{_us(st['rbac_cold']['median_ns'])} | {d['casbin_over_rbac_warm']:.1f}x | "
                         f"{d['casbin_fast_over_rbac_warm']:.1f}x | {d['rbac_warm_over_dict']:.1f}x |")
    lines += ["", "By role count (member with 5 stacked roles; pycasbin loaded with the whole "
              "workspace's policy):", "",
              "| backend | roles | policies | rbac.can warm | pycasbin | pycasbin Fast | "
              "rbac.can cold | casbin / rbac warm |", "|---|---|---|---|---|---|---|---|"]
    for backend, b in data["backends"].items():
        for c in sorted(b["roles"], key=int):
            d = b["roles"][c]["decision"]
            st = d["stats"]
            lines.append(f"| {backend} | {b['roles'][c]['roles']:,} | {d['casbin']['policies']:,} "
                         f"| {_us(st['rbac_warm']['median_ns'])} | {_us(st['casbin']['median_ns'])}"
                         f" | {_us(st['casbin_fast']['median_ns'])}"
                         f" | {_us(st['rbac_cold']['median_ns'])} | "
                         f"{d['casbin_over_rbac_warm']:.1f}x |")
    lines += ["", "### 2. Filtered list page (50 rows, newest first)", "",
              "| backend | leads | scope | plugin | hand-written | ratio | plan (plugin) |",
              "|---|---|---|---|---|---|---|"]
    for backend, b in data["backends"].items():
        for s in sorted(b["sizes"], key=int):
            for sc in SCOPES:
                r = b["sizes"][s]["list"][sc]
                plan = ""
                if "explain" in r:
                    plan = _plan_summary(r["explain"]["plugin"]["plan"])
                lines.append(f"| {backend} | {int(s):,} | {sc} | "
                             f"{_us(r['stats']['plugin']['median_ns'])} | "
                             f"{_us(r['stats']['handwritten']['median_ns'])} | "
                             f"{r['plugin_over_handwritten']:.2f}x | `{plan}` |")
    lines += ["", "### 3. Whole request (25 rows as JSON; detail of one lead)", "",
              "| backend | leads | page | scope | plugin | plugin off | off + hand WHERE | "
              "vs off | vs hand | hand vs off |", "|---|---|---|---|---|---|---|---|---|---|"]
    for backend, b in data["backends"].items():
        for s in sorted(b["sizes"], key=int):
            for sc, pages in b["sizes"][s]["request"].items():
                for pg, r in pages.items():
                    st = r["stats"]
                    lines.append(f"| {backend} | {int(s):,} | {pg} | {sc} | "
                                 f"{_us(st['plugin']['median_ns'])} | "
                                 f"{_us(st['plain']['median_ns'])} | "
                                 f"{_us(st['handwritten']['median_ns'])} | "
                                 f"{(r['plugin_over_plain'] - 1) * 100:+.0f}% | "
                                 f"{(r['plugin_over_handwritten'] - 1) * 100:+.0f}% | "
                                 f"{(handwritten_over_plain(r) - 1) * 100:+.0f}% |")
    lines += ["", "### 4. Effective-access resolution, cache cleared", "",
              "| backend | roles in workspace | 5 stacked roles | single role | ratio | "
              "queries |", "|---|---|---|---|---|---|"]
    for backend, b in data["backends"].items():
        for c in sorted(b["roles"], key=int):
            r = b["roles"][c]["resolution"]
            lines.append(f"| {backend} | {b['roles'][c]['roles']:,} | "
                         f"{_us(r['stats']['stacked_5']['median_ns'])} | "
                         f"{_us(r['stats']['single_role']['median_ns'])} | "
                         f"{r['stacked_over_single']:.2f}x | "
                         f"{r['shapes']['stacked_5']['queries']} |")
    lines += ["", "### 5. Growth", "",
              "Exponent = log(growth) / log(size ratio): 0 is flat, 1 is linear "
              f"(flagged from {LINEAR}). The class is that of the steeper of the whole "
              "span and its steepest step. \"/ twin\": a plugin figure's growth over that "
              "of the same work written by hand; linear growth counts against the plugin "
              f"(figure 5) when this is above {TWIN_TOLERANCE}.", "",
              "| backend | axis | figure | metric | from | to | growth | exponent | "
              "steepest step | class | / twin |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in data["growth"]:
        cls = f"**{g['class']}**" if g["class"] == "linear" else g["class"]
        step = g.get("steepest_step")
        step_text = (f"{step['exponent']} ({step['from']:,}→{step['to']:,})" if step else "")
        twin_text = f"{g['over_twin']}x" if g.get("over_twin") is not None else ""
        lines.append(f"| {g['backend']} | {g['axis']} {g['from']:,}→{g['to']:,} | "
                     f"{g['figure']} | {g['metric']} | {_us(g['value_from_ns'])} | "
                     f"{_us(g['value_to_ns'])} | x{g['growth']} | {g['exponent']} | "
                     f"{step_text} | {cls} | {twin_text} |")
    rows = [(backend, *found) for backend, b in data["backends"].items()
            if (found := _figure6(b)) is not None]
    if rows:
        lines += ["", "### 6. Field rules and the write path", "",
                  ("| backend | leads | list: hidden field | without | ratio | detail: hidden "
                   "field | without | ratio | edit: member | system | plugin off | vs system | "
                   "vs off |"), "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for backend, at, e in rows:
            hf, ed = e["hidden_field"], e["edit"]
            cells = []
            for pg in ("list", "detail"):
                st = hf[pg]["stats"]
                cells += [_us(st["hidden"]["median_ns"]), _us(st["visible"]["median_ns"]),
                          _pct(hf[pg]["hidden_over_visible"])]
            st = ed["stats"]
            cells += [_us(st[k]["median_ns"]) for k in ("member", "system", "plugin_off")]
            cells += [_pct(ed["member_over_system"]), _pct(ed["member_over_plugin_off"])]
            lines.append(f"| {backend} | {at:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def update_doc(doc: Path, table: str) -> None:
    text = doc.read_text() if doc.exists() else ""
    if MARK_START not in text or MARK_END not in text:
        text = text.rstrip() + f"\n\n## Results\n\n{MARK_START}\n{MARK_END}\n"
    head, rest = text.split(MARK_START, 1)
    _, tail = rest.split(MARK_END, 1)
    doc.write_text(f"{head}{MARK_START}\n{table}\n{MARK_END}{tail}")


def rerender(out_dir: Path, doc: Path | None) -> dict[str, Any]:
    """Recompute goals and growth of ``latest.json`` and redraw the chart and table."""
    data = json.loads((out_dir / "latest.json").read_text())
    finish(data, out_dir, doc)
    return data


def finish(data: dict[str, Any], out_dir: Path, doc: Path | None) -> None:
    """Compute growth and goals, then write JSON, PNG and the docs table."""
    data["growth"] = growth(data)
    data["goals"] = goals(data)
    (out_dir / "latest.json").write_text(json.dumps(data, indent=1, default=str))
    chart(data, out_dir / "latest.png")
    if doc is not None:
        update_doc(doc, markdown(data))
