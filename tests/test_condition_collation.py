"""Text conditions order by code point in Python and in SQL, whatever the collation.

``conditions.matches`` compares ``str`` by code point; the SQL of
``conditions.to_sql`` pins ``COLLATE "C"`` (PostgreSQL) or ``COLLATE BINARY``
(SQLite) on ``lt``/``gt`` over text, so a database created with an ICU
``en-US`` locale, where "Mango" sorts after "apple", gives the list filter
the answer ``can()`` gives. Run on SQLite, on the C-ordered test server and
on an ICU ``en-US`` database (``pg_icu_url``).
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import conditions
from tests.conftest import app_with_tables, build_world
from tests.rbac_helpers import (  # noqa: F401
    allowed_tags,
    custom_role,
    fast_passwords,
    give_role,
    matching_three_ways,
    remove_roles,
)

#: Mixed case, accents, ligatures and scripts: the orders of C and en-US differ on them.
NAMES = ["apple", "Apple", "Mango", "mango", "Émile", "emile", "Eve", "Zoë", "zoe", "Zoe",
         "Ångström", "angstrom", "straße", "strasse", "ß", "a", "Z", "_x", "1st", "日本",
         "ǅemal", "Œuvre", "oeuvre"]
#: Condition values: some of the names, and values between them.
VALUES = ["apple", "Mango", "mango", "Émile", "e", "Zoë", "zz", "Z", "ß", "Ångström",
          "straße", "Œ", "日", "0", "a"]


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-icu"])
def collation_app(request: pytest.FixtureRequest) -> Iterator[Flask]:
    """The demo app on SQLite, on the C-ordered server and on an ICU en-US database."""
    url = {"sqlite": lambda: "sqlite://",
           "postgresql": lambda: request.getfixturevalue("pg_url"),
           "postgresql-icu": lambda: request.getfixturevalue("pg_icu_url")}[request.param]()
    with app_with_tables(str(url)) as app:
        yield app


@pytest.fixture
def named_world(collation_app: Flask) -> SimpleNamespace:
    w = build_world()
    with rbac.system():
        w.named = {name: Lead(workspace_id=w.ws.id, owner_id=None, name=name) for name in NAMES}
        db.session.add_all(w.named.values())
        db.session.commit()
    return w


def test_the_icu_database_really_orders_differently(collation_app: Flask,
                                                    request: pytest.FixtureRequest) -> None:
    """Guard of this module's power: en-US puts "apple" first, C puts "Mango" first."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no locale collation")
    mango_first = db.session.scalar(sa.text("SELECT 'Mango' < 'apple'"))
    icu = "postgresql-icu" in request.node.callspec.id
    assert mango_first is (not icu)


def test_text_order_agrees_in_python_and_sql(named_world: SimpleNamespace) -> None:
    by_python, by_sql, negated = {}, {}, {}
    for op in ("lt", "gt"):
        for value in VALUES:
            key = f"name {op} {value}"
            clauses = conditions.validate(Lead, [{"field": "name", "op": op, "value": value}])
            by_python[key], by_sql[key], negated[key] = matching_three_ways(
                Lead, named_world.named, clauses)
    assert by_sql == by_python
    assert negated == by_python
    # Code point order: every upper-case ASCII letter before every lower-case one.
    assert "Mango" in by_python["name lt apple"] and "apple" not in by_python["name lt Mango"]


def test_check_and_filter_agree_through_roles(named_world: SimpleNamespace) -> None:
    """Allow and deny rules with text lt/gt: ``can()`` equals the filtered list."""
    member = named_world.members["finance"]
    remove_roles(member)
    records = dict(named_world.named)
    seen: dict[str, set[str]] = {}
    for n, (op, value) in enumerate((op, v) for op in ("lt", "gt") for v in VALUES[::2]):
        clause = [{"field": "name", "op": op, "value": value}]
        allow = custom_role(named_world, f"Allow {n}", [("leads", "view", "all")],
                            condition=clause)
        deny = custom_role(named_world, f"Deny {n}", [("leads", "view", "all")],
                           effect="deny", condition=clause)
        both = custom_role(named_world, f"Base {n}", [("leads", "view", "all")])
        first = give_role(member, allow)
        allowed = allowed_tags(member, "leads", "view", records)  # asserts agreement
        db.session.delete(first)
        db.session.flush()
        second, third = give_role(member, deny), give_role(member, both)
        spared = allowed_tags(member, "leads", "view", records)
        assert spared == set(records) - allowed
        seen[f"{op} {value}"] = allowed
        for assignment in (second, third):
            db.session.delete(assignment)
        db.session.flush()
    assert "Mango" in seen["lt apple"] and "Mango" not in seen["gt apple"]
