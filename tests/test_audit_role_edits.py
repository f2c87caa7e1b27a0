"""The audit trail of a role edit: each cell removed, added or changed, as it was meant.

One save that removes a grant, adds one and changes another's scope writes one
event whose ``detail.changes`` name exactly those three cells (``removed`` with
the old values, ``added``, ``changed`` with the columns that differ), whose
``before`` holds the old values and whose ``after`` is the state after the
commit: the removed cell is not in it. The untouched cells are not mentioned.
Checked through the role editor and the JSON API, on every backend.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_api import Api
from tests.test_audit import change_events
from tests.test_settings_ui import matrix_values, role

REMOVED, ADDED, CHANGED = ("tasks", "view"), ("leads", "export"), ("leads", "view")


def grants_of(role_id: int) -> dict[tuple[str, str], str]:
    G = rbac.models.Grant
    db.session.expire_all()
    return {(g.resource, g.action): g.scope for g in db.session.scalars(
        sa.select(G).where(G.role_id == role_id))}


def check_event(role_id: int, before_count: int, grants_before: dict[tuple[str, str], str]
                ) -> None:
    """One event; the three cells reported as removed, added, changed; nothing else."""
    new = change_events()[before_count:]
    assert len(new) == 1, [e.action for e in new]
    ev = new[0]
    grant_changes = {c["target"]: c for c in ev.detail["changes"] if c["kind"] == "grant"}
    by_cell = {tuple(t.split()[3].split(".")): c for t, c in grant_changes.items()}
    assert set(by_cell) == {REMOVED, ADDED, CHANGED}, sorted(grant_changes)
    assert (by_cell[REMOVED]["op"], by_cell[REMOVED]["action"]) == ("deleted", "grant.removed")
    assert (by_cell[ADDED]["op"], by_cell[ADDED]["action"]) == ("created", "grant.added")
    assert (by_cell[CHANGED]["op"], by_cell[CHANGED]["action"]) == ("changed", "grant.changed")
    assert by_cell[CHANGED]["changed"] == ["scope"]
    assert ev.action == "grant.added"  # the most significant change names the event

    removed, added, changed = (next(t for t, c in grant_changes.items() if c is by_cell[k])
                               for k in (REMOVED, ADDED, CHANGED))
    assert ev.before[removed]["scope"] == grants_before[REMOVED]
    assert ev.before[removed]["role_id"] == role_id
    assert removed not in ev.after and added not in ev.before
    assert not any("tasks.view" in key for key in ev.after)
    assert ev.after[added]["scope"] == "own"
    assert (ev.before[changed]["scope"], ev.after[changed]["scope"]) == ("own", "all")

    expected = dict(grants_before)
    del expected[REMOVED]
    expected[ADDED] = "own"
    expected[CHANGED] = "all"
    assert grants_of(role_id) == expected


def test_role_editor_save_is_audited_cell_by_cell(world: SimpleNamespace, login: Any) -> None:
    member = role(world, "member")
    grants_before = grants_of(member.id)
    assert grants_before[REMOVED] == "own" and grants_before[CHANGED] == "own"
    assert ADDED not in grants_before
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{member.id}/edit"
    values = matrix_values(client, url)
    values.update({"scope__tasks__view": "", "scope__leads__export": "own",
                   "scope__leads__view": "all", "step": "save"})
    count = len(change_events())
    response = client.post(url, data=values)
    assert response.status_code == 302, response.text[:400]
    check_event(member.id, count, grants_before)
    page = client.get("/settings/audit").text
    row = page.split('class="rbac-audit-row"')[1]
    assert "Member: tasks.view removed" in row and "Member: leads.export added (own)" in row
    assert "Member: leads.view changed" in row
    assert "<dt>scope</dt><dd><del>own</del>" in row and "<ins>all</ins>" in row


def test_api_update_is_audited_cell_by_cell(app: Flask, world: SimpleNamespace) -> None:
    member = role(world, "member")
    grants_before = grants_of(member.id)
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "audit edits")
    db.session.commit()
    api = Api(app, plaintext)
    current = api.get(f"/roles/{member.id}").json["permissions"]
    body = []
    for cell in current:
        key = (cell["resource"], cell["action"])
        if key == REMOVED:
            continue
        body.append({**cell, "scope": "all"} if key == CHANGED else cell)
    body.append({"resource": "leads", "action": "export", "scope": "own"})
    count = len(change_events())
    response = api.patch(f"/roles/{member.id}", {"permissions": body})
    assert response.status_code == 200, response.json
    check_event(member.id, count, grants_before)


def test_an_unchanged_save_changes_no_row_and_writes_no_event(world: SimpleNamespace,
                                                             login: Any) -> None:
    member = role(world, "member")
    G = rbac.models.Grant
    ids_before = sorted(db.session.scalars(sa.select(G.id).where(G.role_id == member.id)))
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{member.id}/edit"
    values = matrix_values(client, url)
    values["step"] = "save"
    count = len(change_events())
    assert client.post(url, data=values).status_code == 302
    db.session.expire_all()
    assert sorted(db.session.scalars(sa.select(G.id).where(G.role_id == member.id))) == ids_before
    assert [e.action for e in change_events()[count:]] == []
