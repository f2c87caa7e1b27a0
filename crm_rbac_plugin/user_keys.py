"""The host's user key: the value ``Membership.user_id`` and every user column of the
plugin hold, whatever the host names and types it (``id``, ``uid``, a UUID)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm.attributes import instance_state

from .loader import _as_column_type

if TYPE_CHECKING:
    from .interface import RBACProtocol


def user_pk(user: Any) -> Any:
    """Return the primary key of ``user``: the value ``Membership.user_id`` holds.

    Flask-Login's ``get_id()`` is whatever the session stores to find the
    user again, and a host may make it an *alternative id* rather than the
    primary key (a random per-user token rotated at logout, as
    Flask-Security's ``fs_uniquifier``, so that copied session and
    remember-me cookies die with it). The extension therefore never reads
    ``get_id()``; it asks this method, which returns the mapped primary key
    of an ORM instance (``current_user`` proxies included), or the
    ``id`` attribute of any other user object::

        membership_of(rbac, workspace_id, rbac.user_pk(current_user))
    """
    unwrap = getattr(user, "_get_current_object", None)
    if unwrap is not None:  # current_user is a LocalProxy
        user = unwrap()
    if user is None:
        return None
    try:  # a persistent ORM instance: its identity key, read without sa.inspect()
        key = instance_state(user).key
    except AttributeError:
        key = None
    if key is not None:
        return key[1][0] if len(key[1]) == 1 else tuple(key[1])
    try:
        state = sa.inspect(user)
    except sa.exc.NoInspectionAvailable:
        return getattr(user, "id", None)
    identity = state.identity  # None until the instance is flushed
    if identity is None:
        identity = state.mapper.primary_key_from_instance(user)
    return identity[0] if len(identity) == 1 else tuple(identity)


def user_pk_column(rbac: RBACProtocol) -> Any:
    """Return the mapped primary key column of the host's user model.

    Queries of users go through it (``user_pk_column(rbac).in_(ids)``):
    the host names and types its key as it likes (``id``, ``uid``, a UUID).
    """
    return sa.inspect(rbac.user_model).primary_key[0]


def user_key(rbac: RBACProtocol, value: Any) -> Any:
    """Return ``value`` (a form field, a URL or JSON value) as a user primary key.

    The value is converted to the key column's Python type, so that ``"7"``
    finds user 7 on PostgreSQL too; ``""`` and None give None. Raises
    ValueError when ``value`` cannot be such a key (``"abc"`` for an integer key).
    """
    if value is None or value == "":
        return None
    try:
        return _as_column_type(user_pk_column(rbac), value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not a user id") from None
