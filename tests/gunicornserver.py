"""The demo under gunicorn with two sync workers, for the tests that need real processes.

:func:`serve` starts ``gunicorn --workers 2 wsgi:app`` on a free loopback
port with the given ``FLASK_*`` settings, waits until *both* workers have
answered, yields the base URL and stops the server. Each answer names its
worker in ``X-Worker-Pid`` (``FLASK_CRM_WORKER_HEADER``), so a test can
show that both processes served it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.pgserver import free_port

ROOT = Path(__file__).resolve().parent.parent
#: How long gunicorn and its second worker get to start.
START_SECONDS = 60


@contextlib.contextmanager
def serve(pg_url: str, log_dir: Path, **env: str) -> Iterator[str]:
    """Serve the demo on ``pg_url`` with two workers and yield its base URL.

    ``env``: more environment, e.g. ``FLASK_SECRET_KEY``. The server's
    stderr goes to ``log_dir/server.log``; its tail is in the error raised
    when the server does not start.
    """
    port = free_port()
    full_env = {**os.environ, "FLASK_SQLALCHEMY_DATABASE_URI": pg_url,
                "FLASK_CRM_WORKER_HEADER": "true",
                "FLASK_CRM_HTTPS": "false", **env}  # plain HTTP on 127.0.0.1
    log_path = log_dir / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 (closed in finally)
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "--graceful-timeout", "2", "wsgi:app"],
        cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        _until_both_workers_answer(base, server, log_path)
        yield base
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _until_both_workers_answer(base: str, server: subprocess.Popen[bytes],
                               log_path: Path) -> None:
    """Wait until each of the two workers has answered a request.

    gunicorn answers as soon as its first worker has imported the app; the
    second may still be booting, and a burst sent then is served by one
    worker alone. A static file touches neither the rate limits nor the
    sign-in throttle, so the probes leave the tests' counts alone.
    """
    def pid(_: int) -> str | None:
        try:
            with urllib.request.urlopen(base + "/static/css/app.css", timeout=5) as answer:
                return str(answer.headers.get("X-Worker-Pid"))
        except OSError:  # refused while booting, or a slow first answer
            return None

    deadline = time.monotonic() + START_SECONDS
    with ThreadPoolExecutor(8) as pool:
        while len({p for p in pool.map(pid, range(16)) if p is not None}) < 2:
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("gunicorn did not start two workers: "
                                   + log_path.read_text()[-2000:])
            time.sleep(0.2)
