"""The load run of the benchmark (``bench/load.py``): its judge of answers, and a short real run.

The judge decides which answers are stale (they started after a change's
commit and still show the rights before it), so its rules are checked on
answers made up for the purpose: a server that ignored a change must be
caught, and one that answered while the change was being made must not be
blamed. The short run starts PostgreSQL and two gunicorns (plugin and
hand-filtered) and checks the result file and that nothing was stale.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from bench.loadapp import LoadMember, LoadWorld
from bench.loadcheck import Change, Judge

CRM, OTHER = 1, 2
ALICE, BOB, CAROL = 10, 11, 12  # user ids: all scope (probe), own scope, Bob's colleague


def world() -> LoadWorld:
    members = [LoadMember("a@x.test", ALICE, 1, "all", 1, [100]),
               LoadMember("b@x.test", BOB, 2, "own", 2, [101]),
               LoadMember("c@x.test", CAROL, 3, "department", 2, [102])]
    return LoadWorld(crm_ws=CRM, other_ws=OTHER, leads=1000, members=members,
                     departments={ALICE: 1, BOB: 2, CAROL: 2}, agreement_id=1,
                     crm_owner_token="t", other_owner_token="t", role_probe=0,
                     role_probe_assignment=1, own_role_id=3, share_probe=0)


def judge(role_at: float = math.inf, share_at: float = math.inf) -> Judge:
    """A judge whose role change was sent at ``role_at`` and answered 1 s later (same for the
    agreement)."""
    return Judge(world(), {"role": Change("role", role_at, role_at + 1),
                           "agreement": Change("agreement", share_at, share_at + 1)})


def test_a_row_the_member_may_see_passes_and_one_they_may_not_is_wrong() -> None:
    j = judge()
    assert j.rows(1, [(5, CRM, BOB), (6, CRM, None), (7, OTHER, None)], 0, 1)
    assert j.rows(2, [(5, CRM, BOB), (8, CRM, CAROL)], 0, 1)  # department scope
    assert not j.rows(1, [(9, CRM, CAROL)], 0, 1)  # own scope, a colleague's lead
    assert j.verdicts.wrong == 1 and j.verdicts.stale == {"role": 0, "agreement": 0}


def test_a_shared_row_after_the_revocation_commit_is_stale() -> None:
    j = judge(share_at=10)
    assert j.rows(0, [(7, OTHER, BOB)], 5, 6)  # before: shared
    assert not j.rows(0, [(7, OTHER, BOB)], 11.5, 12)  # started after the commit
    assert j.verdicts.stale["agreement"] == 1
    assert j.verdicts.pages_after["agreement"] == 1
    assert j.verdicts.first_after_s["agreement"] == 0.5


def test_an_answer_overlapping_the_change_may_show_either_side() -> None:
    j = judge(share_at=10)
    assert j.rows(0, [(7, OTHER, BOB)], 9.5, 10.5)  # began before the commit
    assert j.rows(0, [(5, CRM, BOB)], 9.5, 10.5)
    assert j.verdicts.stale == {"role": 0, "agreement": 0} and j.verdicts.wrong == 0


def test_a_detail_the_role_change_hid_must_be_404_after_the_commit() -> None:
    j = judge(role_at=10)
    sentinel = (20, CRM, BOB)  # not Alice's: visible at all scope, hidden at own
    assert j.detail(0, sentinel, 200, sentinel, 1, 2)
    assert j.detail(0, sentinel, 404, None, 12, 13)
    assert not j.detail(0, sentinel, 200, sentinel, 12, 13)
    assert not j.detail(0, sentinel, 404, None, 1, 2)  # a 404 before the change is wrong
    assert j.verdicts.stale["role"] == 1 and j.verdicts.wrong == 1
    assert j.verdicts.exercised["role"] == 2  # both details after the commit were probes


def test_the_role_change_touches_only_the_probe() -> None:
    j = judge(role_at=10)
    assert j.current_scope(0, 5) == "all" and j.current_scope(0, 12) == "own"
    assert j.current_scope(1, 12) == "own" and j.current_scope(2, 12) == "department"
    assert j.rows(2, [(5, CRM, CAROL)], 12, 13)
    assert j.verdicts.pages_after["role"] == 0


gunicorn_missing = importlib.util.find_spec("gunicorn") is None
aiohttp_missing = importlib.util.find_spec("aiohttp") is None


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.skipif(gunicorn_missing or aiohttp_missing, reason="gunicorn or aiohttp missing")
def test_a_short_load_run_writes_its_results_and_finds_nothing_stale(
        pg_server: object, tmp_path: Path) -> None:
    from bench import load

    result = load.measure(duration=6, members=6, workers=2, leads=2000, out_dir=tmp_path,
                          pg=pg_server)
    saved = json.loads((tmp_path / "load.json").read_text())
    assert saved["ratios"] == result["ratios"]
    assert (tmp_path / "load.png").stat().st_size > 0
    for variant in ("plugin", "hand"):
        v = saved["variants"][variant]
        assert v["requests"] > 0 and v["throughput_rps"] > 0
        assert 0 < v["p50_ms"] <= v["p95_ms"] <= v["p99_ms"]
        assert v["error_count"] == 0, v["errors"]
        # A sync worker holds one connection: a refusal's audit session takes the one its
        # rolled back request gave back.
        assert 1 <= v["peak_db_connections"] <= 2
        assert {op for op, x in v["by_op"].items() if x["requests"]} == set(load.OPS)
        # The workers' access logs saw every measured request, and timed it.
        assert v["server"]["requests"] == v["requests"]
        assert 0 < v["server"]["mean_ms"] <= v["p99_ms"]
    assert saved["same_rows_differ"] == 0
    assert [p["variant"] for p in saved["phases"]] == list(load.ORDER)
    assert saved["ratios"]["server_mean"] > 0
    staleness = saved["staleness"]
    assert [c["status"] for c in staleness["changes"]] == [204, 200]
    assert staleness["stale_total"] == 0 and staleness["wrong_answers"] == 0
    for change in staleness["changes"]:  # the changed rights were exercised after each commit
        assert change["detail_probes_after"] + change["pages_after"] > 0, change
        assert change["first_check_after_ms"] is not None
    assert {g["goal"] for g in saved["goals"]} >= {"errors = 0",
                                                   "stale answers after a change = 0"}
    assert "| plugin |" in load.markdown(saved)


def test_the_load_run_works_beside_a_running_event_loop() -> None:
    """Playwright's sync API leaves a loop running in a test process; the run still works."""
    import asyncio
    import threading

    from bench import load

    async def outer() -> int:
        return load.run_async(lambda: asyncio.sleep(0, result=7))

    got: dict[str, int] = {}
    # A thread of its own: this test's process may already run a loop (Playwright's).
    thread = threading.Thread(target=lambda: got.setdefault("inside", asyncio.run(outer())))
    thread.start()
    thread.join()
    assert got == {"inside": 7}
    assert load.run_async(lambda: asyncio.sleep(0, result=8)) == 8
