"""The workspace security policy (defaults, validated edits) and the password rules.

Each refusal names its field and changes nothing; the password rules apply
where the plugin sets a password (accepting an invitation, the profile page)
and show their reason next to the field.
"""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db, mail
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.security import (
    PasswordRules,
    check_password,
    password_rules_for_user,
    policy_for,
    save_policy,
    validate_policy,
)
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import role

STRONG = "plum-orbit-canvas-47"


# -- the policy ------------------------------------------------------------------------


def test_a_workspace_without_a_row_has_the_defaults_and_reading_writes_nothing(
        app: Flask, world: SimpleNamespace) -> None:
    policy = policy_for(rbac, world.ws.id)
    assert (policy.mfa, policy.step_up_minutes, policy.password_min_length,
            policy.password_min_score, policy.saved) == ("nobody", 15, 12, 3, False)
    assert (policy.idle_minutes_privileged, policy.absolute_minutes_privileged,
            policy.idle_minutes_member, policy.absolute_minutes_member) == (30, 720, 480, 10080)
    assert rbac.policy_for(world.ws.id) == policy
    assert db.session.scalar(sa.select(sa.func.count()).select_from(
        rbac.models.SecurityPolicy)) == 0


def test_save_policy_stores_a_valid_edit(app: Flask, world: SimpleNamespace) -> None:
    row = save_policy(rbac, world.ws.id, {"mfa": "privileged", "password_min_length": "14",
                                          "ip_allowlist": " 10.0.0.0/8\n2001:db8::/32 \n"},
                      membership_id=world.members["owner"].id)
    db.session.commit()
    policy = policy_for(rbac, world.ws.id)
    assert policy.saved and policy.mfa == "privileged" and policy.password_min_length == 14
    assert [str(n) for n in policy.networks] == ["10.0.0.0/8", "2001:db8::/32"]
    assert row.updated_by_membership_id == world.members["owner"].id
    assert policy_for(rbac, world.ws2.id).saved is False  # the other workspace keeps defaults


