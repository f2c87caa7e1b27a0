"""Several workers under load: ``python -m bench.load`` (or ``python -m bench --load 60``).

Starts a throwaway PostgreSQL, seeds the load world (``bench/loadapp.py``:
50 members at own, department and all scope, leads, and a sharing
agreement), and serves it twice with gunicorn, 4 sync workers each, on
127.0.0.1, as the README's "Running on PostgreSQL with several workers"
does: the ``plugin`` app and the ``hand`` app (plugin off, rows filtered by
hand). Both servers answer the same rows; :func:`check_same_rows` proves it
before the load starts.

An asyncio client (aiohttp) signs every member in through the login form
(with its CSRF token), then drives both servers in turn, plugin, hand,
hand, plugin (so slow drift of the machine hits both alike), each for half
the ``--duration``, after an unmeasured warm-up of each (``--warmup``):
every member runs one request at a time, list, detail, create, edit or
export of leads, until the phase ends or the request budget
(``--max-requests``) is spent. Latency is measured by the client (it
includes the wait for a free worker) and, from gunicorn's access log, on
the worker alone.

During the last plugin phase an admin client makes two changes through the
JSON API (so through one of the workers): the role probe loses its
all-scope role (own scope remains), then the other workspace revokes its
agreement. Every answer is judged by :mod:`bench.loadcheck`; the answers
that started after a change's commit and still show the old rights are
counted as stale (goal 0). A sampler reads ``pg_stat_activity`` every
0.2 s for the connections each server holds, per phase; a plugin worker
may hold two, its request's and the one ``audit/refusals.py`` opens to
write a refusal in a transaction of its own (the role probe's refused
details after its change are such refusals).

Writes ``load.json`` and ``load.png`` to the results directory; the goals
have the shape of ``bench/report.py``'s, and :func:`bench.loadreport.markdown`
renders the results for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import io
import json
import math
import os
import random
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.loadapp import PASSWORD, LoadWorld, build_world  # noqa: E402
from bench.loadcheck import Change, Judge, Row  # noqa: E402
from bench.loadreport import (  # noqa: E402
    ACCESS_FORMAT,
    OPS,
    VARIANTS,
    draw,
    goal_line,
    markdown,
    server_times,
    summarise,
    variant_summary,
)

RESULTS = ROOT / "bench" / "results"
PREFIX = {"plugin": "/load/rbac", "hand": "/load/hand"}
#: The phases, in order: each variant twice, for half the duration each time.
ORDER = ("plugin", "hand", "hand", "plugin")
WEIGHTS = (40, 30, 10, 10, 10)
STATUSES = ("new", "contacted", "qualified", "lost")
START_SECONDS = 90
REQUEST_TIMEOUT = 30


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] load: {message}", flush=True)


# -- servers -----------------------------------------------------------------------------



def run_async(make: Any) -> Any:
    """Run the coroutine ``make()`` returns to completion, and return its result.

    A caller whose thread already runs an event loop (Playwright's sync API
    in the same test process does) gets the coroutine run in a thread of
    its own, since ``asyncio.run`` refuses a running loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(make())
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="bench-load-loop")
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")

