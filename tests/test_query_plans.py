"""The query plans stay index lookups at scale.

On 100,000 leads, 10,000 members and 1,000 roles (the benchmark's world,
loaded with the same bulk statements as ``python -m bench``), every
statement the plugin sends on the hot paths is explained, and none of them
may read a large table from end to end:

* the filtered list page of an own-, a department- and an all-scope member,
  and a filtered detail lookup;
* the per-request user-and-membership lookup of :meth:`RBAC.load_user`;
* every statement of a cold resolution of a member holding 5 stacked,
  inherited roles.

On PostgreSQL a full read is a ``Seq Scan``; on SQLite, a ``SCAN`` line (a
whole table or a whole index). This checks the indexes of the models (and so
of the migrations: ``test_migrations`` compares the two), not speed: the
timings are the benchmark's business.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from bench import sql as bench_sql
from bench.world import Sizes, World, load_leads, seed
from crm_app.extensions import db
from crm_app.models import Lead, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin.user_rows import user_with_membership
from tests.conftest import make_app

LEADS = 100_000
SIZES = Sizes(role_counts=(1000,), role_members=10_000, canonical_roles=1000)
#: Tables with thousands of rows in this world: none may be read whole.
LARGE = ("lead", "user", "rbac_membership", "rbac_member_role", "rbac_role", "rbac_grant")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql",
                                                                marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('plans')}/plans.db"
    app = make_app(url)
    with app.app_context():
        built = seed(SIZES)
        load_leads(built, SIZES, LEADS)
        try:
            yield built
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()


def full_reads(plan: list[str]) -> list[str]:
    """The lines of ``plan`` that read one of the large tables whole."""
    found = []
    for line in plan:
        text = line.strip()
        pg = re.match(r'(?:->\s+)?(?:Parallel )?Seq Scan on "?(\w+)"?', text)
        lite = re.match(r"SCAN (\w+)", text)
        table = (pg or lite).group(1) if (pg or lite) else None
        if table in LARGE:
            found.append(text)
    return found


def explained(statements: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [bench_sql.explain(conn, sql, params) for sql, params in statements]


def assert_indexed(statements: list[tuple[str, Any]]) -> None:
    assert statements, "nothing was captured"
    for plan in explained(statements):
        assert not full_reads(plan["plan"]), (
            f"full read in the plan of\n{plan['sql']}\n" + "\n".join(plan["plan"]))


@pytest.mark.parametrize("scope", ["own", "department", "all"])
def test_filtered_list_page_is_an_index_lookup(world: World, scope: str) -> None:
    member = world.members[scope]
    with rbac.as_member(member.membership_id), bench_sql.capture(db.engine) as seen:
        rows = db.session.scalars(sa.select(Lead).order_by(Lead.id.desc()).limit(50)).all()
    assert len(rows) == 50
    assert_indexed(seen)


def test_filtered_detail_is_an_index_lookup(world: World) -> None:
    member = world.members["own"]
    with rbac.as_member(member.membership_id), bench_sql.capture(db.engine) as seen:
        newest = db.session.scalar(sa.select(sa.func.max(Lead.id)))
        assert db.session.get(Lead, newest) is not None
        db.session.expunge_all()
        assert db.session.scalars(sa.select(Lead).where(Lead.id == newest)).one()
    assert_indexed(seen)


def test_user_and_membership_lookup_is_an_index_lookup(world: World) -> None:
    member = world.members["all"]
    token = db.session.scalar(sa.select(User.session_token).where(User.id == member.user_id))
    with bench_sql.capture(db.engine) as seen:
        user, row, account = user_with_membership(db.session, rbac.models, User, token,
                                                  member.workspace_id, column=User.session_token,
                                                  sid_hash="0" * 64)
    assert user is not None and row is not None and row.id == member.membership_id
    # The account's security state (credential, session record, policy) rides along.
    assert account is not None and account.session_id is None and not account.policy_saved
    assert_indexed(seen)


def test_cold_resolution_of_stacked_roles_is_index_lookups(world: World) -> None:
    stacked = world.role_workspaces[1000].stacked
    rbac.state.cache.clear()
    with bench_sql.capture(db.engine) as seen:
        access = rbac.access_for(stacked.membership_id)
    assert access is not None and len(access.roles) == 10  # 5 roles and their 5 parents
    assert_indexed(seen)


def test_the_check_sees_a_full_read(world: World) -> None:
    """The guard itself: a query that must read the whole lead table is flagged."""
    with rbac.system(), bench_sql.capture(db.engine) as seen:
        db.session.scalars(sa.select(Lead).where(Lead.email.like("%@nowhere"))).all()
    assert full_reads(explained(seen)[0]["plan"])

