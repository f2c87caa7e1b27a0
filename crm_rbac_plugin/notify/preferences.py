"""Who hears of what, and how: each member's channel per category.

A member picks, per category, ``mail`` (one mail per event), ``digest``
(one mail a day listing the events), ``app`` (the bell and the
notifications page only) or ``off`` (nothing at all). A category without a
stored choice follows the older single switch ``Membership.notify_email``:
mail when it is on (the default), in-app only when it is off, so members who
unticked "Email me notifications" keep getting no mail.

Security alerts reach every Owner: an Owner's ``security`` choice can never
be ``off`` (:func:`save` refuses it with a 400 naming the field, and a
stored ``off`` from before they became an Owner counts as ``mail``). The
service takes the member's own membership, never an id from the request, so
nobody reads or changes another member's choices.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..errors import ValidationError
from ..loader import BYPASS
from ..models import utcnow

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The categories, in the order pages show them, with their labels.
CATEGORIES: dict[str, str] = {
    "roles": "Roles assigned, removed or expiring",
    "membership": "Your membership deactivated or reactivated",
    "sharing": "Sharing agreements offered, accepted, changed, left or revoked",
    "approvals": "Approvals requested or decided",
    "security": "Security alerts",
    "reviews": "Access reviews due",
}
#: The channels, with their labels.
CHANNELS: dict[str, str] = {"mail": "Mail", "digest": "Daily digest", "app": "In-app only",
                            "off": "Off"}
#: The category an Owner cannot switch off.
LOCKED_FOR_OWNERS = "security"


def default_channel(notify_email: bool) -> str:
    """The channel of a category without a stored choice (see the module docstring)."""
    return "mail" if notify_email else "app"


def owner_ids(session: Session, models: Any, membership_ids: Iterable[int],
              now: dt.datetime | None = None) -> set[int]:
    """Which of ``membership_ids`` hold an Owner role in force now."""
    ids = list(membership_ids)
    if not ids:
        return set()
    MR, R = models.MemberRole, models.Role
    now = now or utcnow()
    query = (sa.select(MR.membership_id).join(R, R.id == MR.role_id)
             .where(MR.membership_id.in_(ids), R.is_owner.is_(True),
                    sa.or_(MR.starts_at.is_(None), MR.starts_at <= now),
                    sa.or_(MR.expires_at.is_(None), MR.expires_at > now)))
    with session.no_autoflush:
        return set(session.scalars(query, execution_options=BYPASS))


#: The recipients' channels for one category in one statement: each membership's
#: ``notify_email`` with its stored choice, if any (a preference is unique per
#: membership and category). Text, so that its compiled form is cached by its string.
_CHANNELS_SQL = ("SELECT m.id, m.notify_email, p.channel FROM {m} m "
                 "LEFT OUTER JOIN {p} p ON p.membership_id = m.id AND p.category = :category "
                 "WHERE m.id IN :ids")
_statements: dict[tuple[str, str, bool], sa.TextClause] = {}


def _statement(models: Any, in_workspace: bool) -> sa.TextClause:
    key = (models.Membership.__table__.name, models.NotificationPreference.__table__.name,
           in_workspace)
    stmt = _statements.get(key)
    if stmt is None:
        sql = _CHANNELS_SQL.format(m=key[0], p=key[1])
        if in_workspace:
            sql += " AND m.workspace_id = :workspace_id"
        stmt = sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))
        _statements[key] = stmt
    return stmt


def channels_for(session: Session, models: Any, membership_ids: Iterable[int],
                 category: str, workspace_id: int | None = None) -> dict[int, str]:
    """The channel of each of ``membership_ids`` for ``category`` (one query; two for
    the security category when an Owner's stored choice is ``off``).

    Ids of memberships outside ``workspace_id`` (when given), or of none, are
    left out: a notification never reaches another workspace's member. Runs
    inside a flush too, so it never autoflushes.
    """
    ids = sorted(set(membership_ids))
    if not ids:
        return {}
    params: dict[str, Any] = {"ids": ids, "category": category}
    if workspace_id is not None:
        params["workspace_id"] = workspace_id
    # On the session's connection: a plain statement, past the ORM's execute events
    # (the plugin's own tables, read whoever acts, as with BYPASS).
    rows = session.connection().execute(_statement(models, workspace_id is not None),
                                        params).all()
    channels = {int(mid): chosen or default_channel(bool(on)) for mid, on, chosen in rows}
    if category == LOCKED_FOR_OWNERS:
        for mid in owner_ids(session, models, [m for m, c in channels.items() if c == "off"]):
            channels[mid] = "mail"
    return channels


def preferences_of(rbac: RBACProtocol, membership: Any) -> dict[str, dict[str, Any]]:
    """The member's choice per category: ``{category: {"channel", "locked", "label"}}``.

    ``locked`` is True for the security category of an Owner (``off`` refused).
    """
    session = rbac.db.session
    P = rbac.models.NotificationPreference
    stored = dict(session.execute(sa.select(P.category, P.channel)
                                  .where(P.membership_id == membership.id)).all())
    owner = membership.id in owner_ids(session, rbac.models, [membership.id])
    result = {}
    for key, label in CATEGORIES.items():
        locked = owner and key == LOCKED_FOR_OWNERS
        channel = stored.get(key, default_channel(membership.notify_email))
        if locked and channel == "off":
            channel = "mail"
        result[key] = {"channel": channel, "locked": locked, "label": label}
    return result


def save(rbac: RBACProtocol, membership: Any, values: Mapping[str, Any]) -> dict[str, str]:
    """Store the member's channels for the categories in ``values``; return what changed.

    Refuses (400, naming the field) an unknown category, an unknown channel,
    and ``off`` for an Owner's security alerts; nothing is stored then.
    """
    if not isinstance(values, Mapping):
        raise ValidationError("send an object of category: channel", field="preferences")
    for key, channel in values.items():
        if key not in CATEGORIES:
            raise ValidationError(f"{key}: unknown category (one of {', '.join(CATEGORIES)})",
                                  field=str(key))
        if not isinstance(channel, str) or channel not in CHANNELS:
            raise ValidationError(f"{key}: channel must be one of {', '.join(CHANNELS)}",
                                  field=key)
    current = preferences_of(rbac, membership)
    if values.get(LOCKED_FOR_OWNERS) == "off" and current[LOCKED_FOR_OWNERS]["locked"]:
        raise ValidationError("security: security alerts to Owners cannot be switched off",
                              field=LOCKED_FOR_OWNERS)
    session = rbac.db.session
    P = rbac.models.NotificationPreference
    rows = {p.category: p for p in session.scalars(
        sa.select(P).where(P.membership_id == membership.id))}
    changed = {}
    for key, channel in values.items():
        if current[key]["channel"] == channel and key in rows:
            continue
        if key in rows:
            rows[key].channel = channel
        else:
            session.add(P(membership_id=membership.id, category=key, channel=channel))
        if current[key]["channel"] != channel:
            changed[key] = channel
    session.flush()
    return changed