@contextmanager
def gunicorns(url: str, workers: int, log_dir: Path) -> Iterator[dict[str, str]]:
    """Serve each variant with ``workers`` sync workers on a free loopback port.

    Yields ``{variant: base URL}`` once every worker of both has answered;
    stops both servers afterwards. Each server's stderr is kept in
    ``log_dir/gunicorn-<variant>.log``.
    """
    from sqlalchemy.engine import make_url

    from tests.pgserver import free_port

    secret = secrets.token_hex(32)
    servers: dict[str, tuple[str, subprocess.Popen[bytes], Path]] = {}
    try:
        for variant in VARIANTS:
            port = free_port()
            db_url = make_url(url).update_query_dict({"application_name": f"load-{variant}"})
            env = {**os.environ, "BENCH_LOAD_VARIANT": variant, "FLASK_SECRET_KEY": secret,
                   "FLASK_SQLALCHEMY_DATABASE_URI": db_url.render_as_string(hide_password=False)}
            log_path = log_dir / f"gunicorn-{variant}.log"
            with open(log_path, "wb") as log_file:  # the child keeps its own descriptor
                server = subprocess.Popen(
                    [sys.executable, "-m", "gunicorn", "--workers", str(workers),
                     "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "2",
                     "--timeout", "60", "--access-logfile", str(log_dir / f"access-{variant}.log"),
                     "--access-logformat", ACCESS_FORMAT, "bench.loadapp:server()"],
                    cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
            servers[variant] = (f"http://127.0.0.1:{port}", server, log_path)

        async def ready() -> None:
            await asyncio.gather(*(_until_workers_answer(base, workers, server, log_path)
                                   for base, server, log_path in servers.values()))
        run_async(ready)
        yield {variant: base for variant, (base, _, _) in servers.items()}
    finally:
        for _, server, _ in servers.values():
            server.terminate()
        for _, server, _ in servers.values():
            server.wait(timeout=30)


async def _until_workers_answer(base: str, workers: int, server: subprocess.Popen[bytes],
                                log_path: Path) -> None:
    """Wait until every worker has answered (a static file: no sign-in, no database)."""
    import aiohttp

    seen: set[str] = set()
    deadline = time.monotonic() + START_SECONDS
    async with aiohttp.ClientSession() as http:
        async def probe() -> None:
            try:
                async with http.get(base + "/static/css/app.css",
                                    timeout=aiohttp.ClientTimeout(total=5)) as answer:
                    seen.add(answer.headers.get("X-Worker-Pid", ""))
            except (TimeoutError, aiohttp.ClientError):
                pass
        while len(seen - {""}) < workers:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"gunicorn did not start {workers} workers: "
                                   + log_path.read_text()[-3000:])
            await asyncio.gather(*(probe() for _ in range(4 * workers)))
            await asyncio.sleep(0.1)


class ConnectionSampler:
    """Count each server's database connections (``application_name``) every 0.2 s."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.peak: dict[str, int] = {}
        #: The peak per phase ("1 plugin", ...), set by the driver as it goes.
        self.by_phase: dict[str, dict[str, int]] = {}
        self.phase = "sign-in"
        self.samples = 0
        self.version = ""
        #: At each server's peak: (pid, state, the connection's last statement), to tell
        #: what held the extra connections.
        self.at_peak: dict[str, list[tuple[int, str, str]]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import sqlalchemy as sa

        query = sa.text("SELECT application_name, pid, state, left(query, 160) "
                        "FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with self.engine.connect() as conn:
            self.version = str(conn.scalar(sa.text("SHOW server_version")))
            while not self._stop.is_set():
                phase = self.by_phase.setdefault(self.phase, {})
                seen: dict[str, list[tuple[int, str, str]]] = {}
                for name, pid, state, text in conn.execute(query):
                    seen.setdefault(name, []).append((pid, str(state), str(text)))
                for name, rows in seen.items():
                    if len(rows) > self.peak.get(name, 0):
                        self.at_peak[name] = rows
                    self.peak[name] = max(self.peak.get(name, 0), len(rows))
                    phase[name] = max(phase.get(name, 0), len(rows))
                self.samples += 1
                self._stop.wait(0.2)

    def __enter__(self) -> ConnectionSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.engine.dispose()


# -- the client --------------------------------------------------------------------------


@dataclass
class Tally:
    """What one variant's phases measured."""

    seconds: float = 0.0
    latencies: dict[str, list[float]] = field(default_factory=lambda: {op: [] for op in OPS})
    errors: dict[str, int] = field(default_factory=dict)

    def error(self, key: str) -> None:
        self.errors[key] = self.errors.get(key, 0) + 1

    def add(self, other: Tally) -> None:
        """Count ``other``'s phase in this tally too."""
        self.seconds += other.seconds
        for op, values in other.latencies.items():
            self.latencies[op].extend(values)
        for key, count in other.errors.items():
            self.errors[key] = self.errors.get(key, 0) + count


@dataclass
class Signed:
    """One member signed in to one server."""

    index: int
    http: Any  # aiohttp.ClientSession with the member's cookies
    csrf: str
    last_rows: list[Row] = field(default_factory=list)
    created: list[int] = field(default_factory=list)


class Budget:
    def __init__(self, requests: int) -> None:
        self.left = requests

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


