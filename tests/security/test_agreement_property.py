"""The filter/check agreement property, run longer as part of the attack battery.

Same property as ``tests/test_agreement.py`` (random stacked and inherited
roles, denies, conditions with NULLs, team and department scopes, visibility
levels and sharing agreements from another workspace, text conditions on
mixed-case and accented names, and condition values the columns cannot hold,
stored past the service to fail closed), with
``RBAC_SECURITY_AGREEMENT_EXAMPLES`` examples per backend (default 400), and
``RBAC_SECURITY_ICU_EXAMPLES`` (default 100) on a PostgreSQL database that
collates text by ICU ``en-US`` rather than by code point.
The count is reported in the battery's summary.
"""

from __future__ import annotations

import os
from collections import Counter
from types import SimpleNamespace

from flask import Flask

from tests.conftest import app_with_tables, build_world
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_agreement import run_property

EXAMPLES = int(os.environ.get("RBAC_SECURITY_AGREEMENT_EXAMPLES", "400"))
ICU_EXAMPLES = int(os.environ.get("RBAC_SECURITY_ICU_EXAMPLES", "100"))


def counted_property(app: Flask, world: SimpleNamespace, examples: int,
                     probe_stats: Counter[str]) -> int:
    """Run the agreement property and add its examples and disagreements to the summary."""
    try:
        ran, disagreements = run_property(app, world, examples)
    except AssertionError:
        probe_stats["agreement_disagreements"] += 1
        raise
    probe_stats["agreement_examples"] += ran
    probe_stats["agreement_disagreements"] += disagreements
    return ran


def test_policy_and_filter_agree_at_length(app: Flask, world: SimpleNamespace,
                                           probe_stats: Counter[str]) -> None:
    assert counted_property(app, world, EXAMPLES, probe_stats) >= EXAMPLES


def test_policy_and_filter_agree_under_icu_collation(pg_icu_url: str,
                                                     probe_stats: Counter[str]) -> None:
    """The same property where the database orders text by ICU en-US ("apple" < "Mango")."""
    with app_with_tables(pg_icu_url) as app:
        examples = counted_property(app, build_world(), ICU_EXAMPLES, probe_stats)
    assert examples >= ICU_EXAMPLES
