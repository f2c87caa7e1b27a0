"""The adoption proof: the host apps of ``examples/`` run under the plugin.

Each example is a host app written without the plugin plus its adoption
lines. Here both apps start from rows that existed before adoption, run
``flask rbac adopt`` (the multi-tenant host) or ``adoption.adopt`` (the
single-tenant host), and then show: sign-in works with the host's own
sign-in, a user created after adoption becomes a member at first sign-in
(single-tenant), the workspace switcher moves a member of two companies
between them (multi-tenant), lists are filtered per member, writes beyond a
member's rights are refused, the Flask-Admin panel's ``can_export = True``
does not widen access, the job acts as a member, every id of every
protected model answers each member as ``rbac.can`` decides (the IDOR
sweep), and the filtered query agrees with ``rbac.can`` on random records
and grants (a Hypothesis property). The adoption lines are counted against
their targets, and the snippets of ``docs/adopting.md`` must be the
examples' adoption blocks, word for word.
"""

from __future__ import annotations

import pathlib
import re
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from flask_security.utils import hash_password
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.security import generate_password_hash

from crm_rbac_plugin import adoption, loader, workspaces
from examples.multitenant import app as mt
from examples.singletenant import app as st_app

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BEGIN, END = "--- rbac adoption: begin ---", "--- rbac adoption: end ---"
#: Comment forms of the markers: Python, and Jinja in the examples' templates.
MARKER_COMMENTS = (("# ", ""), ("{# ", " #}"))
TEST_CONFIG = {"SQLALCHEMY_DATABASE_URI": "sqlite://", "TESTING": True, "WTF_CSRF_ENABLED": False}
ACME = "acme.example.com"


@dataclass
class World:
    """An example app after adoption, its members and its protected records."""

    app: Flask
    rbac: Any
    db: Any
    sign_in: Callable[[FlaskClient, str], None]
    members: dict[str, Any]  # email -> membership id
    models: dict[str, tuple[type[Any], str, str]]  # resource -> (model, URL prefix, text field)


# -- the multi-tenant example ------------------------------------------------------------


def mt_sign_in(client: FlaskClient, email: str) -> None:
    response = client.post("/login", json={"email": email, "password": "pw"})
    assert response.status_code == 200, response.text


@pytest.fixture
def mt_world() -> Iterator[World]:
    app = mt.create_app(TEST_CONFIG)
    db, rbac = mt.db, mt.rbac
    with app.app_context():
        db.create_all()
        # The rows that exist before adoption: users, projects and tags, no workspace.
        store, pw = mt.security.datastore, hash_password("pw")  # one hash for every user
        users = {name: store.create_user(email=f"{name}@{ACME}", password=pw)
                 for name in ("ann", "bob", "vic", "ada")}
        db.session.commit()
        with rbac.system():
            db.session.add_all([mt.Project(name=f"{n}'s plan", owner_id=users[n].id)
                                for n in ("ann", "bob", "bob", "vic")]
                               + [mt.Project(name="nobody's plan"), mt.Tag(name="urgent"),
                                  mt.Tag(name="later")])
            db.session.commit()
        adopt = ["rbac", "adopt", "--workspace", "acme", "--name", "Acme", "--owner", f"ann@{ACME}"]
        result = app.test_cli_runner().invoke(args=adopt)
        assert result.exit_code == 0, result.output
        again = app.test_cli_runner().invoke(args=adopt)
        assert again.exit_code == 0 and "Nothing to do" in again.output, again.output
        # A company that signs up after adoption: its owner and its first rows.
        users["gus"] = store.create_user(email="gus@globex.example.com", password=pw)
        with rbac.system():
            acme = db.session.scalars(sa.select(rbac.models.Workspace)).one()
            members = {m.user.email: m for m in db.session.scalars(sa.select(rbac.models.Membership))}
            for name, role in (("vic", "viewer"), ("ada", "admin")):
                membership = members[f"{name}@{ACME}"]
                membership.member_roles.clear()
                workspaces.assign_role(rbac, membership, role)
            globex = workspaces.create_workspace(rbac, "Globex", owner=users["gus"])
            db.session.add_all([mt.Project(name="globex plan", owner_id=users["gus"].id,
                                           workspace_id=globex.id),
                                mt.Tag(name="globex tag", workspace_id=globex.id)])
            db.session.commit()
            members = {m.user.email: m.id for m in db.session.scalars(sa.select(rbac.models.Membership))}
        assert acme.slug == "acme"
    # Requests push their own app context, so that ``g`` is fresh in each of them.
    yield World(app, rbac, db, mt_sign_in, members,
                {"projects": (mt.Project, "/projects", "name"), "tags": (mt.Tag, "/tags", "name")})
    with app.app_context():
        db.drop_all()


