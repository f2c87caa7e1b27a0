"""Throwaway PostgreSQL server for tests (no pytest dependency).

Usage::

    with PostgresServer() as pg:
        url = pg.create_database("rbac_test")   # postgresql+psycopg://...

Environment:
  RBAC_TEST_PG_URL  use this external server (SQLAlchemy URL) instead of starting one
  RBAC_TEST_NO_PG=1 PostgreSQL is disabled; PostgresServer() raises PostgresUnavailable

Everything runs as root here and initdb refuses root, so the cluster is
created in a temp dir owned by the ``postgres`` OS user and all server
binaries run through ``runuser -u postgres``.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile

__all__ = [
    "PostgresServer",
    "PostgresUnavailable",
    "find_pg_bindir",
    "pg_disabled",
    "pg_available",
]

DRIVER = "postgresql+psycopg"
_DB_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_ICU_LOCALE_RE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL can be used (binaries/user missing, or disabled by env)."""


def pg_disabled() -> bool:
    return os.environ.get("RBAC_TEST_NO_PG", "") not in ("", "0")


def find_pg_bindir() -> str | None:
    """Newest /usr/lib/postgresql/<ver>/bin that has initdb and pg_ctl (15 preferred)."""
    candidates = []
    for bindir in glob.glob("/usr/lib/postgresql/*/bin"):
        if all(os.access(os.path.join(bindir, b), os.X_OK) for b in ("initdb", "pg_ctl")):
            ver = os.path.basename(os.path.dirname(bindir))
            try:
                key = (ver == "15", float(ver))
            except ValueError:
                key = (False, 0.0)
            candidates.append((key, bindir))
    return max(candidates)[1] if candidates else None


def pg_available() -> bool:
    """True if a server can be used: external URL given, or local binaries + user present."""
    if pg_disabled():
        return False
    if os.environ.get("RBAC_TEST_PG_URL"):
        return True
    return find_pg_bindir() is not None and _has_postgres_user()


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
        return True
    except KeyError:
        return False


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _with_database(url: str, name: str) -> str:
    """Replace the database part of a SQLAlchemy URL."""
    from sqlalchemy.engine import make_url  # local import: keep module import cheap

    return make_url(url).set(database=name).render_as_string(hide_password=False)


class PostgresServer:
    """A PostgreSQL server for the duration of a ``with`` block (or start()/stop())."""

    def __init__(self, *, bindir: str | None = None, os_user: str = "postgres"):
        self.bindir = bindir
        self.os_user = os_user
        self.external_url = os.environ.get("RBAC_TEST_PG_URL") or None
        self.datadir: str | None = None
        self.port: int | None = None
        self.url: str = ""
        self._running = False

    # -- lifecycle ---------------------------------------------------------
    def start(self) -> PostgresServer:
        if pg_disabled():
            raise PostgresUnavailable("PostgreSQL disabled by RBAC_TEST_NO_PG=1")
        if self.external_url:
            self.url = self.external_url
            return self
        self.bindir = self.bindir or find_pg_bindir()
        if not self.bindir:
            raise PostgresUnavailable(
                "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin "
                "(apt-get install postgresql-15, or set RBAC_TEST_PG_URL)"
            )
        try:
            pw = pwd.getpwnam(self.os_user)
        except KeyError:
            raise PostgresUnavailable(
                f"OS user {self.os_user!r} does not exist (the Debian postgresql package creates it)"
            ) from None

        self.datadir = tempfile.mkdtemp(prefix="rbac-pg-", dir="/tmp")
        try:
            if os.geteuid() == 0:
                os.chown(self.datadir, pw.pw_uid, pw.pw_gid)
            os.chmod(self.datadir, 0o700)
            self._run("initdb", "-D", self.datadir, "-A", "trust", "-U", "postgres",
                      "--no-locale", "-E", "UTF8")
            # Retry a couple of times in case the free port is grabbed in between.
            for attempt in range(3):
                self.port = free_port()
                opts = (f"-k {self.datadir} -h 127.0.0.1 -p {self.port} -c fsync=off "
                        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
                logfile = os.path.join(self.datadir, "server.log")
                try:
                    self._run("pg_ctl", "-D", self.datadir, "-o", opts, "-l", logfile,
                              "-w", "-t", "60", "start")
                    break
                except PostgresUnavailable:
                    if attempt == 2:
                        raise
            self._running = True
        except BaseException:
            self._cleanup()
            raise
        self.url = f"{DRIVER}://postgres@127.0.0.1:{self.port}/postgres"
        return self

    def stop(self) -> None:
        if self._running and self.datadir:
            try:
                self._run("pg_ctl", "-D", self.datadir, "-m", "immediate", "-w", "stop")
            except PostgresUnavailable:
                pass
            self._running = False
        self._cleanup()

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- databases ---------------------------------------------------------
    def create_database(self, name: str, *, icu_locale: str | None = None) -> str:
        """(Re)create an empty database ``name`` and return its SQLAlchemy URL.

        The cluster is initialised without a locale, so text sorts in code
        point order (C). ``icu_locale`` (e.g. ``"en-US"``) makes the new
        database collate text by that ICU locale instead, as a production
        database created with a language locale does ("apple" < "Mango").
        """
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"bad database name {name!r}: use [a-z0-9_], max 63 chars")
        if icu_locale is not None and not _ICU_LOCALE_RE.match(icu_locale):
            raise ValueError(f"bad ICU locale {icu_locale!r}")
        import sqlalchemy as sa

        locale = (f" LOCALE_PROVIDER icu ICU_LOCALE '{icu_locale}'" if icu_locale else "")
        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0 '
                                     f"ENCODING 'UTF8'{locale}"))
        finally:
            engine.dispose()
        return _with_database(self.url, name)

    def drop_database(self, name: str) -> None:
        if not _DB_NAME_RE.match(name):
            raise ValueError(f"bad database name {name!r}")
        import sqlalchemy as sa

        engine = sa.create_engine(self.url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            engine.dispose()

    # -- helpers -----------------------------------------------------------
    def _run(self, binary: str, *args: str) -> None:
        cmd = [os.path.join(self.bindir or "", binary), *args]
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", self.os_user, "--", *cmd]
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0:
            log = ""
            if self.datadir and os.path.exists(os.path.join(self.datadir, "server.log")):
                with open(os.path.join(self.datadir, "server.log"), errors="replace") as f:
                    log = f.read()[-2000:]
            raise PostgresUnavailable(
                f"{binary} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                f"{proc.stdout}{proc.stderr}{log}"
            )

    def _cleanup(self) -> None:
        if self.datadir:
            shutil.rmtree(self.datadir, ignore_errors=True)
            self.datadir = None
