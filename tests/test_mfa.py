"""Two-factor authentication: enrolment, codes spent once, the workspace policy, step-up, reset.

Codes are computed with pyotp from the secret the page shows, as a member's
authenticator app would; the services are also driven with a controlled
clock, so a step's boundaries are tested without sleeping.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from types import SimpleNamespace
from typing import Any

import pyotp
import pytest
import sqlalchemy as sa
from flask import Flask, current_app, url_for
from flask.testing import FlaskClient

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens, workspaces
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.policy import ALLOW, Access, Rule
from crm_rbac_plugin.security import mfa, sessions, stepup, totp
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

MFA_PAGE = "/settings/account/mfa"
VERIFY_PAGE = "/settings/account/verify"


# -- helpers ------------------------------------------------------------------------------------


def secret_on_page(html: str) -> str:
    """The secret the set-up page shows as text (grouped by four), as a person would copy it."""
    match = re.search(r'value="([A-Z2-7 ]+)" data-mfa-secret', html)
    assert match, "the set-up page shows the secret as text"
    return match.group(1).replace(" ", "")


def codes_on_page(html: str) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9]{5}-[a-z0-9]{5})</code></li>", html)


def enrol(client: FlaskClient) -> tuple[str, list[str]]:
    """Enrol the client's user through the pages; return the secret and the recovery codes."""
    page = client.get(MFA_PAGE)
    assert page.status_code == 200
    secret = secret_on_page(page.text)
    done = client.post(MFA_PAGE, data={"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200, done.text
    codes = codes_on_page(done.text)
    assert len(codes) == 10
    return secret, codes


def set_policy(workspace: Any, value: str, **extra: Any) -> None:
    P = rbac.models.SecurityPolicy
    row = db.session.scalar(sa.select(P).where(P.workspace_id == workspace.id))
    if row is None:
        row = P(workspace_id=workspace.id)
        db.session.add(row)
    row.mfa = value
    for key, val in extra.items():
        setattr(row, key, val)
    db.session.commit()


def audit_actions() -> list[str]:
    A = rbac.models.AuditEvent
    db.session.expire_all()
    return list(db.session.scalars(sa.select(A.action).order_by(A.id)))


def set_check(client: FlaskClient, user: Any, minutes_ago: float) -> None:
    """Pretend the session passed its MFA check ``minutes_ago`` (a check counts only in the
    server session that passed it: a client without one gets one, as a sign-in would)."""
    at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    key = current_app.config["RBAC_SESSION_ID_KEY"]
    with client.session_transaction() as sess:
        sid = sess.get(key)
        if sid is None:
            sid = sess[key] = secrets.token_urlsafe(32)
            now = utcnow()
            db.session.add(rbac.models.AuthSession(
                user_id=user.id, sid_hash=sessions.sid_hash(sid), created_at=now,
                last_seen_at=now, ip="", user_agent=""))
            db.session.commit()
        sess[stepup.SESSION_KEY] = {"user": str(user.id), "at": int(at.timestamp()),
                                    "sid": sessions.sid_hash(sid)}


def enrolled_directly(user: Any, *, now: dt.datetime | None = None) -> tuple[str, list[str]]:
    """Enrol ``user`` through the services (for tests about what comes after)."""
    cred = mfa.start_enrolment(rbac, user.id)
    db.session.flush()
    now = now or utcnow()
    codes = mfa.confirm_enrolment(rbac, user.id, totp.code_at_step(cred.secret, totp.step_of(now)),
                                  now=now)
    db.session.commit()
    return cred.secret, codes


@pytest.fixture
def signed(app: Flask, world: SimpleNamespace, login: Any) -> Any:
    """``signed(key)``: a client of member ``key`` signed in to ``world.ws``."""
    return lambda key: login(world.users[key], world.ws)


# -- pure rules ---------------------------------------------------------------------------------


def _access(**kw: Any) -> Access:
    return Access(workspace_id=1, user_id=1, membership_id=1, **kw)


@pytest.mark.parametrize(("access", "privileged"), [
    (None, False),
    (_access(), False),
    (_access(is_owner=True), True),
    (_access(rules={("members", "manage"): (Rule(ALLOW, "all"),)}), True),
    (_access(rules={("roles", "manage"): (Rule(ALLOW, "own"),)}), True),
    (_access(rules={("settings", "manage"): (Rule(ALLOW, "all"),)}), True),
    (_access(rules={("settings", "manage"): (Rule("deny", "all"),)}), False),
    (_access(rules={("members", "edit"): (Rule(ALLOW, "all"),),
                    ("deals", "manage"): (Rule(ALLOW, "all"),)}), False),
])
def test_is_privileged(access: Access | None, privileged: bool) -> None:
    assert stepup.is_privileged(access) is privileged
    assert stepup.must_enrol("privileged", access) is privileged
    assert stepup.must_enrol("nobody", access) is False
    assert stepup.must_enrol("everyone", access) is (access is not None)


def test_totp_step_is_accepted_once_and_never_an_earlier_one() -> None:
    secret = totp.new_secret()
    now = dt.datetime(2026, 1, 1, 12, 0, 10)
    step = totp.step_of(now)
    code = totp.code_at_step(secret, step)
    assert totp.matching_step(secret, code, now, None) == step
    assert totp.matching_step(secret, code, now, step) is None  # replayed
    assert totp.matching_step(secret, totp.code_at_step(secret, step - 1), now, step) is None
    assert totp.matching_step(secret, totp.code_at_step(secret, step + 1), now, step) == step + 1
    assert totp.matching_step(secret, totp.code_at_step(secret, step + 2), now, None) is None
    assert totp.matching_step(secret, "abc", now, None) is None


def test_recovery_code_hash_is_keyed() -> None:
    code = totp.new_recovery_codes(1)[0]
    assert re.fullmatch(r"[a-z0-9]{5}-[a-z0-9]{5}", code)
    stored = totp.hash_recovery_code(code, "k1")
    assert stored.startswith(totp.HASH_SCHEME) and code not in stored
    assert totp.hash_recovery_code(code.upper().replace("-", " "), "k1") == stored
    assert totp.hash_recovery_code(code, "k2") != stored


# -- services ----------------------------------------------------------------------------------


def test_verify_spends_each_code_once(app: Flask, world: SimpleNamespace) -> None:
    user = world.users["admin"]
    now = dt.datetime(2026, 3, 1, 9, 0, 0)
    secret, codes = enrolled_directly(user, now=now)
    later = now + dt.timedelta(seconds=60)
    code = totp.code_at_step(secret, totp.step_of(later))
    with app.test_request_context():
        assert mfa.verify(rbac, user.id, code, now=later) == "totp"
        assert mfa.verify(rbac, user.id, code, now=later) is None  # replay within its window
        assert mfa.verify(rbac, user.id, codes[0], now=later) == "recovery"
        assert mfa.verify(rbac, user.id, codes[0], now=later) is None
        assert mfa.remaining_recovery_codes(rbac, user.id) == 9
        db.session.commit()
    stored = db.session.scalars(sa.select(rbac.models.RecoveryCode.code_hash)).all()
    assert len(stored) == 10 and not any(c in h for c in codes for h in stored)
    assert audit_actions().count("auth.mfa_failed") == 2


def test_mfa_status(app: Flask, world: SimpleNamespace) -> None:
    enrolled_directly(world.users["admin"])
    mfa.start_enrolment(rbac, world.users["viewer"].id)
    db.session.commit()
    ids = [world.users[k].id for k in ("admin", "viewer", "member")]
    assert mfa.mfa_status(rbac, ids) == dict(zip(ids, ["on", "pending", "off"], strict=True))


# -- enrolment and sign-in through the pages --------------------------------------------------


def test_enrol_then_sign_in_needs_a_fresh_code(app: Flask, world: SimpleNamespace,
                                               signed: Any) -> None:
    client = signed("member")
    page = client.get(MFA_PAGE)
    assert "<svg" in page.text and 'class="rbac-mfa-qr"' in page.text
    assert '<img src="data:' not in page.text  # drawn inline: nothing for the CSP to allow
    secret = secret_on_page(page.text)
    wrong = client.post(MFA_PAGE, data={"code": "000000"})
    assert wrong.status_code == 400 and "does not match" in wrong.text
    assert mfa.mfa_status(rbac, [world.users["member"].id])[world.users["member"].id] == "pending"
    used = pyotp.TOTP(secret).now()
    done = client.post(MFA_PAGE, data={"code": used})
    assert done.status_code == 200 and len(codes_on_page(done.text)) == 10
    assert "auth.mfa_enrolled" in audit_actions()
    assert client.get("/").status_code == 200  # this session just proved it

    fresh = signed("member")  # a new sign-in: the password alone opens nothing
    first = fresh.get("/leads/")
    assert first.status_code == 302 and first.location.startswith(VERIFY_PAGE)
    assert "next=/leads/" in first.location
    replay = fresh.post(VERIFY_PAGE, data={"code": used, "next": "/leads/"})
    assert replay.status_code == 400 and mfa.INVALID_CODE in replay.text
    code = codes_on_page(done.text)[0]
    ok = fresh.post(VERIFY_PAGE, data={"code": code, "next": "/leads/"})
    assert ok.status_code == 302 and ok.location.endswith("/leads/")
    assert fresh.get("/leads/").status_code == 200
    again = signed("member").post(VERIFY_PAGE, data={"code": code})
    assert again.status_code == 400  # a recovery code works once


def test_wrong_code_gets_the_same_answer_for_anyone(app: Flask, world: SimpleNamespace,
                                                    signed: Any) -> None:
    enrolled_directly(world.users["admin"])
    answers = [signed("admin").post(VERIFY_PAGE, data={"code": "123456"}),
               signed("member").post(VERIFY_PAGE, data={"code": "123456"}),  # no MFA
               app.test_client().post(VERIFY_PAGE, data={"code": "123456"})]  # anonymous
    assert {a.status_code for a in answers} == {400}
    # The page itself (the host's layout around it names the signed-in user).
    starts = [a.text.index("rbac-mfa-verify") for a in answers]
    # Per-response values aside: the CSRF token, and the workspace a signed-in
    # member's forms are bound to (their own).
    bodies = {re.sub(r"\s+", " ", re.sub(r'<input[^>]*name="(csrf_token|rbac_workspace)"[^>]*>',
                                         "", a.text[i:a.text.index("</form>", i)]))
              for a, i in zip(answers, starts, strict=True)}
    assert len(bodies) == 1 and mfa.INVALID_CODE in bodies.pop()
    assert app.test_client().get(VERIFY_PAGE).status_code == 200


def test_wrong_codes_are_throttled_across_sessions(app: Flask, world: SimpleNamespace,
                                                  signed: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the free allowance even the right code waits, and a new sign-in does not reset it."""
    # A minute's wait from the allowance on (the real one starts at 1 s: too short for a test).
    monkeypatch.setattr("crm_rbac_plugin.security.throttle.wait_after",
                        lambda failures, *, free, max_wait: 60 if failures >= free else 0)
    secret, _ = enrolled_directly(world.users["admin"])
    client = signed("admin")
    free = app.config["RBAC_SIGN_IN_FREE_FAILURES"]
    answers = [client.post(VERIFY_PAGE, data={"code": "000000"}).status_code
               for _ in range(free)]
    assert answers == [400] * (free - 1) + [302]  # the fifth in a row ends the session
    right = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    waiting = signed("admin").post(VERIFY_PAGE, data={"code": right})
    assert waiting.status_code == 429 and "Too many attempts" in waiting.text
    assert audit_actions().count("auth.mfa_failed") == app.config["RBAC_SIGN_IN_FREE_FAILURES"]


# -- the workspace's policy -----------------------------------------------------------------------


def _sweep_paths(app: Flask) -> list[tuple[str, str]]:
    """Every GET route of the app with placeholder arguments, and its endpoint."""
    out = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint.endswith("static"):
            continue
        values = {arg: ("1" if "id" in arg or arg == "page" else "x") for arg in rule.arguments}
        try:
            path = url_for(rule.endpoint, **values, _external=False)
        except Exception:  # a converter refusing the placeholder (any(...)): skip the rule
            continue
        out.append((rule.endpoint, path))
    return out


def test_privileged_member_without_mfa_reaches_no_page(app: Flask, world: SimpleNamespace,
                                                        signed: Any) -> None:
    set_policy(world.ws, "privileged")
    client = signed("admin")
    allowed = {stepup.ENROL_ENDPOINT, stepup.VERIFY_ENDPOINT}
    reached = []
    swept = _sweep_paths(app)
    assert len(swept) > 30
    for endpoint, path in swept:
        response = client.get(path)
        if endpoint in allowed:
            continue
        redirected = response.status_code == 302 and response.location.startswith(MFA_PAGE)
        refused = (response.status_code == 403 and response.is_json
                   and response.json["error"] == "mfa_required")  # the JSON API
        if not (redirected or refused):
            reached.append((path, response.status_code))
    assert reached == []
    assert signed("member").get("/leads/").status_code == 200  # not privileged: not asked
    enrol(client)
    assert client.get("/leads/").status_code == 200


def test_everyone_policy_and_api_token(app: Flask, world: SimpleNamespace, signed: Any) -> None:
    set_policy(world.ws, "everyone")
    assert signed("viewer").get("/").location.startswith(MFA_PAGE)
    _, plaintext = tokens.create_token(rbac, world.members["viewer"], "script")
    db.session.commit()
    response = app.test_client().get("/api/v1/roles",
                                     headers={"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 403
    assert response.json is not None and response.json["error"] == "mfa_required"
    assert "two-factor" in response.json["message"]
    enrolled_directly(world.users["viewer"])
    ok = app.test_client().get("/api/v1/members", headers={"Authorization": f"Bearer {plaintext}"})
    assert ok.status_code != 403 or ok.json["error"] != "mfa_required"


def test_policy_is_the_current_workspaces(app: Flask, world: SimpleNamespace, login: Any) -> None:
    set_policy(world.ws2, "everyone")  # dual: Owner of ws2, Viewer of ws
    assert login(world.users["dual"], world.ws).get("/").status_code == 200
    assert login(world.users["dual"], world.ws2).get("/").location.startswith(MFA_PAGE)


# -- step-up ------------------------------------------------------------------------------------


def _view_as(client: FlaskClient, world: SimpleNamespace, **kw: Any) -> Any:
    return client.post(url_for("rbac_oversight.view_as_start"),
                       data={"membership_id": world.members["member"].id, "next": "/leads/"}, **kw)


def test_view_as_needs_a_recent_check(app: Flask, world: SimpleNamespace, signed: Any) -> None:
    enrolled_directly(world.users["owner"])
    client = signed("owner")
    set_check(client, world.users["owner"], minutes_ago=20)
    stale = _view_as(client, world)
    assert stale.status_code == 302 and stale.location.startswith(VERIFY_PAGE)
    assert "next=/leads/" in stale.location
    as_json = _view_as(client, world, headers={"Accept": "application/json"})
    assert as_json.status_code == 403 and as_json.json["error"] == "mfa_step_up_required"
    assert "view_as.started" not in audit_actions()
    set_check(client, world.users["owner"], minutes_ago=2)
    assert _view_as(client, world).location.endswith("/leads/")
    assert "view_as.started" in audit_actions()


def test_step_up_minutes_come_from_the_policy(app: Flask, world: SimpleNamespace,
                                              signed: Any) -> None:
    enrolled_directly(world.users["owner"])
    set_policy(world.ws, "nobody", step_up_minutes=1)
    client = signed("owner")
    set_check(client, world.users["owner"], minutes_ago=3)
    assert _view_as(client, world).location.startswith(VERIFY_PAGE)


def test_role_changes_need_a_recent_check(app: Flask, world: SimpleNamespace,
                                          signed: Any) -> None:
    enrolled_directly(world.users["admin"])
    client = signed("admin")
    set_check(client, world.users["admin"], minutes_ago=60)
    viewer = workspaces.role_by_key(rbac, world.ws, "viewer")
    mid = world.members["member"].id
    assign = client.post(f"/settings/members/{mid}/roles", data={"role_id": viewer.id})
    assert assign.location.startswith(VERIFY_PAGE)
    assert client.get(f"/settings/roles/{viewer.id}/edit").location.startswith(VERIFY_PAGE)
    assert client.get("/settings/roles/new").location.startswith(VERIFY_PAGE)
    assert signed("member").get("/leads/").status_code == 200  # no MFA, not required: no step-up


@pytest.mark.parametrize("role_key", ["owner", "admin", "member"])
def test_an_invitation_needs_a_recent_check_like_a_role_assignment(
        app: Flask, world: SimpleNamespace, signed: Any, role_key: str) -> None:
    """An invitation gives its roles (an Owner's or an Admin's too) as an assignment does."""
    enrolled_directly(world.users["owner"])
    set_policy(world.ws, "nobody", step_up_minutes=1)
    client = signed("owner")
    set_check(client, world.users["owner"], minutes_ago=3)
    role = workspaces.role_by_key(rbac, world.ws, role_key)
    form = {"email": "newcomer@example.test", "roles": [role.id]}
    stale = client.post("/settings/members/invite", data=form)
    assert stale.status_code == 302 and stale.location.startswith(VERIFY_PAGE)
    as_json = client.post("/settings/members/invite", data=form,
                          headers={"Accept": "application/json"})
    assert as_json.status_code == 403 and as_json.json["error"] == "mfa_step_up_required"
    M = rbac.models.Membership
    assert db.session.scalar(sa.select(sa.func.count()).select_from(M).where(
        M.status == "pending")) == 0
    assert client.get("/settings/members/invite").location.startswith(VERIFY_PAGE)
    set_check(client, world.users["owner"], minutes_ago=0)
    done = client.post("/settings/members/invite", data=form)
    assert done.status_code == 302 and not done.location.startswith(VERIFY_PAGE)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(M).where(
        M.status == "pending")) == 1


def test_host_mfa_hook_satisfies_the_policy(app: Flask, world: SimpleNamespace,
                                            signed: Any) -> None:
    set_policy(world.ws, "everyone")
    checked = {"at": None}
    previous = rbac.hooks.mfa_verified
    rbac.mfa_verified(lambda user: checked["at"])
    try:
        assert signed("viewer").get("/").location.startswith(MFA_PAGE)
        checked["at"] = utcnow()
        assert signed("viewer").get("/").status_code == 200
        assert _view_as(signed("owner"), world).location.endswith("/leads/")
    finally:
        rbac.hooks.mfa_verified = previous


# -- the Owner's reset --------------------------------------------------------------------------


def test_owner_resets_a_members_mfa(app: Flask, world: SimpleNamespace, signed: Any,
                                    login: Any) -> None:
    enrolled_directly(world.users["admin"])
    uid, mid = world.users["admin"].id, world.members["admin"].id
    path = f"/settings/members/{mid}/mfa/reset"
    admin = signed("admin")
    set_check(admin, world.users["admin"], 0)
    assert signed("manager").post(path).status_code == 403
    assert admin.post(path).status_code == 403  # an Admin is not an Owner
    assert login(world.users["dual"], world.ws2).post(path).status_code == 404
    assert mfa.is_enrolled(rbac, uid)
    assert "auth.mfa_reset" not in audit_actions()
    done = signed("owner").post(path)
    assert done.status_code == 302
    assert not mfa.is_enrolled(rbac, uid)
    assert audit_actions().count("auth.mfa_reset") == 1
    A = rbac.models.AuditEvent
    event = db.session.scalar(sa.select(A).where(A.action == "auth.mfa_reset"))
    assert event.workspace_id == world.ws.id and event.actor_user_id == world.users["owner"].id


def test_the_command_line_resets_a_sole_owners_mfa(app: Flask, world: SimpleNamespace,
                                                  signed: Any) -> None:
    """The way back in for the Owner nobody else can reset: the server's command line
    removes the credential and the recovery codes, ends every session, and the trail
    says it came from there."""
    enrolled_directly(world.users["owner"])
    owner = signed("owner")
    set_check(owner, world.users["owner"], 0)
    assert owner.get("/settings/profile").status_code == 200
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rbac", "security", "mfa-reset", "--workspace",
                                 world.ws.slug, "owner@example.test"])
    assert result.exit_code == 0, result.output
    assert "removed" in result.output
    assert not mfa.is_enrolled(rbac, world.users["owner"].id)
    page = owner.get("/settings/profile")
    assert page.status_code == 302 and "/login" in page.headers["Location"]
    A = rbac.models.AuditEvent
    event = db.session.scalar(sa.select(A).where(A.action == "auth.mfa_reset"))
    assert event.workspace_id == world.ws.id and event.actor_user_id is None
    assert event.detail["via"] == "command line"
    unknown = runner.invoke(args=["rbac", "security", "mfa-reset", "--workspace",
                                  world.ws.slug, "nobody@example.test"])
    assert unknown.exit_code != 0 and "not a member" in unknown.output


def test_status_include(app: Flask, world: SimpleNamespace) -> None:
    """The include an integrator places on a member's page: the badge, and the reset for an Owner."""
    from flask import render_template_string
    page = '{% include "rbac/settings/account/mfa_status.html" %}'
    with app.test_request_context():
        owner = render_template_string(page, membership=world.members["admin"],
                                       mfa_status_of=lambda u: "on", mfa_can_reset=lambda m: True)
        admin = render_template_string(page, membership=world.members["admin"],
                                       mfa_status_of=lambda u: "off", mfa_can_reset=lambda m: False)
    assert "rbac-badge--success" in owner and "Reset two-factor" in owner
    assert "Off" in admin and "Reset" not in admin


def test_profile_card_include(app: Flask, world: SimpleNamespace, signed: Any) -> None:
    """The card an integrator includes on the profile page: the status and the way to change it."""
    from flask import render_template_string
    page = '{% include "rbac/settings/account/mfa_card.html" %}'
    with app.test_request_context():
        off = render_template_string(page, mfa_summary=lambda: {"status": "off",
                                                                "recovery_codes_left": 0})
        on = render_template_string(page, mfa_summary=lambda: {"status": "on",
                                                               "recovery_codes_left": 7})
    assert "Off" in off and "Set up two-factor authentication" in off
    assert "On" in on and "7 recovery codes left" in on and MFA_PAGE in on
    enrolled_directly(world.users["viewer"])
    client = signed("viewer")
    set_check(client, world.users["viewer"], 0)
    status = client.get(MFA_PAGE)
    assert status.status_code == 200 and "data-mfa-codes-left>10<" in status.text
