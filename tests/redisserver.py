"""Throwaway Redis server on loopback for tests (no pytest dependency).

Usage::

    with RedisServer() as redis:
        url = redis.url                     # redis://127.0.0.1:<port>

Runs Debian's ``redis-server`` with no persistence, bound to 127.0.0.1 on a
free port, and stops it afterwards. :func:`redis_available` tells whether the
binary is installed; the test suite skips the Redis tests without it on a
developer's machine and fails on CI (``CI=true``), where ``.ci/run``
installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time

from tests.pgserver import free_port

__all__ = ["RedisServer", "RedisUnavailable", "redis_available"]


class RedisUnavailable(RuntimeError):
    """``redis-server`` is not installed."""


def redis_binary() -> str | None:
    return shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.access("/usr/bin/redis-server", os.X_OK) else None)


def redis_available() -> bool:
    return redis_binary() is not None


class RedisServer:
    """A Redis server for the duration of a ``with`` block (or start()/stop())."""

    def __init__(self) -> None:
        self.port = 0
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None

    def start(self) -> RedisServer:
        binary = redis_binary()
        if binary is None:
            raise RedisUnavailable("redis-server not found (apt-get install redis-server)")
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="rbac-redis-")
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self._dir.name, "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.url = f"redis://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 20
        while not self.ping():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        return self

    def ping(self) -> bool:
        """Whether the server answers PING (speaking the protocol by hand: no client needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
