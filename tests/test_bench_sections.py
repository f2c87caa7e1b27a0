"""The benchmark's request sections still run against the current plugin.

A figure's requests must be answered as a member's would be (200, with the
rows), or the benchmark measures refusals. These run the request-level
sections on a small world, with the fewest rounds, and check only that
every page answered and every ratio was computed: timings are never
asserted in the suite (they belong to ``python -m bench``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask

from bench import costs, instructions, policies, sections, workers
from bench import world as world_mod
from bench.figures import Effort, guarded_requests
from crm_app.extensions import db

QUICK = Effort(repeat=3, warmup=1, budget_s=1.0, requests_repeat=3)


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    path: Path = tmp_path_factory.mktemp("bench") / "bench.db"
    app: Flask = world_mod.make_app(f"sqlite:///{path}")
    sizes = world_mod.Sizes(crm_members=100, departments=10, role_counts=(10,),
                            canonical_roles=10, role_members=100)
    with app.app_context():
        world = world_mod.seed(sizes)
        world_mod.load_leads(world, sizes, 2_000)
        db.session.remove()
    yield SimpleNamespace(app=app, world=world)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_figure_3_and_its_policies_variant_answer_every_page(bench: SimpleNamespace) -> None:
    out = guarded_requests(bench.app, bench.world, QUICK)
    policies.with_policies(bench.app, bench.world, QUICK, out)  # raises unless every page is 200
    for scope in ("own", "all"):
        for page in ("list", "detail"):
            assert out[scope][page]["plugin_over_handwritten"] > 0
            assert out[scope][page]["policies"]["plugin_over_handwritten"] > 0


def test_figure_7_twins_differ_by_the_features_measured(bench: SimpleNamespace) -> None:
    result = costs.permission_change(bench.app, bench.world, QUICK)  # raises if not
    assert result["written_per_two_requests"]["on"]["audit_events"] > 0
    assert not any(result["written_per_two_requests"]["off"].values())
    assert result["on_over_off"] > 0


def test_figure_3w_times_each_version_in_a_worker_of_its_own(bench: SimpleNamespace) -> None:
    """Each version answers its pages in a child process of its own (a worker that
    answered anything but 200 would stop the figure), and every ratio is computed."""
    url = bench.app.config["SQLALCHEMY_DATABASE_URI"]
    out = workers.per_worker(url, bench.world, rounds=4, block=2)
    assert (out["block"], out["rounds"]) == (2, 4)
    for scope in ("own", "all"):
        for page in ("list", "detail"):
            timed = out[scope][page]
            assert timed["plugin_us"] > 0 and timed["handwritten_us"] > 0
            assert timed["ratio_p25"] <= timed["plugin_over_handwritten"] <= timed["ratio_p75"]


def test_figure_3w_alternates_which_version_opens_a_round() -> None:
    firsts = [workers._order(n)[0] for n in range(8)]
    assert firsts == ["plugin", "handwritten", "handwritten", "plugin"] * 2


def test_figure_3i_counts_the_requests_alone(bench: SimpleNamespace) -> None:
    """Callgrind counts each page in a child process, from ``go`` on: twice the requests,
    twice the instructions (the child's start-up and warm-up are not counted)."""
    if instructions.available() is not None:
        pytest.skip(f"callgrind: {instructions.available()}")
    url = bench.app.config["SQLALCHEMY_DATABASE_URI"]
    out = instructions.per_request(url, bench.world, requests=8, scopes=("all",),
                                   pages=("detail",))
    counted = out["all"]["detail"]
    assert counted["plugin"] > 1_000_000 and counted["handwritten"] > 1_000_000
    assert 0.8 < counted["plugin_over_handwritten"] < 1.25
    half = instructions.count(url, "all", bench.world.members["all"], "detail", "plugin",
                              requests=4)
    assert abs(half / 4 - counted["plugin"]) < 0.1 * counted["plugin"]


def test_figure_3i_without_callgrind_says_so(bench: SimpleNamespace,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(instructions.shutil, "which", lambda tool: None)
    out = instructions.per_request("sqlite://", bench.world)
    assert out == {"skipped": "not installed: valgrind, callgrind_control"}
    goals = sections.backend_goals({}, "sqlite", {"sizes": {"100000": {"instructions": out}}})
    assert [(g["figure"], g["measured"], g["passed"]) for g in goals] == [
        ("3i", "not measured: not installed: valgrind, callgrind_control", None)]


def test_the_user_statement_diagnostic_still_splits_the_statement() -> None:
    """``bench.userrow`` cuts the plugin's statement into its parts by its SQL text:
    each variant must differ from the others, and the cut must still find them."""
    import sqlalchemy as sa
    from sqlalchemy.dialects import postgresql

    from bench import userrow
    from crm_app.models import User
    from crm_app.rbac_setup import rbac
    from crm_rbac_plugin import user_rows

    dialect = postgresql.psycopg.dialect()  # type: ignore[attr-defined]
    plugin = user_rows._user_statement(rbac.models, User, User.session_token)[0]
    hand = sa.select(User).where(User.session_token == sa.bindparam("user_id"))
    found = userrow.variants(str(plugin.compile(dialect=dialect)),
                             str(hand.compile(dialect=dialect)))
    assert len(set(found.values())) == 4
    assert "rbac_session" not in found["no_session"] and "rbac_mfa" in found["no_session"]
    assert "rbac_mfa" not in found["membership"] and "rbac_workspace" in found["membership"]
    assert all(s.count("%(") == 3 for s in found.values())  # every variant takes every parameter
