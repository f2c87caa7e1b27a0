"""cProfile of the hot paths, after the timings (profiling distorts them).

Each profile is written as text to ``bench/results/profile-<backend>-<name>.txt``
(sorted by own time, then by cumulative time) and summarised in the JSON.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac

from .figures import LIST_PAGE, signed_in
from .world import ALL, OWN, World


def _profile(fn: Callable[[], Any], calls: int, path: Path) -> dict[str, Any]:
    fn()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    stats = pstats.Stats(profiler)
    text = io.StringIO()
    text.write(f"{calls} calls\n\n== by own time ==\n")
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(30)
    text.write("\n== by cumulative time ==\n")
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(40)
    path.write_text(text.getvalue())
    rows = []
    for (filename, line, func), (_cc, nc, tt, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{_short(filename)}:{line}({func})", "ncalls": nc,
                     "tottime_us_per_call": round(tt / calls * 1e6, 2),
                     "cumtime_us_per_call": round(ct / calls * 1e6, 2)})
    rows.sort(key=lambda r: r["tottime_us_per_call"], reverse=True)
    total = stats.total_tt  # type: ignore[attr-defined]
    return {"file": path.name, "calls": calls,
            "us_per_call_profiled": round(total / calls * 1e6, 2), "top_own_time": rows[:12]}


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/work/main/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def profile_hot_paths(app: Flask, world: World, backend: str, out_dir: Path,
                      roles: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    member = world.members[OWN]
    with app.app_context():
        access = rbac.access_for(member.membership_id)
        lead = db.session.get(Lead, db.session.scalar(
            sa.select(sa.func.max(Lead.id)).where(Lead.owner_id == member.user_id)
            .execution_options(rbac_bypass=True)), execution_options={"rbac_bypass": True})
        out["decision_warm"] = _profile(lambda: rbac.can("view", "leads", access=access),
                                        20_000, out_dir / f"profile-{backend}-decision.txt")
        out["decision_warm_record"] = _profile(
            lambda: rbac.can("edit", "leads", lead, access=access), 20_000,
            out_dir / f"profile-{backend}-decision-record.txt")

        def page() -> None:
            db.session.scalars(sa.select(Lead).order_by(Lead.id.desc()).limit(LIST_PAGE)).all()
            db.session.expunge_all()

        with rbac.as_member(access):
            out["list_query_own"] = _profile(page, 300,
                                             out_dir / f"profile-{backend}-list-own.txt")
        # The all scope: the SQL is cheapest there, so the plugin's own
        # Python cost stands out.
        with rbac.as_member(rbac.access_for(world.members[ALL].membership_id)):
            out["list_query_all"] = _profile(page, 1000,
                                             out_dir / f"profile-{backend}-list-all.txt")
        rw = world.role_workspaces[roles]

        def resolve() -> None:
            app.extensions["rbac"].cache.clear()
            rbac.access_for(rw.stacked.membership_id)

        out["resolution_stacked"] = _profile(resolve, 300,
                                             out_dir / f"profile-{backend}-resolution.txt")
        db.session.rollback()
    for scope in (OWN, ALL):
        who = world.members[scope]
        client = signed_in(app, who)
        out[f"request_list_{scope}"] = _profile(
            lambda c=client: c.get("/bench/rbac/leads"), 300,
            out_dir / f"profile-{backend}-request-list-{scope}.txt")
    out["request_list_all_plugin_off"] = _profile(
        lambda c=client: c.get("/bench/plain/leads"), 300,
        out_dir / f"profile-{backend}-request-list-all-plugin-off.txt")
    return out
