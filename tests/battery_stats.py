"""The attack battery's counters, summed over xdist workers and printed at the end.

Loaded by ``tests/conftest.py`` (``pytest_plugins``) so that the controller
process of ``pytest -n N``, which collects no test, still has the summary
hook: each worker hands its counters over in ``workeroutput`` when it
finishes, and the controller adds them up.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

# -- probe counters ------------------------------------------------------------------

#: Where the session's counters live (``config.stash``), read by the summary hook.
STATS_KEY = pytest.StashKey[Counter[str]]()

#: Counter names and the summary line each one belongs to, in display order.
SUMMARY_LINES: tuple[tuple[str, str], ...] = (
    ("idor_probes", "IDOR probes: {idor_probes}, leaks: {idor_leaks}"),
    ("write_attempts", ("Write attempts refused: {write_attempts}, changes leaked: "
                        "{write_leaks}")),
    ("get_reads", "GET requests with ids in view: {get_reads}, writes: {get_writes}"),
    ("csrf_routes", ("CSRF: form routes refused without a token: {csrf_routes}, "
                     "API session writes refused: {csrf_api_routes}, holes: {csrf_holes}")),
    ("agreement_examples", ("Policy/filter agreement: {agreement_examples} examples, "
                            "disagreements: {agreement_disagreements}")),
    ("hidden_fields_swept", ("Hidden-field sweep: fields {hidden_fields_swept}, responses "
                             "{hidden_responses}, leaks {hidden_leaks}")),
    ("odd_query_values", ("Odd query values (\"²\", \"１\", 30 nines ...) on every GET "
                          "route: requests {odd_query_values}, failed {odd_query_failures}")),
    ("header_responses", ("Security headers checked on {header_responses} responses, "
                          "missing or loose: {header_missing}")),
    ("brute_force_attempts", ("Brute force: sign-in attempts {brute_force_attempts}, passwords "
                              "checked {brute_force_checked}, throttled {brute_force_throttled}, "
                              "rate-limited {brute_force_limited}, let in {brute_force_let_in}")),
    ("session_copy_requests", ("Copied cookie after revoke: requests {session_copy_requests}, "
                               "accepted {session_copy_accepted}")),
    ("mfa_sweep_requests", ("Unenrolled MFA sweep: requests {mfa_sweep_requests}, reached "
                            "{mfa_sweep_reached}")),
    ("approval_self_attempts", ("Approvals: self-approval attempts {approval_self_attempts}, "
                                "succeeded {approval_self_successes}; without the permission "
                                "{approval_unauthorised_attempts}, succeeded "
                                "{approval_unauthorised_successes}; replayed or forged download "
                                "links {approval_link_attempts}, succeeded "
                                "{approval_link_successes}; requester without their rights "
                                "{approval_lost_rights_attempts}, succeeded "
                                "{approval_lost_rights_successes}")),
    ("approval_get_requests", ("Approvals: GET requests with every operation needing approval "
                               "{approval_get_requests}, requests recorded "
                               "{approval_get_recorded}")),
    ("adoption_lines_multitenant", ("Adoption lines: multi-tenant {adoption_lines_multitenant} "
                                    "(target 25), single-tenant {adoption_lines_singletenant} "
                                    "(target 10)")),
)


@pytest.fixture
def probe_stats(request: pytest.FixtureRequest) -> Counter[str]:
    """The session-wide counters of the attack battery (add to them, never reset).

    They are printed by :func:`pytest_terminal_summary` at the end of the run,
    so the count of probes is reported even without ``-s``.
    """
    stash = request.config.stash
    if STATS_KEY not in stash:
        stash[STATS_KEY] = Counter()
    return stash[STATS_KEY]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int,
                            config: pytest.Config) -> None:
    """Report what the attack battery tried, e.g. ``IDOR probes: 1234, leaks: 0``."""
    stats = config.stash.get(STATS_KEY, None)
    if not stats:
        return
    terminalreporter.section("attack battery")
    for key, line in SUMMARY_LINES:
        if stats.get(key):
            terminalreporter.write_line(line.format_map(_Zero(stats)))


class _Zero(dict[str, int]):
    """``format_map`` source answering 0 for counters never incremented."""

    def __missing__(self, key: str) -> int:
        return 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """In an xdist worker, hand the counters to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output[_OUTPUT_KEY] = dict(session.config.stash.get(STATS_KEY, Counter()))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """In the xdist controller, add up what a finished worker counted."""
    counted = getattr(node, "workeroutput", {}).get(_OUTPUT_KEY)
    if counted:
        stash = node.config.stash
        if STATS_KEY not in stash:
            stash[STATS_KEY] = Counter()
        stash[STATS_KEY].update(counted)


_OUTPUT_KEY = "rbac_battery_stats"

