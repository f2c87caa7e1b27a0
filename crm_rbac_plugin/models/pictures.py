"""The profile pictures table (used by :mod:`crm_rbac_plugin.team.pictures`).

``rbac_profile_picture`` holds at most one picture per user: the bytes the
plugin itself encoded (never the uploaded file), their content type, a
SHA-256 ``digest`` of the bytes that names the version in URLs and ETags,
and when it was set. A picture belongs to the account, not to a workspace
(one person, one face, whatever workspaces they belong to), so the row
carries the host's user key and no workspace; deleting the user deletes it
(``ON DELETE CASCADE``). It lives in a table of the plugin, not on the
host's user model, so that any host adopts the plugin without a change to
its own table. Not a policy table: changing it changes nobody's access.

The bytes are small (a square of at most a few hundred pixels, some tens of
kilobytes), so they sit in the database: no second store to back up, and a
picture is gone the moment its row is.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import pk, uq, user_key_column, utcnow


def define_picture_model(db: Any, user_model: type) -> Any:
    """Create ``ProfilePicture`` on ``db.Model``."""

    class ProfilePicture(db.Model):  # type: ignore[name-defined,misc]
        """One user's profile picture, as the plugin re-encoded it."""

        __tablename__ = "rbac_profile_picture"
        __table_args__ = (pk("rbac_profile_picture", "id"), uq("rbac_profile_picture", "user_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        user_id: Mapped[Any] = user_key_column(user_model, "rbac_profile_picture.user_id",
                                               ondelete="CASCADE")
        #: Deferred: lists read the digest of many rows and never need their bytes.
        data: Mapped[bytes] = mapped_column(sa.LargeBinary, deferred=True)
        content_type: Mapped[str] = mapped_column(sa.String(100))
        #: SHA-256 of ``data`` in hex: the version in the picture's URL and its ETag.
        digest: Mapped[str] = mapped_column(sa.String(64))
        updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

        def __repr__(self) -> str:
            return f"<ProfilePicture user={self.user_id} {self.digest[:8]}>"

    return ProfilePicture
