"""Bad arguments to the CLI are usage errors naming the option, never tracebacks:
ids past what an id column holds, an instant that leaves the calendar, an unknown
role next to custom ones, a NaN scale, an unknown status. Nothing is written."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import Flask

from crm_app.rbac_setup import rbac
from crm_rbac_plugin.roles import editing
from tests.rbac_helpers import access_of, fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import policy_snapshot

HUGE = "999999999999999999999999999999"
AS = ["--workspace", "acme", "--as", "owner@example.test"]


@pytest.mark.parametrize("args", [
    ["rbac", "who-could", "--workspace", "acme", "--resource", "leads", "--record", HUGE,
     "--at", "2026-01-01T00:00"],
    ["rbac", "alerts", "ack", HUGE, *AS],
    ["rbac", "alerts", "resolve", HUGE, *AS],
    ["rbac", "approvals", "approve", HUGE, "--workspace", "acme", "--as", "owner@example.test"],
    ["rbac", "approvals", "reject", HUGE, "--workspace", "acme", "--as", "owner@example.test"],
    ["rbac", "review", "report", "--workspace", "acme", "--run", HUGE],
    ["rbac", "sharing", "end", "--workspace", "acme", "revoke", HUGE,
     "--as", "owner@example.test"],
], ids=lambda args: " ".join(args[1:3]))
def test_an_id_past_the_integer_range_is_a_usage_error(
        app: Flask, world: SimpleNamespace, args: list[str]) -> None:
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "is not in the range" in result.output


def test_bad_values_are_refused_cleanly(app: Flask, world: SimpleNamespace) -> None:
    editing.create_role(rbac, access_of(world.members["owner"]), name="Custom helpers")
    rbac.db.session.commit()
    before = policy_snapshot()
    runner = app.test_cli_runner()
    cases = {
        "explain": (["rbac", "explain", "leads.view", "--user", "owner@example.test",
                     "--workspace", "acme", "--record", HUGE], "no leads record"),
        "who-could --at": (["rbac", "who-could", "--workspace", "acme", "--resource", "leads",
                            "--record", "1", "--at", "0001-01-01T00:00:00+05:00"], "--at:"),
        "adopt --role": (["rbac", "adopt", "--workspace", "acme", "--role", "nope",
                          "--dry-run"], "unknown role 'nope'"),
        "approvals --status": (["rbac", "approvals", "list", "--workspace", "acme",
                                "--status", "nope"], "'nope' is not one of"),
        "demo seed --scale": (["demo", "seed", "--scale", "nan"], "not a finite number"),
    }
    for name, (args, message) in cases.items():
        result = runner.invoke(args=args)
        assert result.exit_code in (1, 2), (name, result.output, result.exception)
        assert isinstance(result.exception, SystemExit), (name, repr(result.exception))
        assert message in result.output, (name, result.output)
    assert policy_snapshot() == before