@pytest.mark.parametrize(("changes", "field", "words"), [
    ({"mfa": "sometimes"}, "mfa", "MFA must be one of nobody, privileged, everyone"),
    ({"mfa": ["everyone"]}, "mfa", "MFA must be one of"),
    ({"ip_allowlist": "10.0.0.0/8\n10.0.0.300/24"}, "ip_allowlist", "line 2"),
    ({"ip_allowlist": "everyone"}, "ip_allowlist", "not an IPv4 or IPv6 network"),
    ({"idle_minutes_member": 0}, "idle_minutes_member", "between 1 and"),
    ({"idle_minutes_member": "ten"}, "idle_minutes_member", "whole number"),
    ({"idle_minutes_member": True}, "idle_minutes_member", "whole number"),
    ({"absolute_minutes_privileged": 10, "idle_minutes_privileged": 20},
     "idle_minutes_privileged", "cannot be longer than"),
    ({"idle_minutes_member": 20000}, "idle_minutes_member", "cannot be longer than"),
    ({"step_up_minutes": -5}, "step_up_minutes", "between 1 and 1440"),
    ({"max_sessions": 0}, "max_sessions", "between 1 and 100"),
    ({"password_min_length": 4}, "password_min_length", "between 8 and 128"),
    ({"password_min_score": 5}, "password_min_score", "between 0 and 4"),
    ({"colour": "red"}, "colour", "unknown policy setting"),
])
def test_a_bad_edit_names_its_field_and_saves_nothing(
        app: Flask, world: SimpleNamespace, changes: dict[str, Any], field: str,
        words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        save_policy(rbac, world.ws.id, changes)
    assert caught.value.field == field and words in caught.value.message
    db.session.rollback()
    assert policy_for(rbac, world.ws.id).saved is False


def test_validate_policy_keeps_unchanged_values_and_clears_an_optional_cap() -> None:
    capped = validate_policy({"max_sessions": "3"})
    assert capped.max_sessions == 3 and capped.mfa == "nobody"
    assert validate_policy({"max_sessions": ""}, capped).max_sessions is None


# -- the password rules --------------------------------------------------------------------


@pytest.mark.parametrize(("password", "reasons"), [
    ("aaaaaaaa", ["Use at least 12 characters.", "This password is too common"]),
    ("password1234", ["This password is too common or too easy to guess. This is a very "
                      "common password."]),
    ("aaaaaaaaaaaaaaaa", ["This password is too common or too easy to guess. Repeats"]),
    ("", ["Use at least 12 characters."]),
    ("plum-orbit-1", []),
    (STRONG, []),
])
def test_check_password_gives_the_reasons_in_words(password: str, reasons: list[str]) -> None:
    found = check_password(password, user_inputs=[], policy=None)
    assert len(found) == len(reasons), found
    for got, expected in zip(found, reasons, strict=True):
        assert got.startswith(expected), got


def test_the_accounts_own_address_does_not_make_a_strong_password() -> None:
    address = "jane.sampleton@example.test"
    assert check_password("jane.sampleton1", user_inputs=[], policy=None) == []
    assert check_password("jane.sampleton1", user_inputs=[address], policy=None)


def test_a_policy_sets_the_length_and_the_score() -> None:
    assert check_password(STRONG, policy=PasswordRules(min_length=24, min_score=0)) == [
        "Use at least 24 characters."]
    assert check_password("aaaaaaaaaaaaaaaa", policy=PasswordRules(min_score=0)) == []
    long = "x" * 70 + "plum-orbit-canvas-47" * 5  # beyond what zxcvbn scores: the prefix is
    assert check_password(long) != [] and len(long) > 72


def test_the_strictest_rules_of_the_accounts_workspaces_apply(
        app: Flask, world: SimpleNamespace) -> None:
    save_policy(rbac, world.ws.id, {"password_min_length": 16})
    save_policy(rbac, world.ws2.id, {"password_min_score": 4})
    dual = world.users["dual"]  # in both workspaces
    assert password_rules_for_user(rbac, dual.id) == PasswordRules(16, 4)
    assert password_rules_for_user(rbac, world.users["outsider"].id) == PasswordRules(12, 4)
    assert password_rules_for_user(rbac, None) == PasswordRules(12, 3)
    assert password_rules_for_user(rbac, None, [world.ws.id]) == PasswordRules(16, 3)


def _invitation_token(owner: Any, world: SimpleNamespace, email: str) -> str:
    with mail.record_messages() as outbox:
        owner.post("/settings/members/invite",
                   data={"email": email, "roles": [role(world, "member").id]})
    match = re.search(r"/settings/invitations/([A-Za-z0-9_.\-]+)", outbox[0].body)
    assert match
    return match.group(1)


def field_errors(page: str, field: str) -> str:
    """The errors shown next to ``field`` (the list the field's input points to)."""
    match = re.search(rf'<ul[^>]*id="{field}-errors"[^>]*>(.*?)</ul>', page, re.S)
    return re.sub(r"<[^>]+>", " ", match.group(1)) if match else ""


def test_accepting_an_invitation_refuses_a_weak_password_next_to_the_field(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    save_policy(rbac, world.ws.id, {"password_min_length": 14})
    db.session.commit()
    token = _invitation_token(login(world.users["owner"], world.ws), world, "weak@example.test")
    anon = app.test_client()
    for weak, reason in [("password1234", "Use at least 14 characters."),
                         ("aaaaaaaaaaaaaaaaa", "too common or too easy to guess"),
                         ("weak@example.test", "too common or too easy to guess")]:
        page = anon.post(f"/settings/invitations/{token}",
                         data={"name": "Weak", "password": weak, "confirm": weak})
        assert page.status_code == 400 and reason in field_errors(page.text, "password")
    user = db.session.scalar(sa.select(User).where(User.email == "weak@example.test"))
    assert not user.password_hash  # nothing was set
    accepted = anon.post(f"/settings/invitations/{token}",
                         data={"name": "Strong", "password": STRONG, "confirm": STRONG})
    assert accepted.status_code == 302
    db.session.expire_all()
    assert user.check_password(STRONG)


def test_the_profile_refuses_a_weak_new_password_and_keeps_the_old_one(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    member = login(world.users["member"], world.ws)
    page = member.post("/settings/profile", data={
        "name": "Member", "current_password": "password", "new_password": "aaaaaaaa"})
    assert page.status_code == 400
    errors = field_errors(page.text, "new_password")
    assert "Use at least 12 characters." in errors and "too common" in errors
    db.session.expire_all()
    assert world.users["member"].check_password("password")
    done = member.post("/settings/profile", data={
        "name": "Member", "current_password": "password", "new_password": STRONG})
    assert done.status_code == 302
    db.session.expire_all()
    assert world.users["member"].check_password(STRONG)
