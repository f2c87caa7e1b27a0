"""Smoke test of an installed crm-rbac wheel, run by scripts/check_wheel.sh.

Run it from a directory outside the repository with the venv's python, so that
only the installed distribution is importable::

    python smoke_wheel.py --extras none     # core dependencies only
    python smoke_wheel.py --extras all      # crm-rbac[admin,mail,migrations]

It defines the smallest host an adopter would write (Flask-SQLAlchemy, a User
model, one protected model), registers the extension, creates the tables on
an in-memory SQLite database, builds a workspace with
``crm_rbac_plugin.workspaces`` inside ``rbac.system()`` and checks that a
member sees only their own records. It also checks that the demo ``crm_app``
is not installed, that the plugin's templates and ``py.typed`` are, and that
invitations work with and without Flask-Mail.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import pathlib
import sys
from contextlib import redirect_stderr

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    aliased,
    mapped_column,
    relationship,
    selectinload,
)

import crm_rbac_plugin
from crm_rbac_plugin import RBAC, team, workspaces


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"smoke_wheel: FAILED: {what}")
    print(f"smoke_wheel: ok: {what}")


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class User(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)
    name: Mapped[str] = mapped_column(sa.String(100), default="")


class Lead(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(sa.ForeignKey("rbac_workspace.id"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("user.id"))
    name: Mapped[str] = mapped_column(sa.String(200))
    owner = relationship(User)


rbac = RBAC(db=db, user_model=User)
rbac.register_resource("leads", Lead, module="sales")


def create_app(with_mail: bool) -> Flask:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="smoke", SQLALCHEMY_DATABASE_URI="sqlite://",
                      MAIL_SUPPRESS_SEND=True, MAIL_DEFAULT_SENDER="crm@example.test")
    db.init_app(app)
    if with_mail:
        from flask_mail import Mail

        Mail(app)
    rbac.init_app(app)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--extras", choices=("none", "all"), required=True)
    extras = parser.parse_args().extras == "all"

    package = pathlib.Path(crm_rbac_plugin.__file__).parent
    check("site-packages" in package.parts, f"crm_rbac_plugin comes from the wheel ({package})")
    check(importlib.util.find_spec("crm_app") is None, "the demo crm_app is not installed")
    check((package / "py.typed").is_file(), "py.typed is installed")
    check((package / "templates" / "rbac" / "403.html").is_file(), "templates are installed")
    check(any((package / "static").rglob("*.css")), "static files are installed")
    for module in ("flask_admin", "flask_mail", "flask_migrate"):
        installed = importlib.util.find_spec(module) is not None
        check(installed == extras, f"{module} {'is' if extras else 'is not'} installed")
    if extras:
        admin = importlib.import_module("crm_rbac_plugin.admin")
        check(hasattr(admin, "RBACModelView"), "crm_rbac_plugin.admin imports")

    app = create_app(with_mail=extras)
    with app.app_context():
        db.create_all()
        with rbac.system():
            ann = User(email="ann@example.test", name="Ann")
            bob = User(email="bob@example.test", name="Bob")
            db.session.add_all([ann, bob])
            db.session.flush()
            ws = workspaces.create_workspace(rbac, "Acme", owner=ann)
            bobs = workspaces.add_member(rbac, ws, bob, ["member"])
            db.session.add_all([Lead(workspace_id=ws.id, owner_id=ann.id, name="ann's"),
                                Lead(workspace_id=ws.id, owner_id=bob.id, name="bob's")])
            db.session.commit()
            owner = db.session.scalar(sa.select(rbac.models.Membership)
                                      .where(rbac.models.Membership.user_id == ann.id))
            bobs_id, owner_id = bobs.id, owner.id
        db.session.expunge_all()

        with rbac.as_member(bobs_id):
            names = db.session.scalars(sa.select(Lead.name)).all()
        check(names == ["bob's"], f"a member sees only their own leads ({names})")
        other = aliased(Lead)
        with rbac.as_member(bobs_id):
            names = db.session.scalars(sa.select(User.name).join(other, other.owner_id == User.id)
                                       ).all()
        check(names == ["Bob"], f"a join to an aliased protected model is filtered ({names})")
        with rbac.as_member(bobs_id):
            owners = [lead.owner.name for lead in db.session.scalars(
                sa.select(Lead).options(selectinload(Lead.owner)).execution_options(yield_per=1))]
        check(owners == ["Bob"], f"streaming with yield_per and selectinload works ({owners})")
        with rbac.as_member(owner_id):
            names = sorted(db.session.scalars(sa.select(Lead.name)).all())
        check(names == ["ann's", "bob's"], f"the owner sees every lead ({names})")

        db.session.expunge_all()
        with rbac.as_member(owner_id) as access, app.test_request_context():
            role = workspaces.role_by_key(rbac, db.session.get(rbac.models.Workspace,
                                                               access.workspace_id), "member")
            err = io.StringIO()
            with redirect_stderr(err):
                if extras:
                    mail = app.extensions["mail"]
                    with mail.record_messages() as outbox:
                        _, token = team.invite(rbac, access, "cy@example.test", [role])
                    sent = len(outbox)
                else:
                    _, token = team.invite(rbac, access, "cy@example.test", [role])
                    sent = 0
            db.session.commit()
        printed = token in err.getvalue()
        if extras:
            check(sent == 1, "the invitation went out through Flask-Mail")
        else:
            check(printed, "without Flask-Mail the invitation is printed to the console")
    print("smoke_wheel: passed")


if __name__ == "__main__":
    main()
