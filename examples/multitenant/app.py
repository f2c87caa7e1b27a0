"""A project tracker for several companies, adopted to the plugin.

The host signs people in with Flask-Security-Too (its own ``User`` and
``Role`` models, ``fs_uniquifier`` as Flask-Login's id) and keys users by a
UUID. Projects have an owner; tags have none. A Flask-Admin panel lists
projects with CSV export; a digest job runs in a worker thread or from the
CLI. Rows written before adoption hold no workspace until ``flask rbac adopt
--workspace acme --name Acme --owner ann@acme.example.com`` gives them one;
a company that signs up later gets its own workspace. The home page offers
the plugin's workspace switcher to a person who works for several companies.

The plugin's filter and flush guard protect the JSON views as they are: a
record the member may not see is a 404 from ``db.get_or_404``, a write
beyond the member's rights is a 403 from the flush. The views therefore
carry no adoption line.
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import click
import sqlalchemy as sa
from flask import Blueprint, Flask, current_app, jsonify, render_template, request
from flask.cli import with_appcontext
from flask_admin import Admin
from flask_login import current_user
from flask_security import RoleMixin, Security, SQLAlchemyUserDatastore, UserMixin, auth_required
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# --- rbac adoption: begin ---
from crm_rbac_plugin import RBAC
from crm_rbac_plugin.admin import RBACModelView
from crm_rbac_plugin.cli import as_member_option
from crm_rbac_plugin.mixins import WorkspaceMixin

# --- rbac adoption: end ---


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
security = Security()

roles_users = sa.Table(
    "roles_users", Base.metadata,
    sa.Column("user_id", sa.Uuid, sa.ForeignKey("user.id"), primary_key=True),
    sa.Column("role_id", sa.Integer, sa.ForeignKey("role.id"), primary_key=True))


class Role(db.Model, RoleMixin):  # type: ignore[name-defined,misc]
    """Flask-Security-Too's role: a site-wide label, unrelated to the plugin's roles."""

    __tablename__ = "role"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    description: Mapped[str | None] = mapped_column(sa.String(255))


class User(db.Model, UserMixin):  # type: ignore[name-defined,misc]
    """A person who signs in; Flask-Login knows them by ``fs_uniquifier``."""

    __tablename__ = "user"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    password: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    fs_uniquifier: Mapped[str] = mapped_column(sa.String(64), unique=True)
    roles = relationship(Role, secondary=roles_users)

    def __str__(self) -> str:
        return self.email


# --- rbac adoption: begin ---
class Project(WorkspaceMixin, db.Model):  # type: ignore[name-defined,misc]
    # --- rbac adoption: end ---
    """A project with an owner."""

    __tablename__ = "project"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("user.id"))


# --- rbac adoption: begin ---
class Tag(WorkspaceMixin, db.Model):  # type: ignore[name-defined,misc]
    # --- rbac adoption: end ---
    """A label shared by a company: no owner."""

    __tablename__ = "tag"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(60))


# --- rbac adoption: begin ---
rbac = RBAC(db=db, user_model=User)
rbac.register_resource("projects", Project, module="work")
rbac.register_resource("tags", Tag, module="work", owner=None)
# --- rbac adoption: end ---

#: The models the JSON views serve, by URL segment.
MODELS: dict[str, type[Any]] = {"projects": Project, "tags": Tag}
bp = Blueprint("tracker", __name__)


def as_json(record: Any) -> dict[str, Any]:
    return {"id": record.id, "name": record.name}


@bp.get("/")
@auth_required()
def home() -> Any:
    return render_template("tracker/home.html")


@bp.get("/<kind>/")
@auth_required()
def list_records(kind: str) -> Any:
    model = MODELS[kind]
    return jsonify([as_json(r) for r in db.session.scalars(sa.select(model).order_by(model.id))])


@bp.post("/<kind>/")
@auth_required()
def create_record(kind: str) -> Any:
    record = MODELS[kind](name=request.form["name"])
    if isinstance(record, Project):
        record.owner_id = current_user.id
    db.session.add(record)
    db.session.commit()
    return jsonify(as_json(record)), 201


@bp.get("/<kind>/<int:record_id>")
@auth_required()
def show_record(kind: str, record_id: int) -> Any:
    return jsonify(as_json(db.get_or_404(MODELS[kind], record_id)))


@bp.post("/<kind>/<int:record_id>/edit")
@auth_required()
def edit_record(kind: str, record_id: int) -> Any:
    record = db.get_or_404(MODELS[kind], record_id)
    record.name = request.form["name"]
    db.session.commit()
    return jsonify(as_json(record))


@bp.post("/<kind>/<int:record_id>/delete")
@auth_required()
def delete_record(kind: str, record_id: int) -> Any:
    db.session.delete(db.get_or_404(MODELS[kind], record_id))
    db.session.commit()
    return jsonify({"deleted": record_id})


def project_digest() -> list[str]:
    """Return the names of the projects the acting member sees."""
    return [p.name for p in db.session.scalars(sa.select(Project).order_by(Project.name))]


def run_digest(app: Flask, handle: str) -> list[str]:
    """Run :func:`project_digest` in a worker thread, as a job queue would."""
    out: list[str] = []

    def work() -> None:
        with app.app_context():
            # --- rbac adoption: begin ---
            with rbac.as_member(handle):
                # --- rbac adoption: end ---
                out.extend(project_digest())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return out


@bp.post("/digest")
@auth_required()
def digest() -> Any:
    # --- rbac adoption: begin ---
    handle = str(rbac.member_handle())
    # --- rbac adoption: end ---
    return jsonify(run_digest(current_app._get_current_object(), handle))  # type: ignore[attr-defined]


@click.command("digest")
@with_appcontext
# --- rbac adoption: begin ---
@as_member_option
# --- rbac adoption: end ---
def digest_command() -> None:
    """Print the project digest."""
    click.echo("\n".join(project_digest()))


# --- rbac adoption: begin ---
class ProjectAdmin(RBACModelView):
    # --- rbac adoption: end ---
    """The projects panel; exports are the host's wish, the plugin's decision narrows them."""

    can_export = True
    column_list = ("id", "name", "owner_id")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(SECRET_KEY="change me", SECURITY_PASSWORD_SALT="change me too",
                            SECURITY_PASSWORD_HASH="pbkdf2_sha512",
                            SECURITY_EMAIL_VALIDATOR_ARGS={"check_deliverability": False},
                            SQLALCHEMY_DATABASE_URI="sqlite:///tracker.db")
    app.config.from_mapping(config or {})
    db.init_app(app)
    security.init_app(app, SQLAlchemyUserDatastore(db, User, Role))
    # --- rbac adoption: begin ---
    # adoption: Flask-Security-Too keeps its own user loader (its decorators read the
    # request attributes it sets), so the plugin reads the membership in a second query.
    rbac.init_app(app)
    # --- rbac adoption: end ---
    app.register_blueprint(bp)
    app.cli.add_command(digest_command)
    admin = Admin(app, name="Tracker admin")
    # --- rbac adoption: begin ---
    admin.add_view(ProjectAdmin(Project, db, rbac=rbac, resource="projects"))
    # --- rbac adoption: end ---
    return app
