"""The records API writes every column type a host uses, and never answers a 500 for one.

A host model holds an Enum, a Decimal, a UUID, dates and times, an interval,
JSON, bytes and a custom type; the API answers them by the rules of
:mod:`crm_rbac_plugin.api.values`, on SQLite and PostgreSQL, and the host's
``@rbac.field_serializer`` is consulted first.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, g, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_rbac_plugin import RBAC, workspaces
from crm_rbac_plugin.api.values import Encoder
from tests.conftest import FreshContextClient


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Shape(enum.Enum):
    SQUARE = (4, "sides")


class Money:
    """A host value type SQLAlchemy stores through a TypeDecorator."""

    def __init__(self, cents: int) -> None:
        self.cents = cents

    def __str__(self) -> str:
        return f"{self.cents / 100:.2f} EUR"


class MoneyType(sa.types.TypeDecorator[Money]):
    impl = sa.Integer
    cache_ok = True

    def process_bind_param(self, value: Money | None, dialect: Any) -> int | None:
        return None if value is None else value.cents

    def process_result_value(self, value: int | None, dialect: Any) -> Money | None:
        return None if value is None else Money(value)


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Account(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    is_authenticated = True


class Gadget(db.Model):  # type: ignore[name-defined,misc]
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rbac_workspace.id"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account.id"))
    color: Mapped[Color | None] = mapped_column(sa.Enum(Color))
    shape: Mapped[Shape | None] = mapped_column(sa.Enum(Shape))
    price: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    ratio: Mapped[float | None] = mapped_column(sa.Float)
    code: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    born: Mapped[dt.date | None] = mapped_column(sa.Date)
    seen: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    opens: Mapped[dt.time | None] = mapped_column(sa.Time)
    lasts: Mapped[dt.timedelta | None] = mapped_column(sa.Interval)
    extra: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
    blob: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    cost: Mapped[Money | None] = mapped_column(MoneyType)


rbac = RBAC(db=db, user_model=Account)
rbac.register_resource("gadgets", Gadget, module="content")


@rbac.user_getter
def header_user() -> Any:
    return g.get("api_user")


CODE = uuid.UUID("12345678-1234-5678-1234-567812345678")
FULL = {"color": "red", "shape": "SQUARE", "price": "1000.50", "ratio": 0.25,
        "code": str(CODE), "born": "2024-02-29", "seen": "2024-02-29T13:45:30",
        "opens": "09:30:00", "lasts": 5400.0, "extra": {"tags": ["a", "b"], "n": 1},
        "blob": "AAEC/w==", "cost": "12.50 EUR"}
EMPTY = dict.fromkeys(FULL)


@pytest.fixture
def host(database_url: str) -> Iterator[Flask]:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY="test", TESTING=True,
                      WTF_CSRF_ENABLED=False, RBAC_DEFAULT_PLAN="enterprise")
    db.init_app(app)
    rbac.init_app(app)
    app.test_client_class = FreshContextClient

    @app.before_request
    def sign_in_from_header() -> None:
        email = request.headers.get("X-User")
        if email:
            g.api_user = db.session.scalar(sa.select(Account).where(Account.email == email))

    with app.app_context():
        db.create_all()
        owner = Account(email="owner@host.test", name="Owner")
        db.session.add(owner)
        db.session.flush()
        with rbac.system():
            ws = workspaces.create_workspace(rbac, "Host", owner=owner)
            db.session.add_all([
                Gadget(workspace_id=ws.id, owner_id=owner.id, color=Color.RED, shape=Shape.SQUARE,
                       price=Decimal("1000.50"), ratio=0.25, code=CODE, born=dt.date(2024, 2, 29),
                       seen=dt.datetime(2024, 2, 29, 13, 45, 30), opens=dt.time(9, 30),
                       lasts=dt.timedelta(hours=1, minutes=30),
                       extra={"tags": ["a", "b"], "n": 1}, blob=b"\x00\x01\x02\xff",
                       cost=Money(1250)),
                Gadget(workspace_id=ws.id, owner_id=owner.id)])
            db.session.commit()
        try:
            yield app
        finally:
            rbac.hooks.field_serializer = None
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def get(app: Flask, url: str) -> Any:
    answer = app.test_client().get(url, headers={"X-User": "owner@host.test"})
    assert answer.status_code == 200, answer.text
    return answer.json


def without_keys(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("id", "workspace_id", "owner_id")}


def test_every_column_type_is_written_by_the_rules(host: Flask,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="crm_rbac_plugin.api.values"):
        items = get(host, "/api/v1/records/gadgets")["items"]
    assert [without_keys(i) for i in items] == [FULL, EMPTY]
    # The custom type falls back to str() and says so once per field and response.
    warnings = [r.getMessage() for r in caplog.records]
    assert warnings == ["records API: gadgets.cost holds a Money, written as str(); register "
                        "@rbac.field_serializer to choose its JSON form"]
    assert get(host, f"/api/v1/records/gadgets/{items[0]['id']}") == items[0]


def test_the_hosts_serializer_comes_first(host: Flask) -> None:
    @rbac.field_serializer
    def money(value: Any) -> Any:
        if isinstance(value, Money):
            return {"cents": value.cents, "currency": "EUR"}
        if isinstance(value, Color):
            return value.name.lower() + "!"
        return NotImplemented

    item = without_keys(get(host, "/api/v1/records/gadgets")["items"][0])
    assert item == {**FULL, "cost": {"cents": 1250, "currency": "EUR"}, "color": "red!"}


def test_values_json_cannot_hold_are_written_as_text() -> None:
    encoder = Encoder(None, "gadgets")
    assert encoder.field("ratio", float("nan")) == "NaN"
    assert encoder.field("ratio", float("-inf")) == "-Infinity"
    assert encoder.field("price", Decimal("NaN")) == "NaN"
    assert encoder.field("extra", {1: Decimal("1.10"), "u": [CODE]}) == {"1": "1.10", "u": [str(CODE)]}
    assert encoder.field("blob", memoryview(b"hi")) == "aGk="


def test_an_enum_is_written_by_value_or_by_name() -> None:
    class Level(enum.IntEnum):
        LOW = 1

    class Odd(enum.Enum):
        NOTHING = None
        HALF = 0.5
        FOREVER = float("inf")

    encoder = Encoder(None, "gadgets")
    assert encoder.field("x", Level.LOW) == 1 and type(encoder.field("x", Level.LOW)) is int
    assert encoder.field("x", Odd.NOTHING) == "NOTHING"
    assert encoder.field("x", Odd.HALF) == 0.5
    assert encoder.field("x", Odd.FOREVER) == "FOREVER"
    assert encoder.field("x", Shape.SQUARE) == "SQUARE"
