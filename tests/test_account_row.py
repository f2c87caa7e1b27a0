"""The account's security state read with the user, in the request's one user query.

``load_user`` reads the MFA credential and the session record named by the
session's id in the same statement as the user and the membership (see
``user_rows.user_with_membership``), and the workspace's security policy once
per ``policy_version``. These tests pin what that statement returns on each
backend (timestamps carried through JSON come back as naive UTC datetimes,
and a missing row reads as None) and that a kept policy never outlives a
save.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from types import SimpleNamespace

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.security import save_policy
from crm_rbac_plugin.user_rows import user_with_membership

WHEN = dt.datetime(2026, 11, 30, 9, 15, 42, 123456)


def _read(user: User, workspace_id: int, sid: str | None = None):  # type: ignore[no-untyped-def]
    sid_hash = hashlib.sha256(sid.encode()).hexdigest() if sid else None
    return user_with_membership(db.session, rbac.models, User, user.id, workspace_id,
                                sid_hash=sid_hash)


def test_a_member_without_credential_session_or_policy_reads_empty(
        app: Flask, world: SimpleNamespace) -> None:
    user, row, account = _read(world.users["member"], world.ws.id)
    assert user is world.users["member"] and row is not None
    assert account is not None
    assert account.mfa_confirmed_at is None and account.session_id is None
    assert not account.policy_saved and account.mfa is None


def test_credential_session_and_policy_ride_with_the_user(
        app: Flask, world: SimpleNamespace) -> None:
    m = rbac.models
    member = world.users["member"]
    db.session.add(m.MfaCredential(user_id=member.id, secret="S" * 32, confirmed_at=WHEN))
    mine = m.AuthSession(user_id=member.id, sid_hash=hashlib.sha256(b"mine").hexdigest(),
                         created_at=WHEN, last_seen_at=WHEN + dt.timedelta(minutes=3))
    other = m.AuthSession(user_id=member.id, sid_hash=hashlib.sha256(b"other").hexdigest(),
                          created_at=WHEN, last_seen_at=WHEN, revoked_at=WHEN)
    db.session.add_all([mine, other])
    save_policy(rbac, world.ws.id, {"mfa": "everyone", "step_up_minutes": "7",
                                    "ip_allowlist": "10.0.0.0/8", "max_sessions": "3",
                                    "allowed_devices": ["tablet", "desktop"]})
    db.session.commit()

    _, _, account = _read(member, world.ws.id, "mine")
    assert account.mfa_confirmed_at == WHEN
    assert account.session_id == mine.id and account.session_revoked_at is None
    assert account.session_created_at == WHEN
    assert account.session_last_seen_at == WHEN + dt.timedelta(minutes=3)
    assert account.policy_saved and account.mfa == "everyone"
    assert account.step_up_minutes == 7 and account.max_sessions == 3
    assert account.ip_allowlist == "10.0.0.0/8"
    assert account.allowed_devices == "desktop,tablet"

    _, _, revoked = _read(member, world.ws.id, "other")
    assert revoked.session_id == other.id and revoked.session_revoked_at == WHEN
    # Another user's session id names nothing for this user.
    _, _, foreign = _read(world.users["owner"], world.ws.id, "mine")
    assert foreign.session_id is None and foreign.mfa_confirmed_at is None


def test_the_user_statement_reads_the_user_and_one_value(app: Flask,
                                                        world: SimpleNamespace) -> None:
    """Membership, workspace, credential and session record come back as one JSON array:
    one value for the driver and SQLAlchemy to decode per request, not one per table."""
    statements: list[tuple[str, int]] = []

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, len(cursor.description or ())))

    sa.event.listen(db.engine, "after_cursor_execute", count)
    try:
        user, row, account = _read(world.users["member"], world.ws.id, "any")
    finally:
        sa.event.remove(db.engine, "after_cursor_execute", count)
    assert row is not None and account is not None
    user_columns = len(sa.inspect(User).columns)
    assert [width for sql, width in statements if "rbac_session" in sql] == [user_columns + 1]


def test_no_account_state_without_a_membership_in_a_live_workspace(
        app: Flask, world: SimpleNamespace) -> None:
    """The account's state rides with the membership: a user who is no member of the
    workspace, or whose workspace is deleted, reads neither row nor account, credential
    and session record or not."""
    m = rbac.models
    member = world.users["member"]
    db.session.add(m.MfaCredential(user_id=member.id, secret="S" * 32, confirmed_at=WHEN))
    db.session.add(m.AuthSession(user_id=member.id, sid_hash=hashlib.sha256(b"mine").hexdigest(),
                                 created_at=WHEN, last_seen_at=WHEN))
    db.session.commit()
    assert _read(member, world.ws.id, "mine")[2].mfa_confirmed_at == WHEN
    assert _read(member, 10**6, "mine") == (member, None, None)
    ws = db.session.get(m.Workspace, world.ws.id)
    ws.deleted_at = WHEN
    db.session.commit()
    assert _read(member, world.ws.id, "mine") == (member, None, None)


def test_the_request_reads_the_user_query_alone(app: Flask, world: SimpleNamespace,
                                                login) -> None:  # type: ignore[no-untyped-def]
    """A signed-in page's MFA gate reads the state loaded with the user: no query of its own."""
    client = login(world.users["member"], world.ws)
    assert client.get("/leads/").status_code == 200  # adopts the session: writes its record
    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        assert client.get("/leads/").status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert statements
    security = ("rbac_mfa_credential", "rbac_security_policy", "rbac_session")
    alone = [s for s in statements
             if any(t in s for t in security) and "rbac_membership" not in s]
    assert alone == []


