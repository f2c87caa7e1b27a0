"""The request's one statement: the signed-in user with their membership row and
their account's security state (:func:`user_with_membership`).

The user loader runs it on every request, so everything the request's
checks need (the membership and its workspace, the MFA credential, the
session record) comes with the user in one round trip; the workspace's
security policy, the same for every member, is kept per ``policy_version``
in the app's :class:`~.access_cache.PolicyCache`.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from .access_cache import PolicyCache, has_uncommitted_policy
from .loader import BYPASS, _convert, _python_type
from .models import Models
from .policy_rows import json_row
from .resolve import MEMBER_FIELDS, WORKSPACE_FIELDS, AccountRow, MembershipRow


class json_nested(FunctionElement[Any]):
    """A JSON value from a scalar subquery, nested as JSON (not as text) in a
    :class:`.policy_rows.json_row`.

    SQLite drops the JSON mark of a value that leaves a subquery, so there
    it is ``json(...)``; PostgreSQL and MySQL keep the value's JSON type.
    """

    type = sa.JSON()
    name = "json_nested"
    inherit_cache = True


@compiles(json_nested)
def _compile_json_nested(element: json_nested, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)  # type: ignore[no-any-return]


@compiles(json_nested, "sqlite")
def _compile_json_nested_sqlite(element: json_nested, compiler: Any, **kw: Any) -> str:
    return f"json({compiler.process(element.clauses, **kw)})"


#: :class:`AccountRow`'s fields read with the membership (credential, session record)
#: and with the workspace (its security policy), in the row's order.
_SESSION_FIELDS = ("id", "revoked_at", "created_at", "last_seen_at", "mfa_at")
_POLICY_FIELDS = AccountRow._fields[7:]
#: The width of a :class:`MembershipRow`: the account's fields follow it in the user's array.
_ROW_WIDTH = len(MembershipRow._fields)


@functools.lru_cache(maxsize=32)
def _user_statement(models: Models, user_model: type,
                    column: Any) -> tuple[Any, type | None, type | None, type | None]:
    """The statement of :func:`user_with_membership`, the Python types of its two
    parameters and of ``Membership.user_id`` (reading ``column.type.python_type``
    on every request cost more than building the parameters).

    Everything but the user comes as one scalar subquery building one JSON
    array, rather than as outer joins of the user to each table: a request
    decodes one value, not one per table (each decoded value costs the
    driver and SQLAlchemy a JSON parse and a column's result processing),
    and PostgreSQL plans a scalar subquery on unique keys in about half the
    time of outer joins (``EXPLAIN (ANALYZE, SUMMARY)`` on the benchmark's
    world of 10,000 members; see docs/benchmarks.md). The array is
    :class:`.policy_rows.json_row` (``json_array``, PostgreSQL's ``json_build_array``).

    The array holds the membership joined to its live workspace (so it is
    NULL unless both exist, as :func:`.loader.membership_row` reads them), then the
    account's security state, so the security checks of every request (MFA,
    session record) cost no round trip of their own: the MFA credential's
    confirmation and the session record named by ``:sid_hash`` (each on a
    unique key, nested in the array). The workspace's security policy, the
    same for every member, is kept per ``policy_version`` instead
    (:func:`_security_policy`): as one more subquery it cost PostgreSQL
    about 25 µs per request.

    The subquery names the tables' columns, not the ORM's attributes: SQLAlchemy
    hashes the statement's cache key on every execution, and the attributes'
    annotations nearly double it (about 1,100 elements against 600, a few
    microseconds per hash); the SQL is the same.
    """
    M, W = sa.inspect(models.Membership).columns, sa.inspect(models.Workspace).columns
    C, S = sa.inspect(models.MfaCredential).columns, sa.inspect(models.AuthSession).columns
    pk = sa.inspect(user_model).primary_key[0]
    ws = sa.bindparam("workspace_id")
    credential = sa.select(C.confirmed_at).where(C.user_id == M.user_id).scalar_subquery()
    record = (sa.select(json_row(*(S[f] for f in _SESSION_FIELDS)))
              .where(S.user_id == M.user_id, S.sid_hash == sa.bindparam("sid_hash"))
              .scalar_subquery())
    member = (sa.select(json_row(*(M[f] for f in MEMBER_FIELDS), *(W[f] for f in WORKSPACE_FIELDS),
                                   credential, json_nested(record)))
              .select_from(models.Membership.__table__.join(models.Workspace.__table__,
                                                            W.id == M.workspace_id))
              .where(M.user_id == pk, M.workspace_id == ws, W.deleted_at.is_(None))
              .scalar_subquery())
    stmt = sa.select(user_model, member).where(column == sa.bindparam("user_id"))
    return stmt, _python_type(column), _python_type(M.workspace_id), _python_type(M.user_id)


#: The session fields of a request whose session id names no record of the member.
_NO_RECORD = (None,) * len(_SESSION_FIELDS)


def _moment(value: Any) -> dt.datetime:
    """A timestamp read from a JSON array (SQLite's text or PostgreSQL's ISO form), naive."""
    if isinstance(value, dt.datetime):
        return value
    moment = dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo is None else moment.replace(tzinfo=None)


def _account_row(confirmed: Any, record: list[Any] | None,
                 policy: tuple[Any, ...]) -> AccountRow:
    """The :class:`AccountRow` of the user's array. Most of its timestamps are NULL
    on most requests (no credential, no revocation, no MFA check): they are
    parsed only when present, one call fewer each on every request."""
    sid, revoked, created, seen, mfa_at = record or _NO_RECORD
    return AccountRow(None if confirmed is None else _moment(confirmed), sid,
                      None if revoked is None else _moment(revoked),
                      None if created is None else _moment(created),
                      None if seen is None else _moment(seen),
                      None if mfa_at is None else _moment(mfa_at), *policy)


def _security_policy(session: Session, models: Models, row: MembershipRow,
                     policies: PolicyCache | None) -> tuple[Any, ...]:
    """The member's workspace's security policy as :class:`AccountRow`'s
    ``policy_saved`` and policy fields, from ``policies`` when it has this
    ``policy_version``.

    A miss reads the row with the version again (another transaction may
    have committed a newer one since the user's statement) and keeps it
    under that version, unless this session's own transaction changed the
    workspace's policy: a rollback could hand that number to another policy.
    """
    if policies is not None:
        hit = policies.get(row.workspace_id, row.policy_version)
        if hit is not None:
            return hit
    W, P = models.Workspace, models.SecurityPolicy
    found = session.execute(
        sa.select(W.policy_version, P.id, *(getattr(P, f) for f in _POLICY_FIELDS))
        .select_from(W).outerjoin(P, P.workspace_id == W.id).where(W.id == row.workspace_id),
        execution_options=BYPASS).first()
    if found is None:
        return (False,) + (None,) * len(_POLICY_FIELDS)
    version, saved, *values = found
    policy = (saved is not None, *values)
    if policies is not None and not has_uncommitted_policy(session, row.workspace_id):
        policies.put(row.workspace_id, version, policy)
    return policy


def user_with_membership(session: Session, models: Models, user_model: type, user_id: Any,
                         workspace_id: Any, *, column: Any = None,
                         sid_hash: str | None = None, policies: PolicyCache | None = None,
                         ) -> tuple[Any, MembershipRow | None, AccountRow | None]:
    """Load a user (by ``column``, default the primary key), their membership row in
    one workspace and their account's security state with one query.

    Return ``(user, row, account)``: the user or None, the row that
    :func:`.loader.membership_row` returns for them, or None if they are not a member
    (or ``workspace_id`` is None), and, for a member, the :class:`AccountRow`
    whose session record is the one whose id hashes to ``sid_hash``, and
    whose security policy comes from ``policies`` (the app's
    :class:`~.access_cache.PolicyCache`) when it holds the current version.
    """
    column = column if column is not None else sa.inspect(user_model).primary_key[0]
    stmt, user_type, workspace_type, member_user_type = _user_statement(models, user_model, column)
    try:
        params = {"user_id": _convert(user_type, user_id),
                  "workspace_id": _convert(workspace_type, workspace_id), "sid_hash": sid_hash}
    except (TypeError, ValueError):
        return None, None, None
    found = session.execute(stmt, params, execution_options=BYPASS).first()
    if found is None:
        return None, None, None
    user, member = found
    if member is None:
        return user, None, None
    row = MembershipRow(*member[:_ROW_WIDTH])
    confirmed, record = member[_ROW_WIDTH:]
    account = _account_row(confirmed, record, _security_policy(session, models, row, policies))
    user_key = _convert(member_user_type, row.user_id)
    # JSON carries a UUID user key as text: give it back the key's type.
    return user, row if user_key is row.user_id else row._replace(user_id=user_key), account
