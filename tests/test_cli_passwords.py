"""Passwords set from the command line meet the password rules; the demo seed is the exception.

``flask demo set-password EMAIL`` is the CLI path that sets a typed
password: it applies the strictest rules of the account's workspaces and,
on a refusal, prints the reasons as a usage error and writes nothing.
``flask demo seed`` sets the demo's one fixed password below the rules, on
purpose and documented, so that a fresh checkout signs in.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_app.seed import PASSWORD
from crm_rbac_plugin.security import passwords
from crm_rbac_plugin.security.policy import save_policy

STRONG = "violet tractor harbour quietly"


def stored(user: User) -> tuple[str, str]:
    db.session.expire_all()
    fresh = db.session.get(User, user.id)
    assert fresh is not None
    return fresh.password_hash, fresh.session_token


def set_password(app: Flask, *args: str, input: str | None = None) -> tuple[int, str]:
    result = app.test_cli_runner().invoke(args=["demo", "set-password", *args], input=input)
    return result.exit_code, result.output


@pytest.mark.parametrize(("password", "reason"), [
    ("short1!", "Use at least 12 characters."),
    ("password1234", "too common or too easy to guess"),
    ("aaaaaaaaaaaa", "too common or too easy to guess"),
    ("member@example.test", "too common or too easy to guess"),
])
def test_a_weak_password_is_a_usage_error_and_writes_nothing(
        app: Flask, world: SimpleNamespace, password: str, reason: str) -> None:
    user = world.users["member"]
    before = stored(user)
    code, output = set_password(app, user.email, "--password", password)
    assert code == 2 and "Invalid value for '--password'" in output and reason in output
    assert stored(user) == before


def test_the_strictest_workspace_rule_applies(app: Flask, world: SimpleNamespace) -> None:
    """dual belongs to both workspaces: ws2's longer minimum is the one in force."""
    save_policy(rbac, world.ws2.id, {"password_min_length": 40})
    db.session.commit()
    user = world.users["dual"]
    before = stored(user)
    code, output = set_password(app, user.email, "--password", STRONG)
    assert code == 2 and "Use at least 40 characters." in output
    assert stored(user) == before
    code, _ = set_password(app, world.users["member"].email, "--password", STRONG)
    assert code == 0  # member is in ws only, whose rules the same password meets


def test_the_prompt_asks_twice_and_applies_the_rules(app: Flask, world: SimpleNamespace) -> None:
    user = world.users["viewer"]
    before = stored(user)
    code, output = set_password(app, user.email, input="aaaaaaaaaaaa\naaaaaaaaaaaa\n")
    assert code == 2 and "too common" in output and stored(user) == before
    code, output = set_password(app, user.email, input=f"{STRONG}\n{STRONG}\n")
    assert code == 0, output
    assert stored(user)[0] != before[0]


def test_a_good_password_is_set_and_ends_every_session(app: Flask,
                                                       world: SimpleNamespace) -> None:
    user = world.users["member"]
    old_hash, old_token = stored(user)
    code, output = set_password(app, user.email.upper(), "--password", STRONG)
    assert code == 0 and "Password set for member@example.test" in output
    new_hash, new_token = stored(user)
    assert new_hash != old_hash and new_token != old_token
    assert db.session.get(User, user.id).check_password(STRONG)


def test_an_unknown_address_is_a_usage_error(app: Flask, world: SimpleNamespace) -> None:
    code, output = set_password(app, "nobody@example.test", "--password", STRONG)
    assert code == 2 and "no account has the address" in output


def test_the_demo_seed_keeps_its_documented_password(app: Flask) -> None:
    """The seed bypasses the rules for its one fixed word, so the demo signs in."""
    assert passwords.check_password(PASSWORD)  # below the rules ...
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--scale", "0.02"])
    assert result.exit_code == 0, result.output
    user = db.session.query(User).filter(User.email.like("%@%")).first()
    assert user is not None and user.check_password(PASSWORD)  # ... and set by the seed
