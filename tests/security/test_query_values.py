"""Odd values in query strings: every GET route answers them without a 500.

Ids, pages and counts arrive as text. ``str.isdigit()`` is true of "²",
which ``int()`` then refuses with a ``ValueError``; fullwidth "１" is a digit
too; a long run of nines passes a digits test and overflows a column. Each
GET route of the URL map is asked (as the Owner, who reaches them all) with
every query parameter the code reads set to each value at once, and, for
the parameters named in the module of the route's view, one at a time, so
that a parameter refused first cannot hide a later one that fails.
"""

from __future__ import annotations

import inspect
import pathlib
import re
from collections import Counter
from types import SimpleNamespace
from urllib.parse import urlencode

from flask import Flask

from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.conftest import logged_in
from tests.security.test_get_writes import get_urls

ROOT = pathlib.Path(__file__).resolve().parents[2]
#: Values that pass a careless digits test or a careless int().
ODD_VALUES = ("²", "１", "9" * 30, "-1", "1e3", " 7 ", "0x1f")
#: Parameters read through a variable name (``args.get(name)``), as the code names them.
READ_BY_NAME = ("owner", "department", "start", "end", "ids", "page", "before", "move_to")
_READ = re.compile(r"""args(?:\.get(?:list)?\(\s*|\[\s*|,\s*)["']([A-Za-z][A-Za-z0-9_\-]*)["']""")


def parameters_read(source: str) -> set[str]:
    """The query parameter names a source text reads from ``args``."""
    return set(_READ.findall(source))


def all_parameters() -> list[str]:
    names = set(READ_BY_NAME)
    for package in ("crm_rbac_plugin", "crm_app"):
        for path in (ROOT / package).rglob("*.py"):
            names |= parameters_read(path.read_text())
    return sorted(names)


def test_the_parameter_scan_finds_what_the_views_read() -> None:
    names = all_parameters()
    assert {"page", "per_page", "sort", "dir", "q", "before", "figure", "tab"} <= set(names)


def test_no_get_route_fails_on_odd_query_values(app: Flask, security_world: SimpleNamespace,
                                                probe_stats: Counter[str]) -> None:
    w = security_world
    prober = w.prober["owner"]
    client = logged_in(app, prober.user, prober.workspace)
    token = {"Authorization": f"Bearer {prober.token}"}
    names = all_parameters()
    failures: list[str] = []
    asked = 0
    for url in get_urls(app, w, prober):
        path, _, query = url.partition("?")
        view = app.view_functions.get(app.url_map.bind("crm.test").match(path)[0])
        module = inspect.getmodule(inspect.unwrap(view)) if view is not None else None
        own = sorted(parameters_read(inspect.getsource(module))) if module is not None else []
        asks = [{n: value for n in names} for value in ODD_VALUES]
        asks += [{n: "²"} for n in own] + [{n: "9" * 30} for n in own]
        for params in asks:
            full = f"{path}?{urlencode(params)}" + (f"&{query}" if query else "")
            response = client.get(full, headers=token if url.startswith("/api/") else {})
            asked += 1
            if response.status_code >= 500:
                failures.append(f"{response.status_code} GET {full[:160]}")
    probe_stats["odd_query_values"] += asked
    probe_stats["odd_query_failures"] += len(failures)
    assert not failures, f"{len(failures)} of {asked} requests failed:\n" + "\n".join(
        sorted(set(failures))[:40])
    assert asked > 1000, asked
