"""The write guard (``before_flush``), the policy version and the signals.

A refused flush must raise :class:`PermissionDenied` and leave the database
as it was: every refusal test compares a snapshot of the CRM tables, taken
in the system context, before the attempt and after the rollback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, jsonify
from flask.testing import FlaskClient

from crm_app.extensions import db
from crm_app.models import Client, Deal, Lead, Note, Task
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, access_denied, member_changed, role_changed, workspaces
from tests.conftest import build_world, empty_tables, make_app
from tests.rbac_helpers import access_of, ensure_user_loader, fast_passwords, policy_version  # noqa: F401

Change = Callable[[SimpleNamespace], None]


def snapshot() -> dict[str, set[tuple[Any, ...]]]:
    """Every row of the CRM tables, read fresh in the system context."""
    db.session.expire_all()
    with rbac.system():
        return {model.__tablename__: set(db.session.execute(sa.select(*model.__table__.c)))
                for model in (Lead, Deal, Client, Task, Note)}


def loaded(obj: Any) -> Any:
    """Load ``obj``'s columns in the system context (as a view would have it)."""
    with rbac.system():
        db.session.refresh(obj)
    return obj


# -- refusals -----------------------------------------------------------------------

def _set(tag: str, kind: str, **values: Any) -> Change:
    def change(w: SimpleNamespace) -> None:
        obj = loaded(getattr(w, kind)[tag])
        for key, value in values.items():
            setattr(obj, key, value(w) if callable(value) else value)
    return change


def _delete(kind: str, tag: str) -> Change:
    def change(w: SimpleNamespace) -> None:
        db.session.delete(loaded(getattr(w, kind)[tag]))
    return change


def _add(model: type, **values: Any) -> Change:
    def change(w: SimpleNamespace) -> None:
        db.session.add(model(**{k: v(w) if callable(v) else v for k, v in values.items()}))
    return change


def uid(key: str) -> Callable[[SimpleNamespace], int]:
    return lambda w: w.users[key].id


def user(key: str) -> Callable[[SimpleNamespace], Any]:
    return lambda w: w.users[key]


def ws2(w: SimpleNamespace) -> int:
    return int(w.ws2.id)


REFUSED: dict[str, tuple[str, Change]] = {
    "viewer creates a lead": ("viewer", _add(Lead, name="new")),
    "junior rep creates a lead owned by someone else":
        ("junior_rep", _add(Lead, name="new", owner_id=uid("member"))),
    "junior rep creates a lead for someone else by relationship":
        ("junior_rep", _add(Lead, name="new", owner=user("member"))),
    "member creates a lead in another workspace":
        ("member", _add(Lead, name="new", workspace_id=ws2)),
    "member edits someone else's (invisible) lead":
        ("member", _set("member2", "leads", name="mine now")),
    "member edits the unowned lead (view only)":
        ("member", _set("unowned", "leads", name="mine now")),
    "member claims the unowned lead": ("member", _set("unowned", "leads", owner_id=uid("member"))),
    "member moves an own lead to another owner without manage":
        ("member", _set("member", "leads", owner_id=uid("member2"))),
    "member gives an own lead away by relationship":
        ("member", _set("member", "leads", owner=user("member2"))),
    "manager moves a team lead out of the team":
        ("manager", _set("member", "leads", owner_id=uid("member2"))),
    "finance edits a won deal it can see": ("finance", _set("member-won", "deals", title="x")),
    "owner moves a lead to another workspace": ("owner", _set("member", "leads",
                                                              workspace_id=ws2)),
    "admin moves a deal to another workspace": ("admin", _set("member-new", "deals",
                                                               workspace_id=ws2)),
    "junior rep deletes an own lead (no delete)": ("junior_rep", _delete("leads", "junior_rep")),
    "viewer deletes a lead": ("viewer", _delete("leads", "member")),
    "client success deletes a task it may edit": ("client_success",
                                                   _delete("tasks", "on-member")),
}


def outcome(w: SimpleNamespace, member: str, change: Change) -> str:
    """Try ``change`` as ``member``; say what happened, then roll back."""
    before = snapshot()
    try:
        with rbac.as_member(w.members[member]):
            change(w)
            db.session.flush()
    except PermissionDenied:
        db.session.rollback()
        return "refused, nothing written" if snapshot() == before else "refused, rows changed"
    written = snapshot() != before
    db.session.rollback()
    return "written" if written else "accepted, nothing written"


def test_refused_writes_leave_nothing_behind(world: SimpleNamespace) -> None:
    """Every scenario in one world (each rolled back), compared as a dict of outcomes."""
    actual = {name: outcome(world, member, change) for name, (member, change) in REFUSED.items()}
    assert actual == dict.fromkeys(REFUSED, "refused, nothing written")


