"""A member turns off their own two-factor authentication (seed 002: "Users can update
their own: ... Two-factor authentication"), with their password and a recent code,
unless a workspace of theirs requires it of them. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Flask

from crm_app.extensions import db, mail
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.security import mfa
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_mfa import MFA_PAGE, audit_actions, enrolled_directly, set_check, set_policy

TURN_OFF = "/settings/account/mfa/turn-off"


def test_a_member_turns_their_mfa_off_with_their_password(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    user = world.users["member"]
    enrolled_directly(user)
    client = login(user, world.ws)
    set_check(client, user, 0)
    page = client.get(MFA_PAGE).text
    assert f'action="{TURN_OFF}"' in page and 'name="password"' in page
    wrong = client.post(TURN_OFF, data={"password": "not it"})
    assert wrong.status_code == 400 and "Your password is not correct." in wrong.text
    assert mfa.is_enrolled(rbac, user.id) and "auth.failed" in audit_actions()
    with mail.record_messages() as outbox:
        done = client.post(TURN_OFF, data={"password": "password"})
    assert done.status_code == 302 and done.headers["Location"].endswith(MFA_PAGE)
    assert not mfa.is_enrolled(rbac, user.id)
    assert mfa.remaining_recovery_codes(rbac, user.id) == 0
    assert audit_actions().count("auth.mfa_turned_off") == 1
    assert [(m.subject, m.recipients) for m in outbox] == [
        ("Two-factor authentication was turned off", [user.email])]
    assert client.get("/leads/").status_code == 200  # the session stays
    again = client.post(TURN_OFF, data={"password": "password"})
    assert again.status_code == 302 and audit_actions().count("auth.mfa_turned_off") == 1


def test_a_workspace_that_requires_mfa_keeps_it_on(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    user = world.users["member"]
    enrolled_directly(user)
    set_policy(world.ws, "everyone")
    client = login(user, world.ws)
    set_check(client, user, 0)
    page = client.get(MFA_PAGE).text
    assert "Acme Sales requires two-factor authentication of you" in page
    assert f'action="{TURN_OFF}"' not in page
    with mail.record_messages() as outbox:
        refused = client.post(TURN_OFF, data={"password": "password"})
    assert refused.status_code == 409 and "Acme Sales requires" in refused.text
    assert mfa.is_enrolled(rbac, user.id) and outbox == []
    assert "auth.mfa_turned_off" not in audit_actions()


def test_another_workspaces_requirement_counts_too(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    """``dual`` owns Beta, whose policy requires MFA of its privileged members; from Acme,
    where nothing is required, MFA still stays on."""
    user = world.users["dual"]
    enrolled_directly(user)
    set_policy(world.ws2, "privileged")
    client = login(user, world.ws)
    set_check(client, user, 0)
    assert client.post(TURN_OFF, data={"password": "password"}).status_code == 409
    assert mfa.is_enrolled(rbac, user.id)
    set_policy(world.ws2, "nobody")
    assert client.post(TURN_OFF, data={"password": "password"}).status_code == 302
    assert not mfa.is_enrolled(rbac, user.id)


def test_turning_it_off_needs_a_recent_code(app: Flask, world: SimpleNamespace,
                                            login: Any) -> None:
    user = world.users["member"]
    enrolled_directly(user)
    client = login(user, world.ws)
    set_check(client, user, 24 * 60)  # a day ago: past every step-up window
    response = client.post(TURN_OFF, data={"password": "password"})
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/settings/account/verify")
    assert mfa.is_enrolled(rbac, user.id)
    db.session.expire_all()
    assert "auth.mfa_turned_off" not in audit_actions()