async def sign_in(base: str, world: LoadWorld, index: int) -> Signed:
    """Sign member ``index`` in through the login form; fetch a CSRF token for its writes."""
    import aiohttp

    http = aiohttp.ClientSession(
        base, cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT))
    async with http.get("/login") as answer:
        page = await answer.text()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if token is None:
        raise RuntimeError("the login form carries no CSRF token")
    form = {"csrf_token": token.group(1), "email": world.members[index].email,
            "password": PASSWORD}
    async with http.post("/login", data=form, allow_redirects=False) as answer:
        if answer.status != 302:
            raise RuntimeError(f"sign-in of {form['email']} answered {answer.status}")
    async with http.get("/load/csrf", allow_redirects=False) as answer:
        csrf = (await answer.json())["csrf"]
    return Signed(index, http, csrf)


def page_params(world: LoadWorld, judge: Judge, variant: str, index: int,
                now: float) -> dict[str, Any]:
    """The query string of a hand page: the member's workspace, scope and department.

    A hand-written app has to know them; figure 3*'s hand pages take them
    from the query string too, so the baseline pays nothing to learn them.
    """
    if variant == "plugin":
        return {}
    return {"ws": world.crm_ws, "scope": judge.current_scope(index, now),
            "dept": world.members[index].department_id}