def test_a_change_made_on_an_expired_object_is_judged_on_the_stored_row(
        world: SimpleNamespace) -> None:
    """After a commit objects are expired: setting owner_id must not hide the old owner."""
    before = snapshot()
    invisible = world.leads["member2"]  # expired by build_world's commit
    assert "owner_id" in sa.inspect(invisible).expired_attributes
    with rbac.as_member(world.members["member"]):
        invisible.owner_id = world.users["member"].id
        with pytest.raises(PermissionDenied):
            db.session.flush()
    db.session.rollback()
    own = world.deals["member-new"]
    with rbac.as_member(world.members["member"]):
        own.workspace_id = world.ws2.id
        with pytest.raises(PermissionDenied, match="another workspace"):
            db.session.flush()
    db.session.rollback()
    assert snapshot() == before


ALLOWED: dict[str, tuple[str, Change]] = {
    "admin reassigns a lead to anyone": ("admin", _set("member", "leads",
                                                       owner_id=uid("member2"))),
    "manager reassigns within the team": ("manager", _set("member", "leads",
                                                          owner_id=uid("manager"))),
    "manager hands an own lead to the team": ("manager", _set("manager", "leads",
                                                              owner=user("member"))),
    "member edits an own lead": ("member", _set("member", "leads", name="renamed")),
    "member deletes an own lead": ("member", _delete("leads", "member")),
    "junior rep creates an own lead": ("junior_rep", _add(Lead, name="new")),
    "client success edits a task on a visible client": ("client_success",
                                                        _set("on-member", "tasks", title="x")),
    "owner edits anything": ("owner", _set("member2-won", "deals", title="x")),
}


def test_allowed_writes(world: SimpleNamespace) -> None:
    actual = {name: outcome(world, member, change) for name, (member, change) in ALLOWED.items()}
    assert actual == dict.fromkeys(ALLOWED, "written")


def test_create_fills_in_workspace_and_owner(world: SimpleNamespace) -> None:
    with rbac.as_member(world.members["member"]):
        lead = Lead(name="auto")
        task = Task(title="auto", client_id=world.clients["member"].id)
        db.session.add_all([lead, task])
        db.session.flush()
        assert (lead.workspace_id, lead.owner_id) == (world.ws.id, world.users["member"].id)
        assert (task.workspace_id, task.owner_id) == (world.ws.id, world.users["member"].id)
    db.session.commit()
    with rbac.system():
        stored = db.session.execute(sa.select(Lead.workspace_id, Lead.owner_id)
                                    .where(Lead.name == "auto")).one()
    assert tuple(stored) == (world.ws.id, world.users["member"].id)


def test_the_system_context_allows_everything(world: SimpleNamespace) -> None:
    with rbac.system():
        db.session.add(Lead(workspace_id=world.ws2.id, owner_id=world.users["member"].id,
                            name="placed by a job"))
        world.leads["member"].workspace_id = world.ws2.id
        world.leads["member2"].owner_id = None
        db.session.delete(world.deals["member-won"])
        db.session.commit()
        names = set(db.session.scalars(sa.select(Lead.name).where(
            Lead.workspace_id == world.ws2.id)))
        assert names == {"Beta lead", "Lead of member", "placed by a job"}
        assert db.session.get(Deal, world.deals["member-new"].id) is not None


# -- policy version -------------------------------------------------------------------

def _role(w: SimpleNamespace, key: str) -> Any:
    return workspaces.role_by_key(rbac, w.ws, key)


def _grant(w: SimpleNamespace, key: str, resource: str, action: str) -> Any:
    return next(g for g in _role(w, key).grants
                if (g.resource, g.action) == (resource, action))


def _assignment(w: SimpleNamespace, member: str) -> Any:
    return w.members[member].member_roles[0]


def _manager_assignment(w: SimpleNamespace) -> Any:
    A = rbac.models.ManagerAssignment
    return db.session.get(A, (w.members["manager"].id, w.members["member"].id))


