"""Figure 3w: figure 3*'s pages timed in worker processes of their own, one per version.

Figure 3* times the plugin's page and the hand-filtered page in one
process, interleaved. Whichever page runs more often there keeps more of
its code and data in the CPU's caches: beside a second copy of the
hand page the plugin's page measured +13%, beside a second copy of itself
+1.5% (docs/benchmarks.md, "What the figures say"). A deployment's worker
serves the plugin's pages only, or the hand-written app's only, so this
figure measures each version as such a worker runs it:

* two child processes, one per version (``plugin``, ``handwritten``),
  each building the app on the run's database, signing in as the scope's
  member and warming every page up (:data:`WARMUP` requests each);
* the parent then asks each in turn for a *block* of :data:`BLOCK`
  requests of one page and reads back the block's time. One child runs at
  a time (the other waits on its pipe), in the order A B B A, B A A B, ...,
  so that neither always runs first after the other has filled the caches;
* the figure is the median, over the rounds, of each round's plugin time
  over its hand time (a round is one block of each, run back to back), so
  that a slow patch of the machine, which hurts both blocks of a round,
  cancels.

The garbage collector runs as it does in a worker (it is not paused), so a
version that allocates more pays for its collections. The child is
``python -m bench.workers URL VERSION MEMBERS UNOWNED`` (MEMBERS: scope to
:class:`~.world.Member` fields, as JSON); it answers ``run SCOPE PAGE N``
with the nanoseconds of N requests.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from time import perf_counter_ns
from typing import Any

from .world import ALL, OWN, Member, World

#: Requests per timed block.
BLOCK = 30
#: Rounds (one block of each version) per page.
ROUNDS = 80
#: Requests per page before timing: caches filled, statements compiled and prepared.
WARMUP = 60
#: The versions compared.
VERSIONS = ("plugin", "handwritten")
START_TIMEOUT_S = 600
ROOT = Path(__file__).resolve().parent.parent


class _Worker:
    """One child process serving one version's pages."""

    def __init__(self, url: str, version: str, members: dict[str, Member],
                 unowned_visible: bool) -> None:
        env = {**os.environ, "PYTHONHASHSEED": "0",
               "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT),
                                                           os.environ.get("PYTHONPATH"))))}
        payload = json.dumps({s: dataclasses.asdict(m) for s, m in members.items()})
        self.version = version
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.workers", url, version, payload,
             "1" if unowned_visible else "0"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT, env=env)

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line:
            self.proc.wait(timeout=START_TIMEOUT_S)
            raise RuntimeError(f"the {self.version} worker ended ({self.proc.returncode})")
        return line

    def wait_ready(self) -> None:
        line = self._line()
        if line != "ready":
            raise RuntimeError(f"the {self.version} worker did not start: {line!r}")

    def run(self, scope: str, page: str, n: int) -> int:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"run {scope} {page} {n}\n")
        self.proc.stdin.flush()
        return int(self._line())

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self.proc.stdin.close()
        self.proc.stdout.close()


def _order(round_no: int) -> tuple[str, str]:
    """A B, B A, B A, A B, ...: each version opens half the rounds, in pairs (A B B A)."""
    first = VERSIONS if round_no % 4 in (0, 3) else VERSIONS[::-1]
    return first[0], first[1]


def per_worker(url: str, world: World, *, rounds: int = ROUNDS, block: int = BLOCK,
               unowned_visible: bool = True, scopes: tuple[str, ...] = (OWN, ALL),
               pages: tuple[str, ...] = ("list", "detail")) -> dict[str, Any]:
    """Figure 3w: per page, the plugin's worker over the hand-filtered one.

    ``{"block": N, "rounds": R, scope: {page: {"plugin_us": m, "handwritten_us": m,
    "plugin_over_handwritten": median of the rounds' ratios, "ratio_p25": ...,
    "ratio_p75": ...}}}``.
    """
    members = {scope: world.members[scope] for scope in scopes}
    workers = {v: _Worker(url, v, members, unowned_visible) for v in VERSIONS}
    out: dict[str, Any] = {"block": block, "rounds": rounds}
    try:
        for w in workers.values():
            w.wait_ready()
        for scope in scopes:
            out[scope] = {}
            for page in pages:
                per_request: dict[str, list[float]] = {v: [] for v in VERSIONS}
                ratios = []
                for round_no in range(rounds):
                    this = {v: workers[v].run(scope, page, block) / block
                            for v in _order(round_no)}
                    for v, ns in this.items():
                        per_request[v].append(ns)
                    ratios.append(this["plugin"] / this["handwritten"])
                q = statistics.quantiles(ratios, n=4)
                out[scope][page] = {
                    **{f"{v}_us": round(statistics.median(per_request[v]) / 1000, 1)
                       for v in VERSIONS},
                    "plugin_over_handwritten": round(statistics.median(ratios), 4),
                    "ratio_p25": round(q[0], 4), "ratio_p75": round(q[2], 4)}
    finally:
        for w in workers.values():
            w.close()
    return out


def _child(url: str, version: str, members_json: str, unowned_visible: bool) -> None:
    """Sign in per scope, warm every page up, say ``ready``, then serve ``run`` lines."""
    from .figures import request_pages, signed_in
    from .world import make_app

    app = make_app(url, unowned_visible=unowned_visible)
    clients, targets = {}, {}
    for scope, fields in json.loads(members_json).items():
        member = Member(**fields)
        clients[scope] = signed_in(app, member)
        for page, urls in request_pages(app, member, scope).items():
            targets[(scope, page)] = urls[version]
    for (scope, _page), target in targets.items():
        for _ in range(WARMUP):
            response = clients[scope].get(target)
            if response.status_code != 200:
                raise SystemExit(f"{target} answered {response.status_code}")
    print("ready", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        scope, page, n = words[1], words[2], int(words[3])
        client, target = clients[scope], targets[(scope, page)]
        t0 = perf_counter_ns()
        for _ in range(n):
            client.get(target)
        print(perf_counter_ns() - t0, flush=True)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "1")
