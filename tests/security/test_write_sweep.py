"""Write sweep: every state-changing route, by every member who may not use it.

Routes come from ``app.url_map`` (every POST/PUT/PATCH/DELETE rule, the JSON
API included); :mod:`tests.security.write_specs` builds for each one the
request an honest member would send (a valid form or JSON body, ids of real
objects of the member's workspace) and the list of who may not send it:

* CRM and Flask-Admin routes: per the policy, resource-level (``create``,
  ``bulk``) or per record (``edit``/``delete``: one record outside the
  member's view, expected 404, and one visible but not allowed, expected
  403);
* settings, oversight and API routes: the permission of
  :data:`~tests.security.write_specs.ENDPOINT_RULES` checked with the policy
  (API writes both with the session and with the member's API token);
  Owner-only routes by everyone else; one's own things (profile, tokens,
  logout) by an anonymous client, and someone else's token by every member.

Each attempt must be refused (403/404, 400 for bad input, the login page
for anonymous clients; Flask-Admin's own refusals are listed in
``write_specs``) and the database must be exactly as before (every table
but the append-only audit trail, compared after every attempt; see
``EXCLUDED_TABLES``/``EXCLUDED_COLUMNS`` in the conftest). Another
workspace's ids are the IDOR module's (``test_idor_foreign_ids_in_write_routes``).
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest
from flask import Flask

from tests.conftest import make_app
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.test_idor import judge_attempts
from tests.security.write_specs import family, may_not_attempts, unsafe_routes

FAMILIES = ("crm", "admin", "settings", "api", "auth")


def test_every_state_changing_route_is_classified() -> None:
    """Each POST/PUT/PATCH/DELETE route has a write rule (or the sweep fails naming it)."""
    app = make_app("sqlite://")
    found = {family(app, rule) for rule, _method in unsafe_routes(app)}
    assert found == set(FAMILIES), found


@pytest.mark.parametrize("route_family", FAMILIES)
def test_write_sweep(app: Flask, security_world: SimpleNamespace, probe_stats: Counter[str],
                     route_family: str) -> None:
    """Every state-changing route of one family, by each member who may not: refused,
    and nothing changed.

    Also fails if a route of the family got no attempt at all (nobody may
    not use it?), so the sweep cannot quietly lose a route.
    """
    w = security_world
    routes = [(rule, method) for rule, method in unsafe_routes(app)
              if family(app, rule) == route_family]
    assert routes, f"no state-changing {route_family} routes"
    attempts = []
    unattempted = []
    for rule, method in routes:
        found = may_not_attempts(app, w, rule, method)
        if not found:
            unattempted.append(f"{method} {rule.rule}")
        attempts += found
    assert not unattempted, f"routes nobody was refused on: {unattempted}"
    failures = judge_attempts(app, w, attempts, probe_stats, "write_attempts", "write_leaks")
    assert not failures, (f"{len(failures)} of {len(attempts)} {route_family} writes were not "
                          "refused cleanly:\n" + "\n".join(failures[:40]))