POLICY_CHANGES: dict[str, Change] = {
    "role renamed": lambda w: setattr(_role(w, "viewer"), "name", "Reader"),
    "role parent set": lambda w: setattr(_role(w, "finance"), "parent", _role(w, "viewer")),
    "role created": lambda w: db.session.add(rbac.models.Role(workspace=w.ws, name="New")),
    "role deleted": lambda w: db.session.delete(_role(w, "junior_rep")),
    "grant added": lambda w: workspaces.add_grant(rbac, _role(w, "member"), "leads", "export",
                                                  "own"),
    "grant scope changed": lambda w: setattr(_grant(w, "member", "leads", "view"), "scope",
                                             "team"),
    "grant deleted": lambda w: db.session.delete(_grant(w, "member", "leads", "delete")),
    "role assigned": lambda w: workspaces.assign_role(rbac, w.members["viewer"],
                                                      _role(w, "finance")),
    "assignment removed": lambda w: db.session.delete(_assignment(w, "finance")),
    "assignment window changed": lambda w: setattr(_assignment(w, "viewer"), "expires_at",
                                                   w.ws.created_at),
    "membership created": lambda w: workspaces.add_member(
        rbac, w.ws, w.users["outsider"], ["member"], department=w.departments["sales"]),
    "membership deactivated": lambda w: setattr(w.members["member2"], "status", "inactive"),
    "membership moved department": lambda w: setattr(w.members["member2"], "department",
                                                     w.departments["support"]),
    "department renamed": lambda w: setattr(w.departments["sales"], "name", "Revenue"),
    "department created": lambda w: db.session.add(rbac.models.Department(workspace=w.ws,
                                                                          name="Legal")),
    "manager assignment added": lambda w: db.session.add(rbac.models.ManagerAssignment(
        manager_id=w.members["manager"].id, member_id=w.members["member2"].id)),
    "manager assignment removed": lambda w: db.session.delete(_manager_assignment(w)),
    "workspace plan changed": lambda w: setattr(w.ws, "plan", "free"),
}


def test_every_policy_change_bumps_the_version_once_per_flush(world: SimpleNamespace) -> None:
    """One world, all changes in turn; compared as a dict so a diff names the change."""
    bumps: dict[str, tuple[int, int]] = {}
    for name, change in POLICY_CHANGES.items():
        v1, v2 = policy_version(world.ws), policy_version(world.ws2)
        with rbac.system(), db.session.no_autoflush:
            change(world)
        db.session.flush()
        bumps[name] = (policy_version(world.ws) - v1, policy_version(world.ws2) - v2)
        assert world.ws.policy_version == v1 + bumps[name][0]  # expired and reloaded
    assert bumps == dict.fromkeys(POLICY_CHANGES, (1, 0))


def test_many_policy_changes_in_one_flush_bump_once(world: SimpleNamespace) -> None:
    v1, v2 = policy_version(world.ws), policy_version(world.ws2)
    with db.session.no_autoflush:  # the helpers query: keep every change for one flush
        for name in ("role renamed", "grant added", "role assigned", "membership deactivated",
                     "department renamed", "manager assignment added",
                     "workspace plan changed"):
            POLICY_CHANGES[name](world)
    db.session.flush()
    assert (policy_version(world.ws), policy_version(world.ws2)) == (v1 + 1, v2)
    # A change in both workspaces bumps both, once each.
    with db.session.no_autoflush:
        _role(world, "viewer").description = "changed"
        workspaces.role_by_key(rbac, world.ws2, "viewer").description = "changed"
    db.session.flush()
    assert (policy_version(world.ws), policy_version(world.ws2)) == (v1 + 2, v2 + 1)


def test_data_changes_do_not_bump_the_version(world: SimpleNamespace) -> None:
    v1 = policy_version(world.ws)
    with rbac.system():
        world.leads["member"].name = "renamed"
        db.session.add(Lead(workspace_id=world.ws.id, name="new"))
        db.session.delete(world.deals["member-won"])
        db.session.flush()
    db.session.flush()  # an empty flush
    assert policy_version(world.ws) == v1


def test_a_rolled_back_change_leaves_no_trace(world: SimpleNamespace) -> None:
    """Access read inside a rolled-back transaction must not outlive it in the cache.

    The rollback restores the version number, and the next committed change
    reuses it: an Access cached from the rolled-back state would then pass
    for current.
    """
    member = world.members["member"]
    v1 = policy_version(world.ws)
    assert not rbac.can("export", "leads", access=access_of(member))
    db.session.commit()
    POLICY_CHANGES["grant added"](world)  # Member: export own leads
    db.session.flush()
    assert policy_version(world.ws) == v1 + 1
    assert rbac.can("export", "leads", access=access_of(member))  # e.g. a preview
    db.session.rollback()
    assert policy_version(world.ws) == v1
    POLICY_CHANGES["role renamed"](world)  # another change gets the same number
    db.session.commit()
    assert policy_version(world.ws) == v1 + 1
    assert not rbac.can("export", "leads", access=access_of(member))


# -- two processes --------------------------------------------------------------------

@contextmanager
def shared_database_apps(url: str) -> Iterator[tuple[Flask, Flask]]:
    """Two apps (two "processes", each with its own AccessCache) on one database."""
    first, second = make_app(url), make_app(url)
    with first.app_context():
        db.create_all()
    try:
        yield first, second
    finally:
        for app in (first, second):
            with app.app_context():
                db.session.remove()
        with first.app_context():
            empty_tables()
        for app in (first, second):
            with app.app_context():
                db.engine.dispose()


