"""``can()`` and the query filter agree on column types the demo does not use.

A host app with a Python enum, a yes/no column, a zoned date and time, a
fixed-width text, a case-insensitive collation and a department column: for
each, a record appears in the member's filtered list exactly when ``can()``
lets them view it, on SQLite and PostgreSQL; a condition neither twin can
evaluate alike is refused when saved.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from crm_rbac_plugin import RBAC, conditions, loader, workspaces
from crm_rbac_plugin.errors import InvalidCondition


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)


class Account(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(120), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    is_authenticated = True


class Widget(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int | None] = mapped_column(sa.ForeignKey("rbac_workspace.id"))
    owner_id: Mapped[int | None] = mapped_column(sa.ForeignKey("account.id"))
    dept_id: Mapped[int | None] = mapped_column(sa.Integer)
    color: Mapped[Color | None] = mapped_column(sa.Enum(Color))
    flag: Mapped[bool | None] = mapped_column(sa.Boolean)
    ratio: Mapped[float | None] = mapped_column(sa.Float)
    price: Mapped[Decimal | None] = mapped_column(sa.Numeric(12, 2))
    raw: Mapped[Decimal | None] = mapped_column(sa.Numeric)
    seen: Mapped[dt.datetime | None] = mapped_column(sa.DateTime)
    at: Mapped[dt.datetime | None] = mapped_column(sa.DateTime(timezone=True))
    born: Mapped[dt.date | None] = mapped_column(sa.Date)
    label: Mapped[str | None] = mapped_column(sa.String(30))
    code: Mapped[str | None] = mapped_column(sa.CHAR(5))
    wide_code: Mapped[str | None] = mapped_column(sa.NCHAR(5))
    email: Mapped[str | None] = mapped_column(
        sa.String(60, collation="NOCASE").with_variant(sa.String(60, collation="ci"), "postgresql"))


rbac = RBAC(db=db, user_model=Account)
rbac.register_resource("widgets", Widget, module="content", department="dept_id")


def make_host(database_url: str) -> Flask:
    app = Flask(__name__)
    app.config.update(SQLALCHEMY_DATABASE_URI=database_url, SECRET_KEY="test", TESTING=True,
                      WTF_CSRF_ENABLED=False, RBAC_DEFAULT_PLAN="enterprise")
    db.init_app(app)
    rbac.init_app(app)
    return app


@pytest.fixture
def host(database_url: str) -> Iterator[Any]:
    app = make_host(database_url)
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.exec_driver_sql("CREATE COLLATION IF NOT EXISTS ci (provider = icu, "
                                     "locale = 'und-u-ks-level2', deterministic = false)")
        db.create_all()
        owner = Account(email="owner@host.test", name="Owner")
        member = Account(email="member@host.test", name="Member")
        other = Account(email="other@host.test", name="Other")
        db.session.add_all([owner, member, other])
        db.session.flush()
        with rbac.system():
            ws = workspaces.create_workspace(rbac, "Host", owner=owner)
            m = rbac.models
            dept = m.Department(workspace=ws, name="D")
            db.session.add(dept)
            db.session.flush()
            mem = workspaces.add_member(rbac, ws, member, [], department=dept)
            db.session.commit()
        try:
            yield app, ws, mem, dept, {"owner": owner, "member": member, "other": other}
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def role_with(ws: Any, name: str, grants: list[tuple[str, str, str, Any]]) -> Any:
    """grants: (action, scope, effect, condition)."""
    r = rbac.models.Role(workspace=ws, name=name)
    for action, scope, effect, cond in grants:
        workspaces.add_grant(rbac, r, "widgets", action, scope, effect=effect, condition=cond)
    db.session.add(r)
    db.session.flush()
    return r


def fresh_access(app: Flask, membership: Any, **config: Any) -> Any:
    row = loader.membership_row(db.session, rbac.models, membership_id=membership.id)
    cfg = {**app.config, **config}
    return loader.load_access(db.session, rbac.models, rbac.registry, cfg, row)


def compare(access: Any, records: dict[str, Any], action: str = "view") -> tuple[set, set]:
    by_policy = {t for t, r in records.items() if rbac.can(action, "widgets", r, access=access)}
    with rbac.as_member(access):
        stmt = sa.select(Widget)
        if action != "view":
            stmt = stmt.execution_options(rbac_action=action)
        ids = {w.id for w in db.session.scalars(stmt)}
    by_filter = {t for t, r in records.items() if r.id in ids}
    return by_policy, by_filter


def _listed_as_allowed(app: Flask, ws: Any, mem: Any, grants: list[Any],
                       records: dict[str, Any], action: str = "view", **config: Any) -> None:
    with rbac.system():
        db.session.add_all(records.values())
        db.session.commit()
    workspaces.assign_role(rbac, mem, role_with(ws, "Probe", grants))
    db.session.flush()
    by_policy, by_filter = compare(fresh_access(app, mem, **config), records, action)
    assert by_policy == by_filter


@pytest.mark.parametrize(("op", "value"), [("eq", "RED"), ("in", ["RED"]), ("ne", "RED")])
def test_an_enum_column_compares_its_stored_names(host: Any, op: str, value: Any) -> None:
    app, ws, mem, _dept, _users = host
    records = {"red": Widget(workspace_id=ws.id, color=Color.RED),
               "blue": Widget(workspace_id=ws.id, color=Color.BLUE)}
    _listed_as_allowed(app, ws, mem, [("view", "all", "allow",
                                       [{"field": "color", "op": op, "value": value}])], records)


@pytest.mark.parametrize("effect", ["allow", "deny"])
@pytest.mark.parametrize(("op", "value"), [("eq", "ann@x.io"), ("in", ["ann@x.io"]),
                                           ("ne", "ann@x.io")])
def test_a_collated_text_column_compares_by_code_point(host: Any, op: str, value: Any,
                                                       effect: str) -> None:
    app, ws, mem, _dept, _users = host
    records = {"lower": Widget(workspace_id=ws.id, email="ann@x.io"),
               "upper": Widget(workspace_id=ws.id, email="ANN@X.IO")}
    grants = [("view", "all", effect, [{"field": "email", "op": op, "value": value}])]
    if effect == "deny":
        grants.append(("view", "all", "allow", None))
    _listed_as_allowed(app, ws, mem, grants, records)


@pytest.mark.parametrize(("op", "value"), [("eq", "2024-01-01T10:00:00+02:00"),
                                           ("gt", "2024-01-01T07:00:00+00:00"),
                                           ("lt", "2024-01-01T09:00:00+01:00")])
def test_a_zoned_date_and_time_compares_in_utc(host: Any, op: str, value: str) -> None:
    """SQLite keeps no zone: values are stored and compared as UTC wall clock."""
    app, ws, mem, _dept, _users = host
    utc = dt.UTC
    records = {"eight-utc": Widget(workspace_id=ws.id, at=dt.datetime(2024, 1, 1, 8, tzinfo=utc)),
               "noon-utc": Widget(workspace_id=ws.id, at=dt.datetime(2024, 1, 1, 12, tzinfo=utc))}
    _listed_as_allowed(app, ws, mem, [("view", "all", "allow",
                                       [{"field": "at", "op": op, "value": value}])], records)


@pytest.mark.parametrize("config", [{"RBAC_UNOWNED_VISIBLE": False},
                                    {"RBAC_UNOWNED_VISIBLE": True}])
@pytest.mark.parametrize(("grants", "action"), [
    ([("view", "department", "allow", None)], "view"),
    ([("view", "all", "allow", None), ("edit", "department", "allow", None)], "edit"),
    ([("view", "all", "allow", None), ("view", "department", "deny", None)], "view"),
])
def test_an_unowned_record_is_in_no_department(host: Any, grants: list[Any], action: str,
                                               config: dict[str, Any]) -> None:
    app, ws, mem, dept, users = host
    records = {"unowned-in-my-dept": Widget(workspace_id=ws.id, dept_id=dept.id),
               "others-in-my-dept": Widget(workspace_id=ws.id, owner_id=users["other"].id,
                                           dept_id=dept.id),
               "others-no-dept": Widget(workspace_id=ws.id, owner_id=users["other"].id)}
    _listed_as_allowed(app, ws, mem, grants, records, action, **config)


@pytest.mark.parametrize(("field", "op", "value", "message"), [
    ("flag", "lt", True, "no order"), ("flag", "gt", False, "no order"),
    ("code", "eq", "ab", "CHAR"), ("code", "in", ["ab"], "CHAR"),
    ("wide_code", "eq", "ab", "CHAR"),
    ("id", "in", list(range(conditions.IN_LIMIT + 1)), "at most"),
])
def test_conditions_the_twins_cannot_share_are_refused(host: Any, field: str, op: str,
                                                       value: Any, message: str) -> None:
    with pytest.raises(InvalidCondition, match=message):
        conditions.validate(Widget, [{"field": field, "op": op, "value": value}])


def test_an_in_list_keeps_each_value_once(host: Any) -> None:
    (clause,) = conditions.validate(Widget, [{"field": "label", "op": "in",
                                              "value": ["a", "b", "a", "b"]}])
    assert clause == ("label", "in", ("a", "b"))


def test_an_enum_condition_judges_edits_and_deletes(host: Any) -> None:
    """The write guard judges a record's stored state, a plain namespace: the enum's
    stored text comes from the condition's validation, not from the record's class."""
    _app, ws, mem, _dept, users = host
    red = [{"field": "color", "op": "eq", "value": "RED"}]
    with rbac.system():
        role = role_with(ws, "Red editor", [(action, "own", "allow", red)
                                            for action in ("view", "edit", "delete")])
        workspaces.assign_role(rbac, mem, role)
        widgets = [Widget(workspace_id=ws.id, owner_id=users["member"].id, color=color)
                   for color in (Color.RED, Color.BLUE)]
        db.session.add_all(widgets)
        db.session.commit()
        red_id, blue_id = (w.id for w in widgets)
    with rbac.as_member(rbac.access_for(mem)):
        widget = db.session.get(Widget, red_id)
        widget.label = "edited"
        db.session.commit()
        db.session.delete(db.session.get(Widget, red_id))
        db.session.commit()
        assert db.session.scalars(sa.select(Widget.id)).all() == []  # blue: not theirs
    with rbac.system():
        assert db.session.scalars(sa.select(Widget.id)).all() == [blue_id]
