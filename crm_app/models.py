"""The demo CRM's own data: users, leads, deals, clients, tasks and notes.

Every CRM table carries ``workspace_id`` and ``owner_id`` and is registered
with the RBAC extension in :mod:`crm_app.rbac_setup`; nothing here filters
by hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from crm_rbac_plugin.models import utcnow

from .extensions import db

LEAD_STATUSES = ("new", "contacted", "qualified", "lost")
DEAL_STAGES = ("new", "qualified", "proposal", "negotiation", "won", "lost")
TASK_STATUSES = ("open", "done")


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    password_hash: Mapped[str] = mapped_column(sa.String(255), default="")
    is_active_user: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    def set_password(self, password: str) -> None:
        self.password_hash = generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.is_active_user

    def __str__(self) -> str:
        return self.name


def _scoped_indexes(table: str) -> tuple[sa.Index, ...]:
    """Indexes the RBAC filter needs: workspace + owner (own/team/department
    scopes) and workspace + id (all scope, newest first)."""
    return (sa.Index(f"ix_{table}_ws_owner", "workspace_id", "owner_id", "id"),
            sa.Index(f"ix_{table}_ws_id", "workspace_id", "id"))


def _workspace_fk() -> Mapped[int]:
    return mapped_column(sa.ForeignKey("rbac_workspace.id", ondelete="CASCADE"))


def _owner_fk() -> Mapped[int | None]:
    return mapped_column(sa.ForeignKey("user.id", ondelete="SET NULL"))


class Client(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "client"
    __table_args__ = _scoped_indexes("client")
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = _workspace_fk()
    owner_id: Mapped[int | None] = _owner_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str] = mapped_column(sa.String(255), default="")
    phone: Mapped[str] = mapped_column(sa.String(40), default="")
    region: Mapped[str] = mapped_column(sa.String(40), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    owner = relationship(User)

    def __str__(self) -> str:
        return self.name


class Lead(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "lead"
    __table_args__ = _scoped_indexes("lead")
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = _workspace_fk()
    owner_id: Mapped[int | None] = _owner_fk()
    name: Mapped[str] = mapped_column(sa.String(200))
    company: Mapped[str] = mapped_column(sa.String(200), default="")
    email: Mapped[str] = mapped_column(sa.String(255), default="")
    status: Mapped[str] = mapped_column(sa.String(20), default="new")
    source: Mapped[str] = mapped_column(sa.String(40), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    owner = relationship(User)

    def __str__(self) -> str:
        return self.name


class Deal(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "deal"
    __table_args__ = _scoped_indexes("deal")
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = _workspace_fk()
    owner_id: Mapped[int | None] = _owner_fk()
    client_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    stage: Mapped[str] = mapped_column(sa.String(20), default="new")
    amount: Mapped[Decimal] = mapped_column(sa.Numeric(12, 2), default=Decimal("0"))
    close_date: Mapped[dt.date | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    owner = relationship(User)
    client = relationship(Client)

    def __str__(self) -> str:
        return self.title


class Task(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "task"
    __table_args__ = _scoped_indexes("task")
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = _workspace_fk()
    owner_id: Mapped[int | None] = _owner_fk()
    client_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client.id", ondelete="SET NULL"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    status: Mapped[str] = mapped_column(sa.String(20), default="open")
    due_date: Mapped[dt.date | None] = mapped_column()
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    owner = relationship(User)
    client = relationship(Client)

    def __str__(self) -> str:
        return self.title


class Note(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "note"
    __table_args__ = _scoped_indexes("note")
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = _workspace_fk()
    owner_id: Mapped[int | None] = _owner_fk()
    client_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("client.id", ondelete="SET NULL"), index=True)
    body: Mapped[str] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    owner = relationship(User)
    client = relationship(Client)

    def __str__(self) -> str:
        return self.body[:40]