def names(client: FlaskClient, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return sorted(row["name"] for row in response.json)


def signed_in(world: World, email: str) -> FlaskClient:
    client = world.app.test_client()
    world.sign_in(client, email)
    return client


def test_multitenant_lists_are_filtered_per_member(mt_world: World) -> None:
    bob = signed_in(mt_world, f"bob@{ACME}")
    assert names(bob, "/projects/") == ["bob's plan", "bob's plan", "nobody's plan"]
    # Tags have no owner column: the Member template's 'own' grants reach none of
    # them (fail closed); a role granting tags 'all' does (the Owner's here).
    assert names(bob, "/tags/") == []
    acme_projects = ["ann's plan", "bob's plan", "bob's plan", "nobody's plan", "vic's plan"]
    vic = signed_in(mt_world, f"vic@{ACME}")
    assert names(vic, "/projects/") == acme_projects
    assert names(vic, "/tags/") == ["later", "urgent"]
    gus = signed_in(mt_world, "gus@globex.example.com")
    assert names(gus, "/projects/") == ["globex plan"]
    assert names(gus, "/tags/") == ["globex tag"]


def test_multitenant_rows_without_a_workspace_stay_hidden(mt_world: World) -> None:
    with mt_world.app.app_context(), mt_world.rbac.system():
        mt_world.db.session.add(mt.Project(name="straggler"))
        mt_world.db.session.commit()
    ann = signed_in(mt_world, f"ann@{ACME}")
    assert "straggler" not in names(ann, "/projects/")


def test_multitenant_writes_beyond_rights_are_refused(mt_world: World) -> None:
    ids = record_ids(mt_world, "projects")
    vic = signed_in(mt_world, f"vic@{ACME}")
    assert vic.post(f"/projects/{ids['ann']}/edit", data={"name": "x"}).status_code == 403
    assert vic.post("/projects/", data={"name": "x"}).status_code == 403
    bob = signed_in(mt_world, f"bob@{ACME}")
    assert bob.post(f"/projects/{ids['ann']}/delete").status_code == 404
    assert bob.post(f"/projects/{ids['bob']}/edit", data={"name": "bob's plan"}).status_code == 200
    created = bob.post("/projects/", data={"name": "fresh"})
    assert created.status_code == 201
    with mt_world.app.app_context(), mt_world.rbac.system():
        fresh = mt_world.db.session.get(mt.Project, created.json["id"])
        assert fresh.workspace_id is not None and fresh.owner_id is not None


def record_ids(world: World, resource: str) -> dict[str, int]:
    """The id of one record per owner's first name (``"nobody"`` for none)."""
    model = world.models[resource][0]
    with world.app.app_context(), world.rbac.system():
        return {r.name.split("'")[0]: r.id for r in world.db.session.scalars(sa.select(model))}


def test_multitenant_admin_export_does_not_widen(mt_world: World) -> None:
    bob = signed_in(mt_world, f"bob@{ACME}")
    listing = bob.get("/admin/project/")
    assert listing.status_code == 200 and "ann&#39;s plan" not in listing.text
    assert "Export" not in listing.text
    assert bob.get("/admin/project/export/csv/").status_code != 200
    ada = signed_in(mt_world, f"ada@{ACME}")
    export = ada.get("/admin/project/export/csv/")
    assert export.status_code == 200
    assert "ann's plan" in export.text and "globex plan" not in export.text


def test_multitenant_switcher_moves_between_companies(mt_world: World) -> None:
    with mt_world.app.app_context(), mt_world.rbac.system():
        m = mt_world.rbac.models
        spaces = {w.slug: w for w in mt_world.db.session.scalars(sa.select(m.Workspace))}
        ann = mt_world.db.session.scalars(sa.select(mt.User).filter_by(email=f"ann@{ACME}")).one()
        workspaces.add_member(mt_world.rbac, spaces["globex"], ann, ["viewer"])
        mt_world.db.session.commit()
        globex_id, acme_id = spaces["globex"].id, spaces["acme"].id
    client = signed_in(mt_world, f"ann@{ACME}")
    home = client.get("/")
    assert home.status_code == 200
    assert ">Acme</button>" in home.text and ">Globex</button>" in home.text
    assert "ann's plan" in names(client, "/projects/")
    switched = client.post("/settings/workspace", data={"workspace_id": globex_id, "next": "/"})
    assert switched.status_code == 302 and switched.location.endswith("/")
    assert names(client, "/projects/") == ["globex plan"]
    gus = signed_in(mt_world, "gus@globex.example.com")
    assert gus.post("/settings/workspace", data={"workspace_id": acme_id}).status_code == 403
    assert names(gus, "/projects/") == ["globex plan"]


def test_multitenant_job_acts_as_the_member(mt_world: World) -> None:
    bob = signed_in(mt_world, f"bob@{ACME}")
    assert bob.post("/digest").json == ["bob's plan", "bob's plan", "nobody's plan"]
    runner = mt_world.app.test_cli_runner()
    result = runner.invoke(args=["digest", "--as", f"vic@{ACME}", "--workspace", "acme"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["ann's plan", "bob's plan", "bob's plan",
                                          "nobody's plan", "vic's plan"]
    assert runner.invoke(args=["digest"]).exit_code != 0


# -- the single-tenant example -----------------------------------------------------------


def st_sign_in(client: FlaskClient, email: str) -> None:
    response = client.post("/login", data={"email": email, "password": "pw"})
    assert response.status_code == 200, response.text


@pytest.fixture
def st_world() -> Iterator[World]:
    app = st_app.create_app(TEST_CONFIG)
    db, rbac = st_app.db, st_app.rbac
    with app.app_context():
        db.create_all()
        pw = generate_password_hash("pw", method="pbkdf2:sha256:1")
        users = [st_app.User(email=f"{n}@desk.example.com", password_hash=pw)
                 for n in ("ann", "bob", "cy", "vic")]
        db.session.add_all(users)
        db.session.flush()
        with rbac.system():
            db.session.add_all([st_app.Ticket(subject=f"{u.email.split('@')[0]}'s ticket",
                                              owner_id=u.id) for u in (*users, users[1])]
                               + [st_app.Ticket(subject="nobody's ticket")])
            db.session.commit()
        report = adoption.adopt(rbac, owner="ann@desk.example.com")
        assert report.workspace_created and report.members_added == 3
        assert not adoption.adopt(rbac).changed
        with rbac.system():
            members = {m.user.email: m for m in db.session.scalars(sa.select(rbac.models.Membership))}
            vic = members["vic@desk.example.com"]
            vic.member_roles.clear()
            workspaces.assign_role(rbac, vic, "viewer")
            db.session.commit()
            members = {email: m.id for email, m in members.items()}
    yield World(app, rbac, db, st_sign_in, members,
                {"tickets": (st_app.Ticket, "/tickets", "subject")})
    with app.app_context():
        db.drop_all()


def subjects(client: FlaskClient) -> list[str]:
    response = client.get("/tickets/")
    assert response.status_code == 200, response.text
    return sorted(row["subject"] for row in response.json)


def test_singletenant_lists_and_writes(st_world: World) -> None:
    bob = signed_in(st_world, "bob@desk.example.com")
    assert subjects(bob) == ["bob's ticket", "bob's ticket", "nobody's ticket"]
    assert len(subjects(signed_in(st_world, "ann@desk.example.com"))) == 6
    vic = signed_in(st_world, "vic@desk.example.com")
    assert len(subjects(vic)) == 6
    with st_world.app.app_context(), st_world.rbac.system():
        ann_ticket = st_world.db.session.scalars(
            sa.select(st_app.Ticket).filter_by(subject="ann's ticket")).one().id
    assert vic.post(f"/tickets/{ann_ticket}/edit", data={"subject": "x"}).status_code == 403
    assert bob.post(f"/tickets/{ann_ticket}/delete").status_code == 404
    assert bob.post("/tickets/", data={"subject": "new"}).status_code == 201


def test_singletenant_new_user_becomes_a_member_at_sign_in(st_world: World) -> None:
    with st_world.app.app_context():
        pw = generate_password_hash("pw", method="pbkdf2:sha256:1")
        st_world.db.session.add(st_app.User(email="new@desk.example.com", password_hash=pw))
        st_world.db.session.commit()
    new = signed_in(st_world, "new@desk.example.com")
    assert subjects(new) == ["nobody's ticket"]
    assert new.post("/tickets/", data={"subject": "mine"}).status_code == 201
    assert subjects(new) == ["mine", "nobody's ticket"]
    with st_world.app.app_context(), st_world.rbac.system():
        m = st_world.rbac.models
        roles = st_world.db.session.scalars(
            sa.select(m.Role.key).join(m.MemberRole).join(m.Membership)
            .join(st_app.User, st_app.User.id == m.Membership.user_id)
            .where(st_app.User.email == "new@desk.example.com")).all()
    assert roles == ["member"]


# -- the IDOR sweep ----------------------------------------------------------------------


def sweep(world: World, probe_stats: Counter[str]) -> None:
    """Ask every id of every protected model, as every member, on the detail, edit and delete URLs.

    A member reaches a record exactly when ``rbac.can`` says so; otherwise the
    answer is a 404 for a record they cannot see and a 403 for one they see,
    and the record is unchanged. Edits and deletes that succeed are undone.
    """
    db, rbac = world.db, world.rbac
    for email, membership_id in world.members.items():
        client = signed_in(world, email)
        for resource, (model, prefix, field) in world.models.items():
            with world.app.app_context(), rbac.system():
                ids = list(db.session.scalars(sa.select(model.id).order_by(model.id)))
            for record_id in ids:
                for action, method, url in (("view", "get", f"{prefix}/{record_id}"),
                                            ("edit", "post", f"{prefix}/{record_id}/edit"),
                                            ("delete", "post", f"{prefix}/{record_id}/delete")):
                    with world.app.app_context():
                        with rbac.system():
                            record = db.session.get(model, record_id)
                            saved = {c.key: getattr(record, c.key) for c in sa.inspect(model).columns}
                        access = rbac.access_for(membership_id)
                        allowed = rbac.can(action, resource, record, access=access)
                        visible = rbac.can("view", resource, record, access=access)
                    answer = getattr(client, method)(url, data={field: "probe"})
                    expected = 200 if allowed else (403 if visible else 404)
                    probe_stats["idor_probes"] += 1
                    if answer.status_code != expected:
                        probe_stats["idor_leaks"] += 1
                    assert answer.status_code == expected, (email, action, url, answer.text)
                    with world.app.app_context(), rbac.system():
                        now = db.session.get(model, record_id)
                        if not allowed:
                            assert now is not None and getattr(now, field) == saved[field]
                        elif now is None:
                            db.session.add(model(**saved))
                        else:
                            setattr(now, field, saved[field])
                        db.session.commit()


def test_multitenant_idor_sweep(mt_world: World, probe_stats: Counter[str]) -> None:
    sweep(mt_world, probe_stats)


def test_singletenant_idor_sweep(st_world: World, probe_stats: Counter[str]) -> None:
    sweep(st_world, probe_stats)


# -- the filter/check property -----------------------------------------------------------

RECORD = st.tuples(st.sampled_from(["projects", "tags"]),
                   st.sampled_from(["ann", "bob", "gus", None]),
                   st.sampled_from(["acme", "globex", None]))
ACTIONS = st.sampled_from(["view", "edit", "delete"])
EFFECTS = st.sampled_from(["allow", "deny"])
# Tags have no owner column: 'all' is the only scope a role may grant on them.
GRANT = st.one_of(
    st.tuples(st.just("projects"), ACTIONS, st.sampled_from(["own", "all"]), EFFECTS),
    st.tuples(st.just("tags"), ACTIONS, st.just("all"), EFFECTS))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(RECORD, max_size=8),
       grants=st.lists(GRANT, max_size=5, unique_by=lambda g: (g[0], g[1], g[3])),
       builtin=st.sampled_from([None, "member", "viewer"]))
def test_multitenant_filter_agrees_with_can(mt_world: World, probe_stats: Counter[str],
                                            records: list[tuple[str, str | None, str | None]],
                                            grants: list[tuple[str, str, str, str]],
                                            builtin: str | None) -> None:
    db, rbac = mt_world.db, mt_world.rbac
    m = rbac.models
    context = mt_world.app.app_context()
    context.push()
    with rbac.system():
        spaces = {w.slug: w.id for w in db.session.scalars(sa.select(m.Workspace))}
        users = {u.email.split("@")[0]: u.id for u in db.session.scalars(sa.select(mt.User))}
        for resource, owner, space in records:
            model = mt_world.models[resource][0]
            row = model(name="random", workspace_id=spaces.get(space or ""))
            if owner is not None and resource == "projects":
                row.owner_id = users[owner]
            db.session.add(row)
        subject = db.session.get(m.Membership, mt_world.members[f"bob@{ACME}"])
        subject.member_roles.clear()
        role = m.Role(workspace_id=subject.workspace_id, name="Random")
        for grant in grants:
            workspaces.add_grant(rbac, role, *grant[:3], effect=grant[3])
        db.session.add(role)
        workspaces.assign_role(rbac, subject, role)
        if builtin is not None:
            workspaces.assign_role(rbac, subject, builtin)
        db.session.flush()
        row = loader.membership_row(db.session, m, membership_id=subject.id)
        access = loader.load_access(db.session, m, rbac.registry, mt_world.app.config, row)
        everything = {r: list(db.session.scalars(sa.select(model)))
                      for r, (model, _, _) in mt_world.models.items()}
    try:
        for resource, rows in everything.items():
            model = mt_world.models[resource][0]
            for action in ("view", "edit", "delete"):
                by_policy = {r.id for r in rows if rbac.can(action, resource, r, access=access)}
                with rbac.as_member(access):
                    stmt = sa.select(model.id).execution_options(rbac_action=action)
                    by_filter = set(db.session.scalars(stmt))
                probe_stats["agreement_examples"] += 1
                if by_policy != by_filter:
                    probe_stats["agreement_disagreements"] += 1
                assert by_policy == by_filter, (resource, action, grants, builtin)
    finally:
        db.session.rollback()
        context.pop()


# -- adoption lines and the guide --------------------------------------------------------


def marker(line: str) -> str | None:
    """Return BEGIN or END when ``line`` is an adoption marker comment, else None."""
    text = line.strip()
    for opening, closing in MARKER_COMMENTS:
        for name in (BEGIN, END):
            if text == f"{opening}{name}{closing}":
                return name
    return None


def adoption_blocks(path: pathlib.Path) -> list[str]:
    """Return the dedented text between each pair of adoption markers of ``path``."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in path.read_text().splitlines():
        found = marker(line)
        if found == BEGIN:
            assert current is None, f"{path}: nested {BEGIN}"
            current = []
        elif found == END:
            assert current is not None, f"{path}: {END} without {BEGIN}"
            blocks.append(textwrap.dedent("\n".join(current)).strip("\n"))
            current = None
        elif current is not None:
            current.append(line)
    assert current is None, f"{path}: {BEGIN} without {END}"
    return blocks


def example_files(example: str | None = None) -> list[pathlib.Path]:
    """The Python modules and templates of one example (default: all of them)."""
    root = EXAMPLES / example if example else EXAMPLES
    return sorted([*root.rglob("*.py"), *root.rglob("*.html")])


def adoption_lines(example: str) -> int:
    """Count the code lines a host adds: non-blank, non-comment lines between the markers."""
    return sum(1 for path in example_files(example)
               for block in adoption_blocks(path) for line in block.splitlines()
               if line.strip() and not line.strip().startswith(("#", "{#")))


#: The most adoption lines each example may take.
ADOPTION_TARGETS = {"multitenant": 25, "singletenant": 10}


@pytest.mark.parametrize("example", sorted(ADOPTION_TARGETS))
def test_adoption_line_count(example: str, probe_stats: Counter[str],
                             record_property: Callable[[str, object], None]) -> None:
    lines = adoption_lines(example)
    probe_stats[f"adoption_lines_{example}"] = lines
    record_property("adoption_lines", lines)
    print(f"{example}: {lines} adoption lines (target <= {ADOPTION_TARGETS[example]})")
    assert lines <= ADOPTION_TARGETS[example]


def test_guide_snippets_are_adoption_blocks() -> None:
    guide = (ROOT / "docs" / "adopting.md").read_text()
    snippets = [textwrap.dedent(s).strip("\n")
                for s in re.findall(r"```(?:python|jinja)\n(.*?)```", guide, flags=re.S)]
    blocks = {block for path in example_files() for block in adoption_blocks(path)}
    assert snippets, "docs/adopting.md quotes no adoption block"
    assert [s for s in snippets if s not in blocks] == []
