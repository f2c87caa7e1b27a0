"""Numbers and booleans of the JSON API are JSON numbers and booleans, never text.

A form sends text, so the pages parse ``" 1 "`` into 1; a JSON client that
sends text where the API documents an integer, a number or a boolean has a
bug, and reading its text would store a value it did not mean to send
(``"0"`` is true in Python, ``"1e3"`` parses as a float). Every such field
refuses text with a 400 naming the field, and so does a boolean where an
integer is expected (``true`` is the integer 1 in Python); nothing changes.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from crm_rbac_plugin.certification import runs as certification_runs
from tests.rbac_helpers import access_of, fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.test_bad_input import Raised, Sender
from tests.security.test_escalation import changed_tables, snapshot
from tests.test_settings_ui import role

#: An integer field's text forms and the boolean that Python counts as 1.
NOT_INTEGERS: tuple[Any, ...] = (" 1 ", "5", "1e3", True)
#: A boolean field's text and integer forms.
NOT_BOOLEANS: tuple[Any, ...] = ("true", "false", "0", 1)
#: A field that takes a boolean or an integer (an approval threshold): text only.
TEXT: tuple[Any, ...] = ("true", " 1 ", "0")

SECURITY_INTEGERS = ("step_up_minutes", "idle_minutes_privileged", "absolute_minutes_privileged",
                     "idle_minutes_member", "absolute_minutes_member", "max_sessions",
                     "password_min_length", "password_min_score")
ALERT_INTEGERS = ("export_rows_per_hour", "refusals_per_10_minutes", "deletions_per_hour",
                  "new_address_days", "business_start_hour", "business_end_hour")
APPROVAL_SWITCHES = ("assign_privileged_role", "sharing", "delete_role", "reassign", "plan",
                     "security_policy", "approval_policy")


@pytest.fixture
def owner(app: Flask, world: SimpleNamespace, login: Any) -> Sender:
    """The Owner, by token: text is refused even for them."""
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "typed input")
    db.session.commit()
    return Sender(app, plaintext, login(world.users["owner"], world.ws))


def cases(world: SimpleNamespace) -> list[tuple[str, str, dict[str, Any], str]]:
    """(method, path, body, field named in the refusal) for every typed field of a body."""
    junior = role(world, "junior_rep").id
    viewer = world.members["viewer"].id
    sales = world.departments["sales"].id
    run = certification_runs.start_run(rbac, access_of(world.members["owner"]), "deals")
    db.session.commit()
    out: list[tuple[str, str, dict[str, Any], str]] = []

    def each(method: str, path: str, field: str, values: tuple[Any, ...],
             make: Any = None, named: str | None = None) -> None:
        for value in values:
            body = make(value) if make else {field: value}
            out.append((method, path, body, named or field))

    each("post", "/roles", "parent_id", NOT_INTEGERS, lambda v: {"name": "Typed", "parent_id": v})
    each("patch", f"/roles/{junior}", "parent_id", NOT_INTEGERS)
    each("post", f"/members/{viewer}/roles", "role_id", NOT_INTEGERS)
    each("post", f"/departments/{sales}/roles", "role_id", NOT_INTEGERS)
    for field in SECURITY_INTEGERS:
        each("patch", "/security-policy", field, NOT_INTEGERS)
    for field in ALERT_INTEGERS:
        each("patch", "/alert-settings", field, NOT_INTEGERS)
    for field in ("alert_id",):
        each("post", "/alerts/acknowledge", field, NOT_INTEGERS)
        each("post", "/alerts/resolve", field, NOT_INTEGERS)
    for field in APPROVAL_SWITCHES:
        each("patch", "/approvals/policy", field, TEXT,
             lambda v, f=field: {"operations": {f: v}}, f"operations.{field}")
    for field in ("export", "bulk_delete"):
        each("patch", "/approvals/policy", field, NOT_INTEGERS,
             lambda v, f=field: {"operations": {f: v}}, f"operations.{field}")
    for field in ("approvals_required", "expiry_hours"):
        each("patch", "/approvals/policy", field, NOT_INTEGERS)
    each("patch", "/reviews/schedule", "interval_days", NOT_INTEGERS)
    each("patch", "/reviews/schedule", "require_reason", NOT_BOOLEANS)
    each("post", f"/reviews/runs/{run.id}/decisions", "item_id", NOT_INTEGERS,
         lambda v: {"item_id": v, "decision": "keep"})
    each("post", "/workspace/transfer", "membership_id", NOT_INTEGERS,
         lambda v: {"membership_id": v, "password": "x"})
    return out


def test_text_where_the_api_expects_a_number_or_boolean_is_a_400_naming_the_field(
        world: SimpleNamespace, owner: Sender) -> None:
    typed = cases(world)
    before = snapshot()
    problems = []
    for method, path, body, field in typed:
        response = owner.api(method, path, json=body)
        label = f"{method.upper()} {path} {body!r}"
        if isinstance(response, Raised):
            problems.append(f"{label}: 500 ({response.text})")
            continue
        got = response.json if response.is_json else None
        if response.status_code != 400 or not isinstance(got, dict) or got.get("field") != field:
            problems.append(f"{label}: {response.status_code} {response.text[:160]}")
        after = snapshot()
        if after != before:
            problems.append(f"{label}: wrote to {changed_tables(before, after)}")
            before = after
    assert not problems, f"{len(problems)} of {len(typed)} cases:\n" + "\n".join(problems)


def test_a_workspace_id_sent_as_text_to_restore_is_a_400_naming_it(
        world: SimpleNamespace, login: Any) -> None:
    """Restoring takes a session (never a token); its id is a JSON integer too."""
    client = login(world.users["owner"], world.ws)
    before = snapshot()
    for value in (" 1 ", str(world.ws.id), True):
        response = client.post("/api/v1/workspaces/restore", json={"workspace_id": value})
        assert response.status_code == 400, response.text[:200]
        assert response.json["field"] == "workspace_id"
    assert snapshot() == before
