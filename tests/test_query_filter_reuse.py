"""The query filter's per-statement work: a repeated statement reuses what it built.

A page runs the same statement shapes on every request. For a member whose
Access is cached, the listener adds the ``with_loader_criteria`` options it
built the first time and looks the statement's tables up by SQL cache key:
it neither builds criteria again nor walks the statement, and a one-model
SELECT does not go through the checks only other statement shapes can fail.
The rows are those of the first run.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
import sqlalchemy.ext.compiler
from sqlalchemy.orm import with_loader_criteria
from sqlalchemy.orm.util import LoaderCriteriaOption

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import decisions, listener


@pytest.mark.parametrize("member", ["member", "viewer", "manager"])
def test_a_repeated_list_statement_builds_and_walks_nothing(
        world: SimpleNamespace, member: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def page() -> list[int]:
        stmt = sa.select(Lead).order_by(Lead.id.desc()).limit(20)
        return [lead.id for lead in db.session.scalars(stmt)]

    with rbac.as_member(world.members[member]):
        first = page()
        calls: Counter[str] = Counter()

        def counted(name: str, func: Any) -> Any:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                calls[name] += 1
                return func(*args, **kwargs)
            return wrapper

        for name in ("referenced_resources", "aliased_resources", "unreached_tables",
                     "refuse_unfilterable"):
            monkeypatch.setattr(listener, name, counted(name, getattr(listener, name)))
        monkeypatch.setattr(decisions, "record_criteria",
                            counted("record_criteria", decisions.record_criteria))
        assert page() == first
        assert page() == first
    assert not calls, calls
    assert first  # the member sees some leads: the options did filter a real page


def _ids_with_plain_options(member: Any, action: str = "view") -> list[int]:
    """The member's page filtered by SQLAlchemy's own ``with_loader_criteria`` on the same
    criteria: what the listener's options must answer."""
    access = rbac.access_for(member.id)
    res = rbac.registry.for_model(Lead)
    stmt = (sa.select(Lead.id).order_by(Lead.id.desc()).limit(40)
            .options(with_loader_criteria(Lead, rbac.criteria(access, res, action)))
            .execution_options(rbac_bypass=True))
    return list(db.session.scalars(stmt))


def test_the_criteria_are_walked_for_the_cache_key_once_and_each_member_keeps_their_values(
        world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The options keep their part of the SQL cache key (:class:`listener.KeyedCriteria`):
    members whose criteria have the same shape share one compiled statement, and each
    execution still binds the member's own values."""
    def page() -> list[int]:
        stmt = sa.select(Lead).order_by(Lead.id.desc()).limit(40)
        return [lead.id for lead in db.session.scalars(stmt)]

    names = ["member", "viewer", "manager", "owner"]
    expected = {name: _ids_with_plain_options(world.members[name]) for name in names}
    assert len({tuple(ids) for ids in expected.values()}) >= 3, expected  # they differ
    walks = Counter[str]()
    plain = LoaderCriteriaOption._gen_cache_key

    def counted(self: Any, anon_map: Any, bindparams: list[Any]) -> Any:
        walks[type(self).__name__] += 1
        return plain(self, anon_map, bindparams)

    for name in names:
        with rbac.as_member(world.members[name]):
            assert page() == expected[name]
    monkeypatch.setattr(LoaderCriteriaOption, "_gen_cache_key", counted)
    for _ in range(3):
        for name in reversed(names):
            with rbac.as_member(world.members[name]):
                assert page() == expected[name], name
    assert not walks, walks


def test_an_uncacheable_criteria_leaves_the_statement_uncached(world: SimpleNamespace) -> None:
    class Opaque(sa.sql.expression.ColumnElement[bool]):
        """A criteria element SQLAlchemy cannot key (``inherit_cache`` is False)."""

        inherit_cache = False
        type = sa.Boolean()

    @sa.ext.compiler.compiles(Opaque)
    def _opaque(element: Any, compiler: Any, **kw: Any) -> str:
        return "1 = 1"

    option = listener.KeyedCriteria(Lead, sa.and_(Lead.id > 0, Opaque()))
    stmt = sa.select(Lead.id).options(option)
    assert stmt._generate_cache_key() is None
    assert sa.select(Lead.id).options(option)._generate_cache_key() is None  # kept, too
    plain = sa.select(Lead.id).options(listener.KeyedCriteria(Lead, Lead.id > 0))
    assert plain._generate_cache_key() is not None
    with rbac.system():
        assert db.session.scalars(stmt.limit(1)).all()
