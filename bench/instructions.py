"""Figure 3i: the instructions a request of figure 3* executes, counted by callgrind.

Figure 3* times the plugin's page against the same page filtered by hand,
and its goal is a margin of 5%. On a shared machine two runs of it a few
minutes apart differ by more than that. Valgrind's callgrind counts the
instructions a process executes, which neither the machine's load nor its
clock changes: two runs of the same page count the same within about 0.3%.
On SQLite the database runs inside the process, so the count covers the
whole request, its statements included. On PostgreSQL it covers the app's
process alone (the driver, the ORM, the plugin, the view), and the
server's work shows only in 3*'s time. It is a measure of work, beside
3*'s measure of time: it does not see time spent waiting (the disk, a lock)
nor what a cache miss costs.

Each (scope, page, version) runs in a child process of its own under
callgrind, started without instrumentation (importing the app takes about
14 s so, against 62 s instrumented). The child builds the app, signs in,
warms the page up and says ``ready``. The parent then turns instrumentation
on (``callgrind_control -i on``) and tells the child to go. The child asks
for the page :data:`REQUESTS` times inside ``sys.call_tracing``, the one
function whose calls callgrind collects (``--toggle-collect``), so that the
count is of those requests alone.

The child is ``python -m bench.instructions URL SCOPE MEMBER PAGE VERSION N UNOWNED``
(MEMBER: the :class:`~.world.Member`'s fields as JSON).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from .world import ALL, OWN, Member, World

#: Requests counted per page and version.
REQUESTS = 50
#: Requests made before counting (uninstrumented): caches filled, statements compiled.
WARMUP = 30
#: Seconds a child may take to start, and then to make its requests.
START_TIMEOUT_S = 600
RUN_TIMEOUT_S = 900
#: The versions of figure 3* compared.
VERSIONS = ("plugin", "handwritten")
ROOT = Path(__file__).resolve().parent.parent


def available() -> str | None:
    """None when callgrind can count here, else why not."""
    missing = [tool for tool in ("valgrind", "callgrind_control") if shutil.which(tool) is None]
    return f"not installed: {', '.join(missing)}" if missing else None


def count(url: str, scope: str, member: Member, page: str, version: str, *,
          requests: int = REQUESTS, unowned_visible: bool = True) -> int:
    """Instructions of ``requests`` requests for one page and version, in a child under callgrind."""
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
               "--toggle-collect=sys_call_tracing*", "--callgrind-out-file=/dev/null",
               sys.executable, "-m", "bench.instructions", url, scope,
               json.dumps(dataclasses.asdict(member)), page, version, str(requests),
               "1" if unowned_visible else "0"]
    # The same hash seed in every child: sets and dicts then iterate alike.
    env = {**os.environ, "PYTHONHASHSEED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert child.stdin is not None and child.stdout is not None
        ready = _read_line(child, START_TIMEOUT_S)
        if ready != "ready":
            raise RuntimeError(f"the child did not start ({ready!r}): "
                               f"{child.communicate(timeout=60)[1][-2000:]}")
        subprocess.run(["callgrind_control", "-i", "on", str(child.pid)], check=True,
                       capture_output=True, timeout=120)
        child.stdin.write("go\n")
        child.stdin.flush()
        out, err = child.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    found = re.findall(r"Collected : (\d+)", err)
    if child.returncode != 0 or not found or "done" not in out:
        raise RuntimeError(f"callgrind child failed ({child.returncode}): {err[-2000:]}")
    return int(found[-1])


def _read_line(child: subprocess.Popen[str], timeout: float) -> str:
    """The child's first line of output, or '' when it ends or takes longer than ``timeout``."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert child.stdout is not None
        future = pool.submit(child.stdout.readline)
        try:
            return future.result(timeout=timeout).strip()
        except TimeoutError:
            child.kill()
            return ""


def per_request(url: str, world: World, *, requests: int = REQUESTS,
                unowned_visible: bool = True, scopes: tuple[str, ...] = (OWN, ALL),
                pages: tuple[str, ...] = ("list", "detail")) -> dict[str, Any]:
    """Figure 3i: instructions per request of each page, plugin and hand-filtered.

    ``{"requests": N, scope: {page: {"plugin": n, "handwritten": n,
    "plugin_over_handwritten": r}}}``, or ``{"skipped": reason}`` without
    callgrind. Two children run at a time (the machine's CPUs, at most two).
    """
    reason = available()
    if reason is not None:
        return {"skipped": reason}
    jobs = [(scope, page, version) for scope in scopes for page in pages for version in VERSIONS]
    with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
        counted = dict(zip(jobs, pool.map(
            lambda job: count(url, job[0], world.members[job[0]], job[1], job[2], requests=requests,
                              unowned_visible=unowned_visible), jobs), strict=True))
    out: dict[str, Any] = {"requests": requests}
    for scope in scopes:
        out[scope] = {}
        for page in pages:
            each = {v: round(counted[(scope, page, v)] / requests) for v in VERSIONS}
            out[scope][page] = {**each, "plugin_over_handwritten":
                                round(each["plugin"] / each["handwritten"], 4)}
    return out


def _child(url: str, scope: str, member_json: str, page: str, version: str, requests: int,
           unowned_visible: bool) -> None:
    """Sign in, warm the page up, say ``ready``, wait for ``go``, then make the requests."""
    from .figures import request_pages, signed_in
    from .world import make_app

    app = make_app(url, unowned_visible=unowned_visible)
    member = Member(**json.loads(member_json))
    client = signed_in(app, member)
    target = request_pages(app, member, scope)[page][version]
    for _ in range(WARMUP):
        response = client.get(target)
        if response.status_code != 200:
            raise SystemExit(f"{target} answered {response.status_code}")
    print("ready", flush=True)
    sys.stdin.readline()

    def measured() -> None:
        for _ in range(requests):
            client.get(target)

    sys.call_tracing(measured, ())
    print("done", flush=True)


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]),
           sys.argv[7] == "1")