def test_a_saved_policy_bumps_the_workspace_version(app: Flask, world: SimpleNamespace) -> None:
    """The loader keeps a workspace's policy per ``policy_version``: every save retires it."""
    W = rbac.models.Workspace
    before = db.session.scalar(sa.select(W.policy_version).where(W.id == world.ws.id))
    save_policy(rbac, world.ws.id, {"step_up_minutes": "9"})
    db.session.commit()
    after = db.session.scalar(sa.select(W.policy_version).where(W.id == world.ws.id))
    assert after == before + 1
    save_policy(rbac, world.ws.id, {"step_up_minutes": "9"})  # nothing changed: no bump
    db.session.commit()
    assert db.session.scalar(sa.select(W.policy_version).where(W.id == world.ws.id)) == after


def test_the_next_request_sees_a_policy_saved_elsewhere(app: Flask, world: SimpleNamespace,
                                                        login) -> None:  # type: ignore[no-untyped-def]
    """A cached policy never outlives a save: the allowlist applies on the very next request."""
    client = login(world.users["member"], world.ws)
    assert client.get("/leads/").status_code == 200
    assert client.get("/leads/").status_code == 200  # served from the kept policy
    with app.app_context():  # as another process would: its own session and transaction
        save_policy(rbac, world.ws.id, {"ip_allowlist": "10.9.0.0/16"})
        db.session.commit()
    assert client.get("/leads/").status_code == 403


def test_a_rolled_back_policy_is_never_kept(app: Flask, world: SimpleNamespace) -> None:
    """A policy read inside the transaction that changed it is not kept: a rollback could
    hand its version number to another policy."""
    policies = app.extensions["rbac"].policies
    policies.clear()
    member = world.users["member"]
    save_policy(rbac, world.ws.id, {"ip_allowlist": "10.9.0.0/16"})
    _, row, uncommitted = user_with_membership(db.session, rbac.models, User, member.id,
                                               world.ws.id, policies=policies)
    assert uncommitted.ip_allowlist == "10.9.0.0/16"
    assert policies.get(world.ws.id, row.policy_version) is None
    db.session.rollback()
    _, row, account = user_with_membership(db.session, rbac.models, User, member.id,
                                           world.ws.id, policies=policies)
    assert not account.ip_allowlist
    assert policies.get(world.ws.id, row.policy_version) == (False,) + (None,) * 9


def test_a_bulk_delete_of_policies_retires_the_kept_ones(app: Flask, world: SimpleNamespace,
                                                         login) -> None:  # type: ignore[no-untyped-def]
    """A statement that writes policies in bulk names no workspace: every version moves."""
    save_policy(rbac, world.ws.id, {"ip_allowlist": "10.9.0.0/16"})
    db.session.commit()
    client = login(world.users["member"], world.ws)
    assert client.get("/leads/").status_code == 403  # the allowlist, now kept
    P = rbac.models.SecurityPolicy
    with app.app_context():
        db.session.execute(sa.delete(P).where(P.workspace_id == world.ws.id))
        db.session.commit()
    assert client.get("/leads/").status_code == 200


def test_timestamps_of_the_array_read_as_naive_datetimes() -> None:
    """The array's timestamps come back naive (an offset is dropped, the wall time kept),
    whatever form the backend gave them; a NULL stays None and no record reads as none."""
    from crm_rbac_plugin.user_rows import _account_row

    policy = (False,) + (None,) * 9
    row = _account_row("2026-11-30T09:15:42.123456+01:00",
                       [7, None, "2026-11-30 09:15:42.123456", WHEN, None], policy)
    assert row.mfa_confirmed_at == WHEN and row.mfa_confirmed_at.tzinfo is None
    assert row.session_id == 7 and row.session_revoked_at is None
    assert row.session_created_at == WHEN and row.session_last_seen_at is WHEN
    assert row.session_mfa_at is None
    empty = _account_row(None, None, policy)
    assert empty.mfa_confirmed_at is None and empty.session_id is None
    assert empty.session_created_at is None and not empty.policy_saved


def test_the_statement_caches_key_on_the_models_by_identity(app: Flask) -> None:
    """Every request looks its user statement up by the extension's Models: an identity
    hash, not one of its thirty-odd classes; another instance is another key."""
    import dataclasses

    models = rbac.models
    assert hash(models) == object.__hash__(models)
    twin = dataclasses.replace(models)
    assert twin != models and models == models
