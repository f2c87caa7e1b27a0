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
