"""Keep members' :class:`~.policy.Access` across requests, and keep out what may be rolled back.

:class:`AccessCache` holds one Access per membership, checked against the
workspace's ``policy_version`` and the Access's own ``valid_until``. Access
read while the session's transaction has changed that workspace's policy is
never cached (:func:`note_uncommitted_policy`).
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy.orm import Session, scoped_session

from .policy import Access


class AccessCache:
    """A small thread-safe LRU of :class:`Access` by membership id."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[int, Access] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, membership_id: int, version: int, now: dt.datetime) -> Access | None:
        with self._lock:
            access = self._data.get(membership_id)
            if access is None:
                return None
            if access.policy_version != version or (
                    access.valid_until is not None and now >= access.valid_until):
                del self._data[membership_id]
                return None
            self._data.move_to_end(membership_id)
            return access

    def holds(self, membership_id: Any) -> bool:
        """Whether an Access of ``membership_id`` is kept, valid or not."""
        return membership_id in self._data

    def put(self, access: Access) -> None:
        if not access.cacheable:
            return  # read from uncommitted policy changes (see note_uncommitted_policy)
        with self._lock:
            self._data[access.membership_id] = access
            self._data.move_to_end(access.membership_id)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class PolicyCache:
    """Workspaces' security policies by ``(workspace id, policy_version)``.

    The policy is the same for every member of a workspace, so the user
    loader reads it once per version rather than in every request's
    statement. Every write to a ``SecurityPolicy`` row bumps its workspace's
    ``policy_version`` (see :func:`.guard.collect_policy_changes`), which
    retires the entry in every process, as for :class:`AccessCache`.
    Emptied when full: a few hundred workspaces are re-read at once.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: dict[tuple[int, int], tuple[Any, ...]] = {}
        #: The permission-change rules (:meth:`get_rules`), kept apart from the policies.
        self._rules: dict[tuple[int, int], tuple[Any, ...]] = {}

    def get(self, workspace_id: int, version: int) -> tuple[Any, ...] | None:
        return self._data.get((workspace_id, version))

    def put(self, workspace_id: int, version: int, policy: tuple[Any, ...]) -> None:
        if len(self._data) >= self.size:
            self._data.clear()  # dict operations are atomic: no lock needed
        self._data[(workspace_id, version)] = policy

    def get_rules(self, workspace_id: int, version: int) -> tuple[Any, ...] | None:
        """The workspace's reason rule, time zone and alert settings at ``version``.

        Every write of the rows they come from (the review schedule's
        ``require_reason``, the alert settings, the workspace's time zone)
        bumps ``policy_version`` (:func:`.guard.collect_policy_changes`).
        """
        return self._rules.get((workspace_id, version))

    def put_rules(self, workspace_id: int, version: int, rules: tuple[Any, ...]) -> None:
        if len(self._rules) >= self.size:
            self._rules.clear()
        self._rules[(workspace_id, version)] = rules

    def clear(self) -> None:
        self._data.clear()
        self._rules.clear()


_UNCOMMITTED = "rbac_uncommitted_policy"


def note_uncommitted_policy(session: Session, workspace_ids: list[int],
                            versions: dict[int, int] | None = None) -> None:
    """Remember that the session's transaction changed these workspaces' policy.

    Called by the flush guard when it bumps ``policy_version``. Access read
    from here until the transaction ends shows changes that may still be
    rolled back; the rollback restores the version number and the next
    committed change reuses it, so a cached copy would then pass for
    current. :func:`load_access` marks such Access as not cacheable.

    ``versions``: the version each workspace's bump wrote, when known
    (:func:`bumped_versions`).
    """
    tx = _root_transaction(session)
    noted = session.info.get(_UNCOMMITTED)
    if noted is None or noted[0] is not tx:
        noted = (tx, set(), {})
        session.info[_UNCOMMITTED] = noted
    noted[1].update(workspace_ids)
    bumps = noted[2]
    for ws in workspace_ids:
        bumps[ws] = ((versions or {}).get(ws), bumps.get(ws, (None, 0))[1] + 1)


def has_uncommitted_policy(session: Session, workspace_id: int) -> bool:
    noted = session.info.get(_UNCOMMITTED)
    return (noted is not None and noted[0] is _root_transaction(session)
            and workspace_id in noted[1])


def bumped_versions(session: Session) -> dict[int, tuple[int, int]]:
    """``{workspace id: (version, bumps)}``: the ``policy_version`` the transaction's last
    bump of the workspace wrote, and how many times it bumped it.

    Each bump holds the workspace's row until the transaction ends, so its
    commit leaves ``version``, and ``version - bumps`` is the version it
    started from. Workspaces whose last bump's result is unknown are left
    out; so is everything after a savepoint's rollback (:func:`forget_bumped_versions`).
    """
    noted = session.info.get(_UNCOMMITTED)
    if noted is None or noted[0] is not _root_transaction(session) or None in noted[2]:
        return {}
    return {ws: (v, n) for ws, (v, n) in noted[2].items() if v is not None}


def forget_bumped_versions(session: Session) -> None:
    """Trust no bump's version in this transaction: a savepoint rolled back may have
    undone some."""
    noted = session.info.get(_UNCOMMITTED)
    if noted is not None:
        noted[2][None] = (None, 0)


_RULES_CHANGED = "rbac_rules_changed"


def note_changed_rules(session: Session, workspace_ids: list[int]) -> None:
    """Remember that the session changed these workspaces' permission-change rules.

    Called by the flush guard. Until the session ends (the request's end),
    its permission changes in these workspaces read the rules afresh and keep
    nothing (:func:`has_changed_rules`): the request's Access names the
    version it started with, which a committed change of the rules retires.
    """
    session.info.setdefault(_RULES_CHANGED, set()).update(workspace_ids)


def has_changed_rules(session: Session, workspace_id: int) -> bool:
    return workspace_id in session.info.get(_RULES_CHANGED, ())


def _root_transaction(session: Session | scoped_session[Session]) -> Any:
    if isinstance(session, scoped_session):
        session = session()
    return session.get_transaction()