class Driver:
    """Drive one server with every signed-in member; judge and time every answer."""

    def __init__(self, world: LoadWorld, judge: Judge, budget: Budget, seed: int) -> None:
        """``seed`` makes each member's sequence of requests the same from run to run."""
        self.world = world
        self.judge = judge
        self.budget = budget
        self.seed = seed
        self.end = 0.0
        self.phases_run = 0

    async def phase(self, variant: str, members: list[Signed], seconds: float,
                    tally: Tally, label: str, open_ended: bool = False) -> int:
        """Run every member's loop for ``seconds``; return the requests completed.

        ``open_ended``: run until :meth:`settle` names the end (the phase of
        the changes: no member stops before they are made). Each request
        carries ``X-Load-Phase: label``, which the servers' access logs
        record with the time they spent on it (:func:`server_times`).
        """
        start = time.monotonic()
        self.end = math.inf if open_ended else start + seconds
        self.phases_run += 1
        for signed in members:
            signed.http.headers["X-Load-Phase"] = label
        counts = await asyncio.gather(*(self._member(variant, s, tally) for s in members))
        tally.seconds += time.monotonic() - start
        return sum(counts)

    def settle(self, until: float) -> None:
        """End the running open-ended phase at ``until`` (now, if that has passed)."""
        self.end = until

    async def _member(self, variant: str, signed: Signed, tally: Tally) -> int:
        rng = random.Random(f"{self.seed}-{self.phases_run}-{signed.index}")
        done = 0
        while time.monotonic() < self.end and self.budget.take():
            op = rng.choices(OPS, WEIGHTS)[0]
            started = time.monotonic()
            try:
                await getattr(self, "_" + op)(variant, signed, rng, started, tally)
            except Exception as exc:  # noqa: BLE001 (every failure is counted, none stops the run)
                tally.error(f"{op}: {type(exc).__name__}")
            tally.latencies[op].append((time.monotonic() - started) * 1000)
            done += 1
        return done

    def _params(self, variant: str, signed: Signed, now: float) -> dict[str, Any]:
        return page_params(self.world, self.judge, variant, signed.index, now)

    def _before(self, rng: random.Random) -> dict[str, Any]:
        return {} if rng.random() < 0.2 else {"before": rng.randint(2, self.world.leads + 1)}

    async def _list(self, variant: str, signed: Signed, rng: random.Random, started: float,
                    tally: Tally) -> None:
        params = {**self._params(variant, signed, started), **self._before(rng)}
        async with signed.http.get(PREFIX[variant] + "/leads", params=params) as answer:
            body = await answer.json() if answer.status == 200 else None
        if body is None:
            tally.error(f"list: {answer.status}")
            return
        rows = [(r["id"], r["workspace_id"], r["owner_id"]) for r in body]
        signed.last_rows = rows
        self.judge.rows(signed.index, rows, started, time.monotonic())

    async def _export(self, variant: str, signed: Signed, rng: random.Random, started: float,
                      tally: Tally) -> None:
        params = {**self._params(variant, signed, started), **self._before(rng)}
        async with signed.http.get(PREFIX[variant] + "/leads.csv", params=params) as answer:
            text = await answer.text() if answer.status == 200 else None
        if text is None:
            tally.error(f"export: {answer.status}")
            return
        rows = [(int(r["id"]), int(r["workspace_id"]), int(r["owner_id"]) if r["owner_id"]
                 else None) for r in csv.DictReader(io.StringIO(text))]
        self.judge.rows(signed.index, rows, started, time.monotonic())

    def _target(self, signed: Signed, rng: random.Random) -> Row:
        """A lead to open: mostly a sentinel for a probe, else a row of the last page.

        A sentinel is a lead the probe sees before its change and must not
        see after: each detail of one after the change is a crisp check.
        """
        if signed.index == self.world.role_probe and rng.random() < 0.8:
            return rng.choice(self.world.role_sentinels)
        if signed.index == self.world.share_probe and rng.random() < 0.8:
            return rng.choice(self.world.share_sentinels)
        if signed.last_rows:
            return rng.choice(signed.last_rows)
        member = self.world.members[signed.index]
        return (rng.choice(member.own_leads), self.world.crm_ws, member.user_id)

    async def _detail(self, variant: str, signed: Signed, rng: random.Random, started: float,
                      tally: Tally) -> None:
        target = self._target(signed, rng)
        params = self._params(variant, signed, started)
        async with signed.http.get(f"{PREFIX[variant]}/leads/{target[0]}",
                                   params=params) as answer:
            status = answer.status
            body = await answer.json() if status == 200 else None
        if status not in (200, 403, 404):
            tally.error(f"detail: {status}")
            return
        row = (body["id"], body["workspace_id"], body["owner_id"]) if body else None
        if not self.judge.detail(signed.index, target, status, row, started, time.monotonic()):
            tally.error("detail: wrong answer")

    async def _create(self, variant: str, signed: Signed, rng: random.Random, started: float,
                      tally: Tally) -> None:
        params = self._params(variant, signed, started)
        async with signed.http.post(PREFIX[variant] + "/leads", params=params,
                                    json={"name": f"Load lead {rng.random():.6f}",
                                          "company": "Load"},
                                    headers={"X-CSRFToken": signed.csrf}) as answer:
            body = await answer.json() if answer.status == 201 else None
        if body is None:
            tally.error(f"create: {answer.status}")
            return
        signed.created = [body["id"], *signed.created[:19]]

    async def _edit(self, variant: str, signed: Signed, rng: random.Random, started: float,
                    tally: Tally) -> None:
        member = self.world.members[signed.index]
        lead = rng.choice(signed.created or member.own_leads)
        params = self._params(variant, signed, started)
        async with signed.http.post(f"{PREFIX[variant]}/leads/{lead}", params=params,
                                    json={"status": rng.choice(STATUSES)},
                                    headers={"X-CSRFToken": signed.csrf}) as answer:
            await answer.read()
        if answer.status != 200:
            tally.error(f"edit: {answer.status}")


async def make_changes(base: str, world: LoadWorld, changes: dict[str, Change],
                       driver: Driver, phase_s: float) -> None:
    """Move the role probe from all to own scope, then revoke the agreement, through the API.

    The role change starts a fifth into the phase and the revocation two
    fifths in; the phase goes on for at least half its length after the
    revocation's commit, so that enough requests start after each change.
    """

    start = time.monotonic()
    try:
        await _make_changes(base, world, changes, phase_s)
    finally:  # a failed change ends the phase now (and the run, with its error)
        end = start + phase_s
        if changes["agreement"].committed < math.inf:
            end = max(end, changes["agreement"].committed + phase_s / 2)
        driver.settle(end if changes["agreement"].status == 200 else time.monotonic())


