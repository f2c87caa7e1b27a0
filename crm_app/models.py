"""The demo CRM's own data: users, leads, deals, clients, tasks and notes.

Every CRM table carries ``workspace_id`` and ``owner_id`` and is registered
with the RBAC extension in :mod:`crm_app.rbac_setup`; nothing here filters
by hand.
"""

from __future__ import annotations

import datetime as dt
import secrets
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from crm_rbac_plugin.fields import label
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.models.base import NEVER_REUSED

from .extensions import db

#: The values of the status, stage, source and region columns; their
#: ``info={"choices": ...}`` lets the role editor's condition builder offer them as
#: a pick list, and Flask-Admin's panels refuse any other value, as the CRM forms do.
LEAD_STATUSES = ("new", "contacted", "qualified", "lost")
LEAD_SOURCES = ("website", "referral", "event", "outbound", "partner")
REGIONS = ("north", "south", "east", "west")
DEAL_STAGES = ("new", "qualified", "proposal", "negotiation", "won", "lost")
TASK_STATUSES = ("open", "done")


def new_session_token() -> str:
    """Return a fresh random value for :attr:`User.session_token` (43 URL-safe characters)."""
    return secrets.token_urlsafe(32)


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    """A person who signs in; their rights live in the RBAC extension's memberships.

    ``session_token`` is the *alternative id* Flask-Login keeps in the session
    and in the remember-me cookie (:meth:`get_id`; ``crm_app.auth`` binds it
    to the server-side session, ``<token>.<session id>``), in place of the primary
    key, as Flask-Security's ``fs_uniquifier``: a signed cookie stays valid
    until it expires, so the only way to end one on the server is to change
    what it names. Signing out, and every revocation of the account's other
    sessions (sign out everywhere, an admin's sign-out, a password change
    that ends the other sessions), draw a new token
    (:meth:`rotate_session_token`, see ``crm_app.auth.end_copied_cookies``),
    which kills every session and remember-me cookie issued before, copies
    included. API tokens are separate (the extension's ``ApiToken`` rows)
    and are not affected.
    """

    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255), default="")
    is_active_user: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    session_token: Mapped[str] = mapped_column(sa.String(64), unique=True, index=True,
                                               default=new_session_token)

    def get_id(self) -> str:
        """Return the session token (what Flask-Login stores), never the primary key."""
        if not self.session_token:  # a user not flushed yet: give it its token now
            self.session_token = new_session_token()
        return self.session_token

    def rotate_session_token(self) -> None:
        """Draw a new session token: every session and remember-me cookie issued so far dies."""
        self.session_token = new_session_token()

    def set_password(self, password: str) -> None:
        """Set the password. The other sessions end when the member asks (the
        profile's "Sign out my other sessions" box, ticked by default)."""
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.is_active_user

    def __str__(self) -> str:
        return self.name


class WorkspaceRecord:
    """Columns every protected CRM record shares: its workspace and its owner.

    Also the indexes the RBAC filter needs: workspace + owner (own, team and
    department scopes) and workspace + id (all scope, newest first).
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        sa.ForeignKey("rbac_workspace.id", ondelete="CASCADE"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:  # noqa: N805
        """The filter's indexes; and ids that SQLite never hands out again (``NEVER_REUSED``):
        the audit trail and URLs name records by id, so a deleted record's id must not come
        back as another record's (migration ``0017_crm_ids_never_reused``)."""
        table = cls.__tablename__  # type: ignore[attr-defined]
        return (sa.Index(f"ix_{table}_ws_owner", "workspace_id", "owner_id", "id"),
                sa.Index(f"ix_{table}_ws_id", "workspace_id", "id"), NEVER_REUSED)

    @declared_attr
    def owner(cls) -> Mapped[User | None]:  # noqa: N805
        return relationship(User)


class Client(WorkspaceRecord, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "client"
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(255), default="")
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    #: One of :data:`REGIONS`, or empty (the column's default) for none.
    region: Mapped[str] = mapped_column(sa.String(40), default="", info={"choices": REGIONS})

    #: The field that names a record on pages (see ``rbac.label``).
    __rbac_label__ = "name"

    def __str__(self) -> str:
        """The label field, or "Client #<id>" when it is hidden from the member."""
        return label(self)


class Lead(WorkspaceRecord, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "lead"
    name: Mapped[str] = mapped_column(sa.String(200))
    company: Mapped[str] = mapped_column(sa.String(200), default="")
    email: Mapped[str] = mapped_column(sa.String(255), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="new",
                                        info={"choices": LEAD_STATUSES})
    #: One of :data:`LEAD_SOURCES`, or empty (the column's default) for none.
    source: Mapped[str] = mapped_column(sa.String(40), default="",
                                        info={"choices": LEAD_SOURCES})

    #: The field that names a record on pages (see ``rbac.label``).
    __rbac_label__ = "name"

    def __str__(self) -> str:
        """The label field, or "Lead #<id>" when it is hidden from the member."""
        return label(self)


class Deal(WorkspaceRecord, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "deal"
    client_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    stage: Mapped[str] = mapped_column(sa.String(20), default="new",
                                       info={"choices": DEAL_STAGES})
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=Decimal("0"))
    close_date: Mapped[dt.date | None] = mapped_column()
    client = relationship(Client)

    #: The field that names a record on pages (see ``rbac.label``).
    __rbac_label__ = "title"

    def __str__(self) -> str:
        """The label field, or "Deal #<id>" when it is hidden from the member."""
        return label(self)


class Task(WorkspaceRecord, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "task"
    client_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default="open",
                                        info={"choices": TASK_STATUSES})
    due_date: Mapped[dt.date | None] = mapped_column()
    client = relationship(Client)

    #: The field that names a record on pages (see ``rbac.label``).
    __rbac_label__ = "title"

    def __str__(self) -> str:
        """The label field, or "Task #<id>" when it is hidden from the member."""
        return label(self)


class Note(WorkspaceRecord, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "note"
    client_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client.id", ondelete="SET NULL"), index=True)
    body: Mapped[str] = mapped_column(sa.Text)
    client = relationship(Client)

    #: The field that names a record on pages (see ``rbac.label``).
    __rbac_label__ = "body"

    def __str__(self) -> str:
        """The label field, or "Note #<id>" when it is hidden from the member."""
        return label(self)[:40]
