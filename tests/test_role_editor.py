"""The role editor: the condition builder, the shortcuts, read-only built-in roles, labels.

The builder's rows must store exactly the JSON conditions the API stores, come
back as the same rows, and refuse a bad value with a sentence naming the
field while changing nothing. The whole-role shortcut must leave the
administrative resources alone. Owner and Admin open read-only and still
refuse a save. Every control of the matrix carries a label.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import queries, workspaces
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import (
    form_values,
    granted,
    matrix_values,
    policy_snapshot,
    role,
    role_named,
)

NEW = "/settings/roles/new"


def stored_conditions(role_id: int) -> dict[tuple[str, str], Any]:
    """The stored condition of every allow grant of a role, by (resource, action)."""
    G = rbac.models.Grant
    db.session.expire_all()
    rows = db.session.execute(sa.select(G).where(G.role_id == role_id, G.effect == "allow"))
    return {(g.resource, g.action): g.condition for g in rows.scalars()}


def row(index: int, field: str, op: str, value: str = "", picks: tuple[str, ...] = (),
        cell: str = "deals__view") -> dict[str, str]:
    """The inputs of one builder row as a browser posts them."""
    base = f"cond__{cell}__{index}"
    out = {f"{base}__field": field, f"{base}__op": op, f"{base}__value": value}
    choices = ("new", "qualified", "proposal", "negotiation", "won", "lost")
    out.update({f"{base}__pick__{choices.index(p)}": p for p in picks})
    return out


def row_errors(html: str) -> list[str]:
    return re.findall(r'<p class="rbac-field-errors rbac-clause-error"[^>]*>([^<]*)</p>', html)


# -- the builder round-trips each kind of field and operator ------------------------------


ROUND_TRIPS = [
    (row(0, "stage", "eq", "won"), [{"field": "stage", "op": "eq", "value": "won"}]),
    (row(0, "stage", "ne", "lost"), [{"field": "stage", "op": "ne", "value": "lost"}]),
    (row(0, "stage", "in", picks=("won", "lost")),
     [{"field": "stage", "op": "in", "value": ["won", "lost"]}]),
    (row(0, "amount", "gt", "1000"), [{"field": "amount", "op": "gt", "value": "1000.00"}]),
    (row(0, "amount", "lt", "99.5"), [{"field": "amount", "op": "lt", "value": "99.50"}]),
    (row(0, "close_date", "lt", "2026-01-31"),
     [{"field": "close_date", "op": "lt", "value": "2026-01-31"}]),
    (row(0, "title", "in", "Big, Small"),
     [{"field": "title", "op": "in", "value": ["Big", "Small"]}]),
    (row(0, "client_id", "eq", "5"), [{"field": "client_id", "op": "eq", "value": 5}]),
    (row(0, "created_at", "gt", "2026-01-01T10:00"),
     [{"field": "created_at", "op": "gt", "value": "2026-01-01T10:00:00"}]),
    (row(0, "close_date", "empty"), [{"field": "close_date", "op": "is_null", "value": True}]),
    ({**row(0, "stage", "not_empty"), **row(1, "amount", "gt", "0")},
     [{"field": "stage", "op": "is_null", "value": False},
      {"field": "amount", "op": "gt", "value": "0.00"}]),
]


#: Values the page shows as the column stores them.
AS_STORED = {"1000": "1000.00", "99.5": "99.50", "0": "0.00",
             "2026-01-01T10:00": "2026-01-01T10:00:00"}


def test_builder_rows_store_the_api_condition_and_load_back(
        world: SimpleNamespace, login: Any) -> None:
    """Each operator and kind of value: saved as the JSON the API stores, shown as rows again."""
    client = login(world.users["owner"], world.ws)
    blank = matrix_values(client, NEW)
    for number, (rows, expected) in enumerate(ROUND_TRIPS):
        name = f"Builder {number}"
        response = client.post(NEW, data={**blank, "name": name, "scope__deals__view": "all",
                                           **rows, "step": "save"})
        assert response.status_code == 302, (rows, row_errors(response.text))
        saved = role_named(name)
        assert stored_conditions(saved.id) == {("deals", "view"): expected}, rows

        url = f"/settings/roles/{saved.id}/edit"
        again = matrix_values(client, url)
        shown = {k: v for k, v in again.items() if k.startswith("cond__deals__view__") and v}
        assert shown == {k: AS_STORED.get(v, v) for k, v in rows.items() if v}, number
        assert again["cond__deals__view"] == "", "a builder condition is not kept as JSON"
        assert client.post(url, data={**again, "step": "save"}).status_code == 302
        assert stored_conditions(saved.id) == {("deals", "view"): expected}, (
            "resubmitting the loaded rows changed the condition")


def test_a_condition_the_builder_cannot_show_is_kept_read_only_and_can_be_removed(
        world: SimpleNamespace, login: Any) -> None:
    r = rbac.models.Role(workspace=world.ws, name="Kept")
    db.session.add(r)
    workspaces.add_grant(rbac, r, "deals", "view", "all",
                         condition=[{"field": "id", "op": "gt", "value": 3}])
    db.session.commit()
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{r.id}/edit"
    page = client.get(url).text
    assert "Kept as stored" in page and "id &gt; 3" in page
    values = form_values(page)
    assert client.post(url, data={**values, "step": "save"}).status_code == 302
    assert stored_conditions(r.id) == {("deals", "view"): [
        {"field": "id", "op": "gt", "value": 3}]}
    dropped = {**values, "cond__deals__view__drop": "y", "step": "save"}
    assert client.post(url, data=dropped).status_code == 302
    assert stored_conditions(r.id) == {("deals", "view"): None}


# -- bad values are refused in words ---------------------------------------------------


BAD_ROWS = [
    (row(5, "amount", "eq", "abc"), "Amount must be a number"),
    (row(5, "amount", "gt", "1.234"), "Amount must be a number with at most 2 decimals"),
    (row(5, "amount", "gt", "1e400"), "Amount must be a number"),
    (row(5, "amount", "eq", ""), "Enter a value for Amount."),
    (row(5, "stage", "", "won"), "Choose an operator for Stage."),
    (row(5, "stage", "lt", "won"), "Choose an operator that applies to Stage."),
    (row(5, "stage", "eq", "galaxy"), "Stage must be one of: new, qualified"),
    (row(5, "stage", "in"), "Choose at least one value for Stage."),
    (row(5, "close_date", "eq", "31/01/2026"), "Close date must be a date."),
    (row(5, "client_id", "eq", "1.5"), "Client ID must be a whole number"),
    (row(5, "client_id", "eq", "99999999999"), "Client ID must be a whole number"),
    (row(5, "title", "eq", "x" * 201), "Title must be plain text of at most 200 characters."),
    (row(5, "nope", "eq", "1"), "Choose a field from the list."),
    (row(5, "stage", "like", "w"), "Choose an operator that applies to Stage."),
]
#: Text of parsers and exceptions that must never reach the page.
LEAKS = ("condition on", "Traceback", "InvalidCondition", "Expecting", "is not a number",
         "Decimal(", "ValueError", "'abc'")


@pytest.mark.parametrize(("rows", "message"), BAD_ROWS)
def test_a_bad_row_is_refused_in_words_at_the_row_and_changes_nothing(
        world: SimpleNamespace, login: Any, rows: dict[str, str], message: str) -> None:
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{role(world, 'finance').id}/edit"
    values = matrix_values(client, url)
    before = policy_snapshot()
    response = client.post(url, data={**values, **rows, "step": "save"})
    assert response.status_code == 400
    # A new row after the role's own (its stage condition is row 0).
    errors = row_errors(response.text)
    assert any(e.startswith(message) for e in errors), errors
    assert 'aria-invalid="true"' in response.text
    for leak in LEAKS:
        assert leak not in response.text, leak
    # The submitted row stays on the page to be fixed.
    field = rows["cond__deals__view__5__field"]
    assert f'value="{field}" selected' in response.text or field == "nope"
    assert policy_snapshot() == before


# -- shortcuts and administrative resources ---------------------------------------------


def test_whole_role_shortcuts_leave_the_administration_resources_alone(
        world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{role(world, 'junior_rep').id}/edit"
    values = {**matrix_values(client, url), "scope__members__view": "all",
              "deny__settings__edit": "y"}
    admin = {f"{r.name}__{a}" for r in rbac.registry if r.module == "administration"
             for a in r.actions}
    assert admin, "the registry has administrative resources"
    before = policy_snapshot()
    for level in ("view", "full", "none"):
        after = form_values(client.post(url, data={**values, "shortcut": f"*:{level}"}).text)
        assert {k for k in granted(after) if k in admin} == {"members__view"}, level
        assert after.get("deny__settings__edit") == "y", level
    full_admin = form_values(client.post(url, data={**values,
                                                    "shortcut": "administration:full"}).text)
    assert {k for k in granted(full_admin) if k in admin} == admin
    assert "deny__settings__edit" not in full_admin
    assert granted(full_admin)["leads__view"] == "own", "business cells are untouched"
    assert policy_snapshot() == before

    page = client.get(url).text
    assert 'data-module="administration" data-admin' in page
    assert 'data-shortcut="administration:full"' in page and 'data-shortcut="*:view"' in page
    script = (Path(__file__).resolve().parents[1] / "crm_rbac_plugin" / "static" / "rbac"
              / "matrix.js").read_text()
    assert 'table.rbac-matrix:not([data-admin])' in script


# -- Owner and Admin read-only ----------------------------------------------------------


@pytest.mark.parametrize("key", ["owner", "admin"])
def test_builtin_privileged_roles_open_read_only_and_refuse_a_save(
        world: SimpleNamespace, login: Any, key: str) -> None:
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{role(world, key).id}/edit"
    response = client.get(url)
    assert response.status_code == 200
    page = response.text
    assert "Built-in role: its permissions cannot be changed" in page
    assert '<fieldset class="rbac-role-fieldset" disabled>' in page
    assert 'name="step"' not in page and "data-shortcut" not in page
    assert "matrix.js" not in page and "conditions.js" not in page
    assert granted(form_values(page))["deals__view"] == "all"
    before = policy_snapshot()
    for data in ({**form_values(page), "step": "save"}, {"name": "Renamed", "step": "preview"}):
        refused = client.post(url, data=data)
        assert refused.status_code == 403
        assert "always has full access" in refused.text
    assert policy_snapshot() == before


# -- scope labels ---------------------------------------------------------------------


@pytest.mark.parametrize("unowned", [True, False])
def test_scope_labels_follow_the_unowned_visible_setting(
        app: Flask, world: SimpleNamespace, login: Any, unowned: bool) -> None:
    app.config["RBAC_UNOWNED_VISIBLE"] = unowned
    assert (queries.scope_label("own") == "own records and unassigned ones") is unowned
    assert queries.scope_label("own", "edit") == "own records"
    assert queries.scope_label("all") == "all records"
    page = login(world.users["owner"], world.ws).get(NEW).text
    view = page.split('name="scope__leads__view"', 1)[1].split("</select>", 1)[0]
    edit = page.split('name="scope__leads__edit"', 1)[1].split("</select>", 1)[0]
    assert ('value="own">own records and unassigned ones<' in view) is unowned
    assert ('value="own">own records<' in view) is not unowned
    assert 'value="own">own records<' in edit


# -- labels ---------------------------------------------------------------------------


class _Controls(HTMLParser):
    """Every form control of the matrix form and whether it has an accessible name."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.label_depth = 0
        self.labelled_ids: set[str] = set()
        self.controls: list[tuple[str, str, bool]] = []  # (name, id, named)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and "data-rbac-matrix" in a:
            self.inside = True
        if not self.inside:
            return
        if tag == "label":
            self.label_depth += 1
            if a.get("for"):
                self.labelled_ids.add(a["for"])
        if tag in ("select", "textarea") or (tag == "input" and a.get("type") != "hidden"):
            named = bool(a.get("aria-label")) or self.label_depth > 0
            self.controls.append((a.get("name", ""), a.get("id", ""), named))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.label_depth -= 1
        if tag == "form":
            self.inside = False


def test_every_matrix_control_has_a_label_and_fields_read_in_words(
        world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    page = client.get(f"/settings/roles/{role(world, 'finance').id}/edit").text
    parser = _Controls()
    parser.feed(page)
    unnamed = [name for name, id_, named in parser.controls
               if not named and id_ not in parser.labelled_ids]
    assert parser.controls and unnamed == []
    assert 'aria-label="Leads: export scope"' in page
    assert 'aria-label="Leads: deny export"' in page
    assert 'aria-label="Deals: view, condition 1: field"' in page
    # Field rules and the builder name fields by their labels, not their columns.
    assert '>Close date</label>' in page and '>close_date</label>' not in page
    assert '<option value="close_date">Close date</option>' in page
    assert ">Email</label>" in page