async def _make_changes(base: str, world: LoadWorld, changes: dict[str, Change],
                        phase_s: float) -> None:
    """The two changes of :func:`make_changes`, each timed by :func:`_change`."""
    import aiohttp

    start = time.monotonic()
    member = world.members[world.role_probe]
    crm = {"Authorization": f"Bearer {world.crm_owner_token}"}
    other = {"Authorization": f"Bearer {world.other_owner_token}"}
    async with aiohttp.ClientSession(base) as admin:
        await asyncio.sleep(phase_s / 5)
        async with admin.post(f"/api/v1/members/{member.membership_id}/roles", headers=crm,
                              json={"role_id": world.own_role_id}) as answer:
            if answer.status != 201:
                raise RuntimeError(f"assigning the own-scope role: {answer.status} "
                                   f"{await answer.text()}")
        await _change(admin, changes["role"], "DELETE",
                      f"/api/v1/members/{member.membership_id}/roles/"
                      f"{world.role_probe_assignment}", crm, 204)
        await asyncio.sleep(max(0.0, start + 2 * phase_s / 5 - time.monotonic()))
        await _change(admin, changes["agreement"], "POST",
                      f"/api/v1/sharing/{world.agreement_id}/revoke", other, 200)


async def _change(admin: Any, change: Change, method: str, path: str,
                  headers: dict[str, str], expected: int) -> None:
    change.sent = time.monotonic()
    async with admin.request(method, path, headers=headers) as answer:
        body = await answer.text()
    change.committed = time.monotonic()
    change.status = answer.status
    if answer.status != expected:
        raise RuntimeError(f"{change.kind} change answered {answer.status}: {body}")


async def check_same_rows(bases: dict[str, str], signed: dict[str, list[Signed]],
                          judge: Judge, world: LoadWorld) -> int:
    """Ask both servers for the same pages as each member; return how many differ."""
    rng = random.Random(7)
    differ = 0
    for s_plugin, s_hand in zip(signed["plugin"], signed["hand"], strict=True):
        for before in (None, rng.randint(2, world.leads + 1)):
            pages = []
            for variant, s in (("plugin", s_plugin), ("hand", s_hand)):
                params = {**page_params(world, judge, variant, s.index, 0.0),
                          **({"before": before} if before else {})}
                async with s.http.get(PREFIX[variant] + "/leads", params=params) as answer:
                    pages.append([r["id"] for r in await answer.json()])
            differ += pages[0] != pages[1]
    return differ


async def drive(bases: dict[str, str], world: LoadWorld, seconds: float,
                max_requests: int, seed: int, sampler: ConnectionSampler,
                warmup: float) -> dict[str, Any]:
    """Sign everyone in on both servers, check the rows agree, warm up, then run the phases.

    The warm-up (``warmup`` seconds per variant, not measured) fills each
    worker's caches and prepared statements, as a server that has been up
    for a while has them.
    """
    changes = {"role": Change("role"), "agreement": Change("agreement")}
    judge = Judge(world, changes)
    signed: dict[str, list[Signed]] = {}
    gate = asyncio.Semaphore(8)

    async def one(base: str, index: int) -> Signed:
        async with gate:
            return await sign_in(base, world, index)

    try:
        for variant in VARIANTS:
            signed[variant] = list(await asyncio.gather(
                *(one(bases[variant], k) for k in range(len(world.members)))))
        log(f"{len(world.members)} members signed in on both servers")
        same_rows_differ = await check_same_rows(bases, signed, judge, world)
        tallies = {v: Tally() for v in VARIANTS}
        driver = Driver(world, judge, Budget(max_requests), seed)
        for variant in VARIANTS:
            sampler.phase = f"warm-up {variant}"
            await driver.phase(variant, signed[variant], warmup, Tally(), "warm-up")
        phase_s = seconds / ORDER.count("plugin")
        phases = []
        for number, variant in enumerate(ORDER):
            last = number == len(ORDER) - 1
            sampler.phase = f"{number + 1} {variant}"
            tally = Tally()
            work = [driver.phase(variant, signed[variant], phase_s, tally, str(number + 1),
                                 open_ended=last)]
            if last:
                work.append(make_changes(bases["plugin"], world, changes, driver, phase_s))
            done = (await asyncio.gather(*work))[0]
            tallies[variant].add(tally)
            phases.append({"variant": variant, "changes": last,
                           **{k: v for k, v in variant_summary(tally, 0).items()
                              if k in ("requests", "seconds", "throughput_rps", "p50_ms",
                                       "p95_ms", "error_count")}})
            log(f"phase {number + 1}/{len(ORDER)} ({variant}): {done} requests")
    finally:
        for sessions in signed.values():
            for s in sessions:
                await s.http.close()
    return {"tallies": tallies, "verdicts": judge.verdicts, "changes": changes,
            "same_rows_differ": same_rows_differ, "phases": phases}

