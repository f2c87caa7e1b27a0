"""A host whose records are keyed by text, by UUID or by two columns, with its own
refusal page: the decorators and the records API follow the model's key.

* ``record_required`` takes the key as the route gives it, typed already by a
  converter (``<uuid:id>``) or as text, and answers 404 for a value no key holds.
* ``GET /api/v1/records/<resource>/<id>`` reads the id as the model's key type.
* A composite key is refused with a clear error instead of loading by half of it.
* ``@rbac.unauthorized_handler`` may return anything a view may: the README's
  ``render_template(...), status`` tuple is the refusal.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask, jsonify, render_template_string, request
from flask_login import LoginManager, UserMixin, login_user
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_rbac_plugin import RBAC, record_required, require_permission
from tests.conftest import FreshContextClient

DOC = uuid.UUID("12345678-1234-5678-1234-567812345678")


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
login_manager = LoginManager()


class Person(UserMixin, db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "people"
    pid: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(255), unique=True)

    def get_id(self) -> str:
        return self.pid


class Article(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "articles"
    slug: Mapped[str] = mapped_column(sa.String(50), primary_key=True)
    owner_id: Mapped[str | None] = mapped_column(sa.ForeignKey("people.pid"))
    title: Mapped[str] = mapped_column(sa.String(100))


class Doc(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "docs"
    id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True, default=uuid.uuid4)
    owner_id: Mapped[str | None] = mapped_column(sa.ForeignKey("people.pid"))
    title: Mapped[str] = mapped_column(sa.String(100))


class Stock(db.Model):  # type: ignore[name-defined,misc]
    __tablename__ = "stock"
    sku: Mapped[str] = mapped_column(sa.String(20), primary_key=True)
    site: Mapped[int] = mapped_column(primary_key=True)


rbac = RBAC(db=db, user_model=Person)
rbac.register_resource("articles", Article, module="content", workspace=None)
rbac.register_resource("docs", Doc, module="content", workspace=None)
rbac.register_resource("stock", Stock, module="content", workspace=None, owner=None)


@login_manager.user_loader
def _load(pid: str) -> Any:
    return db.session.get(Person, pid)


@rbac.unauthorized_handler
def _refused(decision: Any, status: int) -> Any:
    return render_template_string("REFUSED {{ reason }}", reason=decision.reason), status


bp = Blueprint("host", __name__)


@bp.post("/login")
def _login() -> str:
    login_user(db.session.get(Person, request.form["pid"]))
    return "ok"


@bp.get("/articles/<id>")
@record_required("articles", name="article")
def _article(article: Article) -> Any:
    return jsonify(title=article.title)


@bp.get("/docs/<uuid:id>")
@record_required("docs", name="doc")
def _doc(doc: Doc) -> Any:
    return jsonify(title=doc.title)


@bp.get("/stock/<id>")
@record_required("stock", name="item")
def _stock(item: Stock) -> Any:
    return jsonify(sku=item.sku)


@bp.get("/admin-only")
@require_permission("articles.manage")
def _admin_only() -> str:
    return "managed"


@pytest.fixture
def host() -> Iterator[Flask]:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k" * 32, SQLALCHEMY_DATABASE_URI="sqlite://", TESTING=True,
                      WTF_CSRF_ENABLED=False, RBAC_SINGLE_TENANT=True,
                      RBAC_SIGNUP_ROLE="member")
    db.init_app(app)
    login_manager.init_app(app)
    rbac.init_app(app)
    app.register_blueprint(bp)
    app.test_client_class = FreshContextClient  # each request its own g, as deployed
    with app.app_context():
        db.create_all()
        with rbac.system():
            db.session.add_all([Person(pid="ann", email="ann@x.test"),
                                Person(pid="bob", email="bob@x.test")])
            db.session.flush()
            db.session.add_all([Article(slug="a-ann", owner_id="ann", title="A"),
                                Article(slug="a-bob", owner_id="bob", title="B"),
                                Doc(id=DOC, owner_id="ann", title="D"),
                                Stock(sku="X", site=1), Stock(sku="X", site=2)])
            db.session.commit()
        yield app
        db.session.remove()
        db.drop_all()


def _client(app: Flask, pid: str) -> Any:
    client = app.test_client()
    assert client.post("/login", data={"pid": pid}).status_code == 200
    return client


def test_record_required_follows_the_key_type(host: Flask) -> None:
    ann = _client(host, "ann")
    assert ann.get("/articles/a-ann").get_json() == {"title": "A"}
    assert ann.get("/articles/a-bob").status_code == 404  # a Member's own scope
    assert ann.get(f"/docs/{DOC}").get_json() == {"title": "D"}  # typed by <uuid:id>
    assert ann.get(f"/docs/{uuid.uuid4()}").status_code == 404


def test_the_records_api_reads_text_and_uuid_keys(host: Flask) -> None:
    ann = _client(host, "ann")
    assert ann.get("/api/v1/records/articles/a-ann").get_json()["title"] == "A"
    assert ann.get("/api/v1/records/articles/a-bob").status_code == 404
    assert ann.get(f"/api/v1/records/docs/{DOC}").get_json()["title"] == "D"
    assert ann.get("/api/v1/records/docs/not-a-uuid").status_code == 404


def test_a_composite_key_is_refused_with_its_reason(host: Flask) -> None:
    host.config["PROPAGATE_EXCEPTIONS"] = True
    with pytest.raises(TypeError, match="composite primary key"):
        _client(host, "ann").get("/stock/X")


def test_the_hosts_refusal_page_may_be_a_tuple(host: Flask) -> None:
    refused = _client(host, "ann").get("/admin-only")
    assert refused.status_code == 403 and refused.data.startswith(b"REFUSED")
    anonymous = host.test_client().get("/admin-only")
    assert anonymous.status_code == 401 and anonymous.data.startswith(b"REFUSED")
