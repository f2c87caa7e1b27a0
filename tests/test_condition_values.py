"""Condition values: checked against the column when saved, failing closed when stored.

A condition value the column cannot hold (NaN, an infinity, an integer past
the column's range, more decimals than a Numeric's scale, text longer than
the column, the wrong type) is refused with a 400 naming the field by every
path that saves one: the Python API, the JSON API (roles and sharing), the
role editor and the CLI. A bad value written straight into the database
costs the reader only the rule that holds it: an allow grants nothing, a
deny covers its whole scope, and every page and API answer stays a 200
where check and filter still agree.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Deal, Lead, Note
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import conditions, sharing, tokens, workspaces
from crm_rbac_plugin.errors import InvalidCondition
from tests.rbac_helpers import access_of, allowed_tags, custom_role, fast_passwords, give_role, remove_roles  # noqa: F401
from tests.test_api import Api
from tests.test_settings_ui import errors_in, matrix_values, policy_snapshot

#: (model, field, op, value, words the refusal must contain)
UNHOLDABLE: list[tuple[type, str, str, Any, str]] = [
    (Deal, "id", "lt", 10**30, "out of range"),
    (Deal, "id", "lt", 2**31, "out of range"),
    (Deal, "id", "gt", -(2**31) - 1, "out of range"),
    (Deal, "id", "in", [1, 10**30], "out of range"),
    (Deal, "owner_id", "eq", "99999999999", "out of range"),
    (Deal, "id", "lt", float("inf"), "whole number"),
    (Deal, "id", "lt", float("nan"), "whole number"),
    (Deal, "id", "eq", "1e3", "whole number"),
    (Deal, "id", "eq", True, "whole number"),
    (Deal, "amount", "gt", "NaN", "not a number"),
    (Deal, "amount", "gt", "sNaN", "not a number"),
    (Deal, "amount", "gt", "Infinity", "not a number"),
    (Deal, "amount", "gt", "-inf", "not a number"),
    (Deal, "amount", "gt", float("nan"), "finite"),
    (Deal, "amount", "gt", float("-inf"), "finite"),
    (Deal, "amount", "lt", Decimal("NaN"), "finite"),
    (Deal, "amount", "lt", 10**30, "out of range"),
    (Deal, "amount", "lt", "10000000000", "out of range"),
    (Deal, "amount", "gt", 1e308, "out of range"),
    (Deal, "amount", "gt", -1e200, "out of range"),
    (Deal, "amount", "gt", 1e100, "out of range"),
    (Deal, "amount", "gt", 10**400, "out of range"),
    (Deal, "amount", "in", [1, 1e200], "out of range"),
    (Deal, "amount", "lt", "1000.002", "at most 2"),
    (Deal, "amount", "lt", 0.001, "at most 2"),
    (Deal, "amount", "in", ["1", "2.005"], "at most 2"),
    (Deal, "amount", "eq", False, "not a number"),
    (Deal, "amount", "eq", [1], "not a number"),
    (Deal, "stage", "eq", "x" * 21, "20 characters"),
    (Deal, "stage", "eq", "won\x00", "NUL"),
    (Deal, "stage", "eq", "\ud800", "surrogate"),
    (Deal, "stage", "eq", {"a": 1}, "not text"),
    (Deal, "close_date", "lt", 20240101, "not a date"),
    (Deal, "close_date", "lt", "2024-02-30", "not a date"),
    (Deal, "close_date", "lt", "2024-01-01T10:00", "not a date"),
    (Deal, "created_at", "lt", "2024-01-01T10:00:00+02:00", "without a time zone"),
    (Deal, "created_at", "lt", 1704067200, "not a date and time"),
    (Lead, "name", "lt", "n" * 201, "200 characters"),
]


@pytest.mark.parametrize("model, field, op, value, words", UNHOLDABLE,
                         ids=lambda v: repr(v)[:30])
def test_values_the_column_cannot_hold_are_refused(model: type, field: str, op: str,
                                                   value: Any, words: str) -> None:
    with pytest.raises(InvalidCondition) as refused:
        conditions.validate(model, [{"field": field, "op": op, "value": value}])
    assert f"condition on {field!r}" in str(refused.value)
    assert words in str(refused.value)


def test_values_the_column_holds_are_accepted_and_normalised() -> None:
    def one(model: type, field: str, op: str, value: Any) -> Any:
        return conditions.validate(model, [{"field": field, "op": op, "value": value}])[0][2]

    assert one(Deal, "id", "lt", 2**31 - 1) == 2**31 - 1
    assert one(Deal, "id", "gt", -(2**31)) == -(2**31)
    assert one(Deal, "id", "eq", 7.0) == 7 and one(Deal, "owner_id", "eq", "7") == 7
    assert one(Deal, "amount", "lt", "9999999999.99") == Decimal("9999999999.99")
    assert one(Deal, "amount", "lt", "-9999999999.99") == Decimal("-9999999999.99")
    assert str(one(Deal, "amount", "lt", "1000.000")) == "1000.00"
    assert str(one(Deal, "amount", "lt", 1000)) == "1000.00"
    assert str(one(Deal, "amount", "lt", 0.1)) == "0.10"
    assert one(Deal, "stage", "eq", "x" * 20) == "x" * 20
    assert one(Deal, "close_date", "eq", "2024-02-29") == dt.date(2024, 2, 29)
    assert one(Deal, "close_date", "eq", dt.date(2024, 2, 29)) == dt.date(2024, 2, 29)
    assert one(Deal, "created_at", "lt", "2024-01-01T10:00:00") == dt.datetime(2024, 1, 1, 10)
    assert one(Note, "body", "eq", "é" * 6000) == "é" * 6000  # Text: no length limit


@pytest.mark.parametrize("raw", [
    [{"field": "id", "op": "lt", "value": 10**30}],
    [{"field": "stage", "op": "eq", "value": "won"}, {"field": "amount", "op": "gt",
                                                       "value": "NaN"}],
    [{"field": "gone", "op": "eq", "value": 1}],
    [{"field": "stage", "op": "like", "value": "w%"}],
    "stage = won", 42, [42],
], ids=lambda raw: repr(raw)[:40])
def test_a_stored_condition_that_no_longer_validates_fails_closed(raw: Any) -> None:
    assert conditions.stored(Deal, raw) == (conditions.NEVER,)
    assert conditions.stored(Deal, raw, deny=True) == ()
    assert not conditions.matches(SimpleNamespace(stage="won"), (conditions.NEVER,))
    assert str(conditions.to_sql(Deal, (conditions.NEVER,))) == "false"
    assert "cannot be evaluated" in conditions.describe((conditions.NEVER,))


# -- every path that saves a condition ---------------------------------------------------


def _api(app: Flask, membership: Any) -> Api:
    _, plaintext = tokens.create_token(rbac, membership, "conditions")
    db.session.commit()
    return Api(app, plaintext)


def _beta_owner(world: SimpleNamespace) -> Any:
    m = rbac.models
    return db.session.scalar(sa.select(m.Membership).where(
        m.Membership.workspace_id == world.ws2.id,
        m.Membership.user_id == world.users["dual"].id))


def _agree(world: SimpleNamespace, permissions: list[Any]) -> Any:
    """Acme's Owner shares ``permissions`` with Beta, and Beta's Owner accepts."""
    agreement = sharing.create_agreement(rbac, rbac.access_for(world.members["owner"]),
                                         workspace="beta", permissions=permissions)
    db.session.commit()
    with rbac.as_member(rbac.access_for(_beta_owner(world))) as dual:
        sharing.accept(rbac, dual, agreement)
        db.session.commit()
    return agreement


def _shared_conditions(agreement_id: int) -> list[tuple[Any, ...]]:
    SP = rbac.models.SharingPermission
    db.session.expire_all()
    return [tuple(row) for row in db.session.execute(
        sa.select(SP.resource, SP.action, SP.condition).where(SP.agreement_id == agreement_id)
        .order_by(SP.id))]


def test_the_json_api_refuses_unholdable_values(app: Flask, world: SimpleNamespace) -> None:
    """PATCH of an active agreement and POST of a role: 400 naming the field, nothing saved."""
    agreement = _agree(world, ["clients.view", "leads.view"])
    acme = _api(app, world.members["owner"])
    before_sharing = _shared_conditions(agreement.id)
    before_roles = policy_snapshot()
    for value in (10**30, "NaN", 2**31, "1e400"):
        response = acme.patch(f"/sharing/{agreement.id}", {"permissions": [
            {"resource": "clients", "action": "view",
             "condition": [{"field": "id", "op": "lt", "value": value}]},
            "leads.view"]})
        assert response.status_code == 400, (value, response.json)
        assert response.json["field"] == "permissions[0].condition", response.json
        assert "'id'" in response.json["message"]
    for value in (1e308, 1e200, 1e100):
        response = acme.patch(f"/sharing/{agreement.id}", {"permissions": [
            {"resource": "deals", "action": "view",
             "condition": [{"field": "amount", "op": "gt", "value": value}]}]})
        assert response.status_code == 400, (value, response.json)
        assert response.json["field"] == "permissions[0].condition", response.json
        assert "'amount'" in response.json["message"]
    for condition in ([{"field": "amount", "op": "gt", "value": "NaN"}],
                      [{"field": "amount", "op": "gt", "value": 1e200}],
                      [{"field": "amount", "op": "lt", "value": "1000.002"}],
                      [{"field": "id", "op": "lt", "value": 10**30}]):
        response = acme.post("/roles", {"name": "Bad values", "permissions": [
            "deals.view", {"resource": "deals", "action": "export", "condition": condition}]})
        assert response.status_code == 400, (condition, response.json)
        assert response.json["field"] == "permissions[1].condition", response.json
        assert condition[0]["field"] in response.json["message"]
    assert _shared_conditions(agreement.id) == before_sharing
    assert policy_snapshot() == before_roles


@pytest.mark.parametrize("falsy", [0, False, {}])
def test_a_falsy_condition_of_the_wrong_type_is_refused_not_dropped(
        app: Flask, world: SimpleNamespace, falsy: Any) -> None:
    """Only null, "" and [] mean no condition: ``0`` on a shared permission must not lift the
    agreement's region condition, nor make a role's grant unconditional."""
    agreement = _agree(world, [{"resource": "clients", "action": "view", "condition": [
        {"field": "region", "op": "eq", "value": "north"}]}])
    acme = _api(app, world.members["owner"])
    before_sharing, before_roles = _shared_conditions(agreement.id), policy_snapshot()
    response = acme.patch(f"/sharing/{agreement.id}", {"permissions": [
        {"resource": "clients", "action": "view", "condition": falsy}]})
    assert response.status_code == 400, response.json
    assert response.json["field"] == "permissions[0].condition", response.json
    response = acme.post("/roles", {"name": "Falsy", "permissions": [
        "deals.view", {"resource": "deals", "action": "export", "condition": falsy}]})
    assert response.status_code == 400, response.json
    assert response.json["field"] == "permissions[1].condition", response.json
    assert _shared_conditions(agreement.id) == before_sharing
    assert policy_snapshot() == before_roles


#: The editor words a refused JSON condition itself; the parser's reason never reaches the page.
UNFIT = "cannot be read or does not fit the fields"


@pytest.mark.parametrize("text, words", [
    ('[{"field": "amount", "op": "gt", "value": "NaN"}]', UNFIT),
    ('[{"field": "amount", "op": "gt", "value": NaN}]', UNFIT),
    ('[{"field": "amount", "op": "gt", "value": Infinity}]', UNFIT),
    ('[{"field": "amount", "op": "lt", "value": "1000.002"}]', UNFIT),
    ('[{"field": "id", "op": "lt", "value": 1000000000000000000000000000000}]', UNFIT),
])
def test_the_role_editor_refuses_unholdable_values(world: SimpleNamespace, login: Any,
                                                   text: str, words: str) -> None:
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{workspaces.role_by_key(rbac, world.ws, 'finance').id}/edit"
    values = matrix_values(client, url)
    before = policy_snapshot()
    response = client.post(url, data={**values, "scope__deals__view": "all",
                                      "cond__deals__view": text, "step": "save"})
    assert response.status_code == 400
    assert words in errors_in(response), errors_in(response)
    assert 'class="rbac-field-errors"' in response.text
    assert policy_snapshot() == before


def test_the_sharing_page_refuses_unholdable_values(world: SimpleNamespace, login: Any) -> None:
    agreement = _agree(world, [{"resource": "clients", "action": "view",
                                "condition": [{"field": "region", "value": "north"}]}])
    before = _shared_conditions(agreement.id)
    acme = login(world.users["owner"], world.ws)
    for text, words in (('[{"field": "id", "op": "lt", "value": 1000000000000000000000000000000}]',
                         "out of range"),
                        ('[{"field": "region", "op": "eq", "value": NaN}]', "not text"),
                        ('[{"field": "id", "op": "gt", "value": "NaN"}]', "whole number")):
        response = acme.post(f"/settings/sharing/{agreement.id}/edit", data={
            "share__clients__view": "y", "cond__clients": text})
        assert response.status_code == 400, text
        assert words in response.text, text
    response = acme.post(f"/settings/sharing/{agreement.id}/edit", data={
        "share__deals__view": "y",
        "cond__deals": '[{"field": "amount", "op": "gt", "value": 1e200}]'})
    assert response.status_code == 400, response.text
    assert "out of range" in response.text
    assert _shared_conditions(agreement.id) == before


def test_the_cli_and_python_api_refuse_unholdable_values(app: Flask,
                                                         world: SimpleNamespace) -> None:
    SA = rbac.models.SharingAgreement
    count = db.session.scalar(sa.select(sa.func.count()).select_from(SA))
    result = app.test_cli_runner().invoke(args=[
        "rbac", "sharing", "create", "--workspace", "acme", "--with", "beta",
        "--permission", "clients.view", "--as", world.users["owner"].email,
        "--condition", json.dumps({"clients.view": [{"field": "id", "op": "lt",
                                                     "value": 10**30}]})])
    assert result.exit_code != 0 and "out of range" in result.output, result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SA)) == count
    role = custom_role(world, "Python API")
    with pytest.raises(InvalidCondition, match="finite"):
        workspaces.add_grant(rbac, role, "deals", "view", "all",
                             condition=[{"field": "amount", "op": "gt", "value": float("nan")}])
    assert role.grants == []


# -- a bad value already stored ----------------------------------------------------------


def _store(model: type, row_id: int, condition: Any) -> None:
    """Write a condition straight into its table, past every check (as a bad migration might)."""
    db.session.execute(sa.update(model.__table__).where(model.__table__.c.id == row_id)
                       .values(condition=condition))
    db.session.commit()
    db.session.expire_all()


PAGES = ("/", "/clients/", "/leads/", "/deals/", "/tasks/")


def _pages_answer(client: Any, api: Api) -> dict[str, int]:
    statuses = {url: client.get(url).status_code for url in PAGES}
    for resource in ("clients", "leads", "deals", "tasks"):
        statuses[f"api {resource}"] = api.get(f"/records/{resource}?per_page=100").status_code
    return statuses


@pytest.mark.parametrize("bad", [
    [{"field": "id", "op": "lt", "value": 10**30}],
    [{"field": "region", "op": "eq", "value": "north"},
     {"field": "id", "op": "gt", "value": "NaN"}],
    [{"field": "region", "op": "eq", "value": "n" * 500}],
], ids=["huge-int", "nan", "long-text"])
def test_a_bad_shared_condition_costs_the_receiver_that_permission_only(
        app: Flask, world: SimpleNamespace, login: Any, bad: Any) -> None:
    """The granting side stores a bad condition: Beta's pages stay 200 and only the
    permission holding it stops sharing (Acme's leads stay shared)."""
    agreement = _agree(world, [{"resource": "clients", "action": "view",
                                "condition": [{"field": "region", "value": "north"}]},
                               "leads.view"])
    SP = rbac.models.SharingPermission
    perm_id = db.session.scalar(sa.select(SP.id).where(SP.agreement_id == agreement.id,
                                                       SP.resource == "clients"))
    _store(SP, perm_id, bad)

    beta_owner = _beta_owner(world)
    statuses = _pages_answer(login(world.users["dual"], world.ws2), _api(app, beta_owner))
    assert statuses == dict.fromkeys(statuses, 200)
    access = access_of(beta_owner)
    acme_clients = {c.name: c for c in world.clients.values()}
    assert allowed_tags(beta_owner, "clients", "view", acme_clients) == set()
    assert allowed_tags(beta_owner, "leads", "view", world.leads) == set(world.leads)
    assert rbac.can("view", "clients", world.other["client"], access=access)
    listed = _api(app, beta_owner).get("/records/leads?per_page=100").json["items"]
    assert {lead.id for lead in world.leads.values()} <= {item["id"] for item in listed}
    # The granting side's pages describe the agreement without failing.
    owner = login(world.users["owner"], world.ws)
    assert owner.get("/settings/sharing").status_code == 200
    assert owner.get(f"/settings/sharing/{agreement.id}/edit").status_code == 200


@pytest.mark.parametrize("bad", [
    [{"field": "amount", "op": "gt", "value": "NaN"}],
    [{"field": "amount", "op": "lt", "value": "1000.002"}],
    [{"field": "id", "op": "lt", "value": 10**30}],
    [{"field": "close_date", "op": "lt", "value": 20240101}],
], ids=["nan", "three-decimals", "huge-int", "int-date"])
def test_a_bad_role_condition_fails_closed_for_its_rule_only(
        app: Flask, world: SimpleNamespace, login: Any, bad: Any) -> None:
    """An allow with a bad condition grants nothing; a deny with one denies its whole
    scope; the member's other rules, pages, API and explain page keep working."""
    member = world.members["viewer"]
    remove_roles(member)
    good = [{"field": "stage", "op": "eq", "value": "won"}]
    allow = custom_role(world, "Bad allow", [("deals", "view", "all")], condition=good)
    deny = custom_role(world, "Bad deny", [("clients", "view", "all")], effect="deny",
                       condition=[{"field": "region", "value": "north"}])
    plain = custom_role(world, "Plain", [("clients", "view", "all"), ("leads", "view", "all"),
                                         ("tasks", "view", "own")])
    for r in (allow, deny, plain):
        give_role(member, r)
    db.session.commit()
    G = rbac.models.Grant
    _store(G, allow.grants[0].id, bad)
    _store(G, deny.grants[0].id, bad)  # on clients: a bad value or a field clients lack

    statuses = _pages_answer(login(world.users["viewer"], world.ws), _api(app, member))
    # The deny, now unconditional over all clients, refuses the clients list as a
    # whole (as any such deny does); every other page answers.
    refused = {"/clients/", "api clients"}
    assert statuses == {url: 403 if url in refused else 200 for url in statuses}
    assert allowed_tags(member, "deals", "view", world.deals) == set()
    assert allowed_tags(member, "clients", "view", world.clients) == set()
    assert allowed_tags(member, "leads", "view", world.leads) == set(world.leads)
    decision = rbac.explain("view", "deals", world.deals["member-won"], access=access_of(member))
    assert not decision.allowed and "cannot be evaluated" in decision.reason
    admin = login(world.users["owner"], world.ws)
    for resource, record in (("deals", world.deals["member-won"]),
                             ("clients", world.clients["member"])):
        page = admin.get(f"/settings/explain?member={member.id}&action=view"
                         f"&resource={resource}&record={record.id}")
        assert page.status_code == 200, page.text[:300]
    assert admin.get(f"/settings/members/{member.id}/access").status_code == 200
    assert admin.get(f"/settings/roles/{allow.id}/edit").status_code == 200
