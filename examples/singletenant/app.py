"""A help desk for one company, adopted to the plugin.

The host signs people in with Flask-Login (integer user keys, a password
form) and keeps tickets, each with an owner. It runs the plugin in
single-tenant mode: one implicit workspace, no workspace column on its
models. ``flask rbac adopt --owner ann@desk.example.com`` makes that
workspace from the users who exist when it adopts the plugin, and a user
created later becomes a member when they first sign in
(``RBAC_SIGNUP_ROLE``), so the host's code that creates users is unchanged.

As in the multi-tenant example, the views need no adoption line: the
filter makes an invisible ticket a 404 and the flush guard makes a write
beyond the member's rights a 403.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, abort, jsonify, request
from flask_login import LoginManager, UserMixin, current_user, login_required, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from werkzeug.security import check_password_hash

# --- rbac adoption: begin ---
from crm_rbac_plugin import RBAC

# --- rbac adoption: end ---


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()


class User(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(sa.String(255))


class Ticket(db.Model):  # type: ignore[name-defined,misc]
    """A support ticket, owned by the agent working it."""

    __tablename__ = "ticket"
    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(200))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))


# --- rbac adoption: begin ---
rbac = RBAC(db=db, user_model=User)
rbac.register_resource("tickets", Ticket, module="support", workspace=None)
# --- rbac adoption: end ---

bp = Blueprint("helpdesk", __name__)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    return db.session.get(User, int(user_id))


def as_json(ticket: Ticket) -> dict[str, Any]:
    return {"id": ticket.id, "subject": ticket.subject}


@bp.post("/login")
def login() -> Any:
    user = db.session.scalars(sa.select(User).filter_by(email=request.form["email"])).first()
    if user is None or not check_password_hash(user.password_hash, request.form["password"]):
        abort(401)
    login_user(user)
    return jsonify({"signed_in": user.email})


@bp.get("/tickets/")
@login_required
def list_tickets() -> Any:
    return jsonify([as_json(t) for t in db.session.scalars(sa.select(Ticket).order_by(Ticket.id))])


@bp.post("/tickets/")
@login_required
def create_ticket() -> Any:
    ticket = Ticket(subject=request.form["subject"], owner_id=current_user.id)
    db.session.add(ticket)
    db.session.commit()
    return jsonify(as_json(ticket)), 201


@bp.get("/tickets/<int:ticket_id>")
@login_required
def show_ticket(ticket_id: int) -> Any:
    return jsonify(as_json(db.get_or_404(Ticket, ticket_id)))


@bp.post("/tickets/<int:ticket_id>/edit")
@login_required
def edit_ticket(ticket_id: int) -> Any:
    ticket = db.get_or_404(Ticket, ticket_id)
    ticket.subject = request.form["subject"]
    db.session.commit()
    return jsonify(as_json(ticket))


@bp.post("/tickets/<int:ticket_id>/delete")
@login_required
def delete_ticket(ticket_id: int) -> Any:
    db.session.delete(db.get_or_404(Ticket, ticket_id))
    db.session.commit()
    return jsonify({"deleted": ticket_id})


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="change me", SQLALCHEMY_DATABASE_URI="sqlite:///helpdesk.db")
    # --- rbac adoption: begin ---
    app.config.from_mapping(RBAC_SINGLE_TENANT=True, RBAC_SIGNUP_ROLE="member")
    # --- rbac adoption: end ---
    app.config.from_mapping(config or {})
    db.init_app(app)
    login_manager.init_app(app)
    # --- rbac adoption: begin ---
    rbac.init_app(app)
    # --- rbac adoption: end ---
    app.register_blueprint(bp)
    return app
