"""Account-wide actions and policies need standing over the account, not an invitation.

Anyone can create a workspace and invite any address; the invitation, until
accepted, gives that workspace no power over the account (MFA reset, sign
out everywhere), no view of it (MFA status, live sessions) and imposes none
of its policies (session cap, password rules). An account that owns another
workspace is reset or signed out everywhere only by an Owner of that
workspace too.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import team, workspaces
from crm_rbac_plugin.security import mfa, password_rules_for_user, sessions, totp
from crm_rbac_plugin.security.sessions import session_cap
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_sessions import assert_alive, revoked_events, row_of, sign_in


def _enrol(user: Any) -> None:
    cred = mfa.start_enrolment(rbac, user.id)
    db.session.flush()
    now = sessions.now()
    mfa.confirm_enrolment(rbac, user.id, totp.code_at_step(cred.secret, totp.step_of(now)),
                          now=now)
    db.session.commit()


def _invite_into_beta(world: SimpleNamespace, email: str) -> Any:
    """Beta's Owner (``dual``) invites ``email`` as a Member; the pending membership."""
    M, R = rbac.models.Membership, rbac.models.Role
    owner = db.session.scalar(sa.select(M).where(M.user_id == world.users["dual"].id,
                                                 M.workspace_id == world.ws2.id))
    member_role = db.session.scalar(sa.select(R).where(R.workspace_id == world.ws2.id,
                                                       R.key == "member"))
    invitation, _ = team.invite(rbac, rbac.access_for(owner), email, [member_role], send=False)
    db.session.commit()
    assert invitation.membership.status == "pending"
    return invitation.membership


def test_a_pending_invitation_gives_no_power_over_the_account(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    victim = world.users["member"]
    _enrol(victim)
    browser = sign_in(app, "member@example.test")
    pending = _invite_into_beta(world, "member@example.test")
    beta_owner = login(world.users["dual"], world.ws2)
    url = f"/settings/members/{pending.id}"
    page = beta_owner.get(url)
    assert page.status_code == 200
    assert 'id="mfa-status"' not in page.text and "member-sessions" not in page.text
    reset = beta_owner.post(url + "/mfa/reset")
    assert reset.status_code == 403 and "not an active member" in reset.text
    signed_out = beta_owner.post(url + "/sessions/sign-out")
    assert signed_out.status_code == 403 and "not an active member" in signed_out.text
    assert mfa.is_enrolled(rbac, victim.id)
    assert row_of(browser).revoked_at is None and not revoked_events()


def test_a_pending_invitation_imposes_no_policy(app: Flask, world: SimpleNamespace) -> None:
    P = rbac.models.SecurityPolicy
    pending = _invite_into_beta(world, "member@example.test")
    db.session.add(P(workspace_id=world.ws2.id, max_sessions=1, password_min_length=128))
    db.session.commit()
    assert session_cap(rbac, pending.user_id) is None
    assert password_rules_for_user(rbac, pending.user_id).min_length < 128
    # Accepting the invitation is what brings its workspace's rules.
    assert password_rules_for_user(rbac, pending.user_id, [world.ws2.id]).min_length == 128
    first, second = sign_in(app, "member@example.test"), sign_in(app, "member@example.test")
    assert_alive(first)
    assert_alive(second)


def test_an_owner_elsewhere_is_signed_out_only_by_an_owner_there(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """``dual`` is a Viewer of Acme and the Owner of Beta: Acme's Admin and Acme's Owner
    may not sign them out everywhere (their Beta session too), nor reset their MFA."""
    _enrol(world.users["dual"])
    browser = sign_in(app, "dual@example.test")
    url = f"/settings/members/{world.members['dual'].id}"
    for key in ("admin", "owner"):
        actor = login(world.users[key], world.ws)
        page = actor.get(url)
        assert page.status_code == 200 and "/sessions/sign-out" not in page.text
        refused = actor.post(url + "/sessions/sign-out")
        assert refused.status_code == 403 and "Owner of another workspace" in refused.text
    refused = login(world.users["owner"], world.ws).post(url + "/mfa/reset")
    assert refused.status_code == 403 and "Owner of another workspace" in refused.text
    assert mfa.is_enrolled(rbac, world.users["dual"].id)
    assert row_of(browser).revoked_at is None and not revoked_events()


def test_an_owner_of_every_workspace_of_the_account_may(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """Acme's Owner who also owns Beta stands over ``dual`` in both: allowed."""
    M, R = rbac.models.Membership, rbac.models.Role
    owner_role = db.session.scalar(sa.select(R).where(R.workspace_id == world.ws2.id,
                                                      R.is_owner.is_(True)))
    workspaces.add_member(rbac, world.ws2, world.users["owner"], [owner_role])
    db.session.commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(M).where(
        M.user_id == world.users["owner"].id)) == 2
    _enrol(world.users["dual"])
    url = f"/settings/members/{world.members['dual'].id}"
    owner = login(world.users["owner"], world.ws)
    assert owner.post(url + "/mfa/reset").status_code == 302
    assert not mfa.is_enrolled(rbac, world.users["dual"].id)
    assert owner.post(url + "/sessions/sign-out").status_code == 302