# -- the run -----------------------------------------------------------------------------


def measure(duration: float = 60.0, members: int = 50, workers: int = 4, leads: int = 100_000,
            max_requests: int = 1_000_000, out_dir: Path = RESULTS, seed: int = 23,
            chart: bool = True, pg: Any = None, warmup: float | None = None) -> dict[str, Any]:
    """Run the whole measurement; write ``load.json`` (and ``load.png``); return the result.

    ``pg``: a running :class:`tests.pgserver.PostgresServer` to use (the
    tests pass theirs); by default a throwaway one is started and stopped.
    ``warmup``: unmeasured seconds per variant first (default a quarter of
    ``duration``, at most 10).
    """
    warmup = min(10.0, duration / 4) if warmup is None else warmup
    import tempfile

    from tests.pgserver import PostgresServer

    out_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    load_start = [round(x, 2) for x in os.getloadavg()]
    with ExitStack() as stack:
        if pg is None:
            pg = stack.enter_context(PostgresServer())
        name = f"rbac_load_{os.getpid()}"
        url = pg.create_database(name)
        stack.callback(pg.drop_database, name)
        log("seeding the world")
        world = build_world(url, members, leads)
        logs = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rbac-load-")))
        bases = stack.enter_context(gunicorns(url, workers, logs))
        log(f"both servers up with {workers} workers each")
        with ConnectionSampler(url) as sampler:
            raw = run_async(lambda: drive(bases, world, duration, max_requests, seed,
                                          sampler, warmup))
        server_logs = {v: (logs / f"gunicorn-{v}.log").read_text()[-2000:] for v in VARIANTS}
        served = {v: server_times(logs / f"access-{v}.log") for v in VARIANTS}
    result = summarise(raw, sampler.peak, sampler.samples)
    for v in VARIANTS:
        result["variants"][v]["server"] = served[v]
    if served["hand"]["mean_ms"]:
        result["ratios"]["server_mean"] = round(
            served["plugin"]["mean_ms"] / served["hand"]["mean_ms"], 3)
        result["goals"].append(goal_line(
            "server time per request, plugin / hand (context: no queueing)",
            f"{result['ratios']['server_mean']}x ({served['plugin']['mean_ms']} / "
            f"{served['hand']['mean_ms']} ms mean)", None))
    result["peak_db_connections_by_phase"] = sampler.by_phase
    result["connections_at_peak"] = sampler.at_peak
    result["meta"] = {
        "command": "python -m bench.load " + f"--duration {duration:g} --members {members} "
                   f"--workers {workers} --leads {leads} --warmup {warmup:g}",
        "started": started, "duration_s": duration, "members": members, "workers": workers,
        "leads": leads, "phases": list(ORDER), "warmup_s": warmup,
        "mix": dict(zip(OPS, WEIGHTS, strict=True)),
        "cpu_count": os.cpu_count(), "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "postgresql": sampler.version,
    }
    if any(v["errors"] for v in result["variants"].values()):
        result["server_log_tail"] = server_logs
    (out_dir / "load.json").write_text(json.dumps(result, indent=1))
    if chart:
        draw(result, out_dir / "load.png")
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0,
                        help="seconds of load per variant (default 60; 10 for a smoke run)")
    parser.add_argument("--members", type=int, default=50, help="concurrent members (50)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers per variant")
    parser.add_argument("--leads", type=int, default=100_000,
                        help="leads in the world (100000, figure 3's size)")
    parser.add_argument("--warmup", type=float,
                        help="unmeasured seconds per variant first (default duration/4, <= 10)")
    parser.add_argument("--max-requests", type=int, default=1_000_000,
                        help="stop after this many requests in all")
    parser.add_argument("--seed", type=int, default=23)
    parser.add_argument("--out", default=str(RESULTS), help="results directory")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(duration=args.duration, members=args.members, workers=args.workers,
                     leads=args.leads, max_requests=args.max_requests, out_dir=Path(args.out),
                     seed=args.seed, warmup=args.warmup)
    print(markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