def _logged_in(app: Flask, login_id: str, workspace_id: int) -> FlaskClient:
    """A client whose session holds Flask-Login's id (the user's ``get_id()``)."""
    client = app.test_client()
    with client.session_transaction() as sess:
        sess["_user_id"] = login_id
        sess["_fresh"] = True
        sess[app.config["RBAC_SESSION_KEY"]] = workspace_id
    return client


def test_another_process_sees_new_rights_on_its_next_request(
        backend: str, database_url: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}" if backend == "sqlite" else database_url
    ensure_user_loader(monkeypatch)
    with shared_database_apps(url) as (writer, reader):
        seen: list[Any] = []

        @reader.get("/_test/rights")
        def rights() -> Any:
            access = rbac.current_access()
            seen.append(access)
            with_export = db.session.scalars(sa.select(Lead.id).execution_options(
                rbac_action="export")).all()
            return jsonify(export=rbac.can("export", "leads"), exportable=len(with_export))

        with writer.app_context():
            w = build_world()
            login_id, ws_id = w.users["member"].get_id(), w.ws.id

        def member_role() -> Any:
            return workspaces.role_by_key(rbac, db.session.get(rbac.models.Workspace, ws_id),
                                          "member")

        client = _logged_in(reader, login_id, ws_id)
        assert client.get("/_test/rights").json == {"export": False, "exportable": 0}
        assert client.get("/_test/rights").json == {"export": False, "exportable": 0}
        assert seen[1] is seen[0], "the second request should reuse the cached access"

        with writer.app_context():
            workspaces.add_grant(rbac, member_role(), "leads", "export", "own")
            db.session.commit()
        assert client.get("/_test/rights").json == {"export": True, "exportable": 1}
        assert seen[2] is not seen[1]
        assert seen[2].policy_version == seen[1].policy_version + 1

        with writer.app_context():
            db.session.delete(next(g for g in member_role().grants if g.action == "export"))
            db.session.commit()
        assert client.get("/_test/rights").json == {"export": False, "exportable": 0}


# -- signals -----------------------------------------------------------------------------

@contextmanager
def recorded(signal: Any, app: Flask) -> Iterator[list[dict[str, Any]]]:
    calls: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        calls.append({"sender": sender, **kwargs})

    with signal.connected_to(receiver, app):
        yield calls


def test_access_denied_is_sent_on_a_refused_flush(app: Flask, world: SimpleNamespace) -> None:
    with recorded(access_denied, app) as calls:
        with rbac.as_member(world.members["viewer"]) as access:
            lead = Lead(name="refused")
            db.session.add(lead)
            with pytest.raises(PermissionDenied):
                db.session.flush()
    db.session.rollback()
    assert len(calls) == 1
    call = calls[0]
    assert call["sender"] is app
    assert (call["access"], call["action"], call["resource"], call["record"]) == (
        access, "create", "leads", lead)
    assert "create on leads" in call["reason"]


def test_policy_signals_name_the_workspaces(app: Flask, world: SimpleNamespace) -> None:
    with recorded(role_changed, app) as roles, recorded(member_changed, app) as members:
        workspaces.add_grant(rbac, _role(world, "member"), "leads", "export", "own")
        db.session.flush()
        assert [c["workspace_ids"] for c in roles] == [[world.ws.id]]
        assert members == []

        world.members["member2"].status = "inactive"
        world.departments["sales"].name = "Revenue"
        db.session.flush()
        assert [c["workspace_ids"] for c in members] == [[world.ws.id]]
        assert {type(o).__name__ for o in members[0]["objects"]} == {"Membership",
                                                                     "Department"}
        assert len(roles) == 1

        with db.session.no_autoflush:
            _role(world, "viewer").description = "changed"
            workspaces.role_by_key(rbac, world.ws2, "viewer").description = "changed"
        db.session.flush()
        assert sorted(roles[-1]["workspace_ids"]) == sorted([world.ws.id, world.ws2.id])
        assert len(members) == 1


def test_a_write_that_passes_builds_no_reasons_and_a_refusal_keeps_them(
        world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard asks the decision without its reasons; only a refusal asks ``decide``."""
    asked: list[str] = []
    decide = type(rbac).decide

    def counting(self: Any, access: Any, action: str, *args: Any, **kwargs: Any) -> Any:
        asked.append(action)
        return decide(self, access, action, *args, **kwargs)

    monkeypatch.setattr(type(rbac), "decide", counting)
    for member, change in (ALLOWED["junior rep creates an own lead"],
                           ALLOWED["client success edits a task on a visible client"]):
        assert outcome(world, member, change) == "written"
    assert asked == []
    with rbac.as_member(world.members["member"]):
        loaded(world.leads["member"]).owner_id = world.users["member2"].id
        with pytest.raises(PermissionDenied) as refused:
            db.session.flush()
    db.session.rollback()
    assert asked == ["edit"]
    assert "the change would move it out of your reach (view on leads:" in refused.value.message
    assert refused.value.message.endswith(")")
