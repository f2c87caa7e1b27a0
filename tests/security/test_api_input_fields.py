"""Every refusal of bad input in the JSON API is a 400 ``validation_error`` naming the field.

A client fixes what the answer names: each case sends one bad value and
expects the parameter or body path it was in, and nothing written.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_api import Api


@pytest.fixture
def api(app: Any, world: SimpleNamespace) -> Any:
    """``api(key)``: a client holding a fresh token of member ``key``."""
    def make(key: str) -> Api:
        _, plaintext = tokens.create_token(rbac, world.members[key], f"fields {key}")
        db.session.commit()
        return Api(app, plaintext)
    return make


QUERY_CASES = [
    ("/records/deals?page=1%00", "page"),
    ("/records/deals?page=0", "page"),
    ("/records/deals?per_page=abc", "per_page"),
    ("/records/deals?per_page=0", "per_page"),
    ("/records/deals?per_page=101", "per_page"),
    ("/records/deals?page=99999999999999999999", "page"),
    ("/records/deals?page=%D9%A1", "page"),
    ("/records/deals?per_page=5_0", "per_page"),
    ("/records/deals?per_page=%2B5", "per_page"),
    ("/records/deals?per_page=%20%205", "per_page"),
    ("/audit?page=x", "page"),
    ("/audit?per_page=99999999999999999999", "per_page"),
    ("/audit?actor=x", "actor"),
    ("/audit?actor=%EF%BC%91", "actor"),
    ("/audit?actor=99999999999999999999", "actor"),
    ("/audit?member=-1", "member"),
    ("/audit?to=2026-13-01", "to"),
    ("/audit?to=9999-12-31", "to"),
    ("/audit?from=0000-01-01", "from"),
    ("/audit?action=group:x", "action"),
    ("/audit?action=%00", "action"),
]


@pytest.mark.parametrize(("path", "field"), QUERY_CASES)
def test_a_bad_query_value_is_named(api: Any, world: SimpleNamespace, path: str,
                                    field: str) -> None:
    response = api("owner").get(path)
    assert response.status_code == 400, response.text
    assert response.json["error"] == "validation_error", response.json
    assert response.json["field"] == field, response.json


def test_good_pages_still_read(api: Any, world: SimpleNamespace) -> None:
    client = api("owner")
    assert client.get("/records/deals?page=2&per_page=3").json["page"] == 2
    assert client.get("/audit?page=1&per_page=200&actor=1&to=2026-12-31").status_code == 200


def role_names() -> list[str]:
    db.session.expire_all()
    return sorted(db.session.scalars(sa.select(rbac.models.Role.name)))


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "a\x00b"}, "name"),
    ({"name": "R", "permissions": ["leads.view", "deals.view\x00"]}, "permissions[1]"),
    ({"name": "R", "field_rules": {"leads": {"email": "hid\x00den"}}},
     "field_rules.leads.email"),
    ({"name": "R", "description": "\ud800"}, "description"),
    ({"name": "R", "per\x00missions": []}, "a key of body"),
    ({"name": "R", "permissions": ["leads"]}, "permissions[0]"),
    ({"name": "R", "permissions": [".view"]}, "permissions[0]"),
    ({"name": "R", "permissions": {"leads": "view"}}, "permissions"),
])
def test_a_bad_body_value_is_named_and_nothing_is_written(
        api: Any, world: SimpleNamespace, body: dict[str, Any], field: str) -> None:
    before = role_names()
    response = api("owner").post("/roles", body)
    assert response.status_code == 400, response.text
    assert response.json["field"] == field, response.json
    assert role_names() == before


@pytest.mark.parametrize("days", ["1", [1], {"mon": 1}, ["Monkey"], ["sunflower"], ["weddings"],
                                  [None], 7, True])
def test_business_days_take_weekday_names_only(api: Any, world: SimpleNamespace,
                                               days: Any) -> None:
    client = api("owner")
    before = client.get("/alert-settings").json
    response = client.patch("/alert-settings", {"business_days": days})
    assert response.status_code == 400, response.text
    assert response.json["field"] == "business_days"
    assert client.get("/alert-settings").json == before


def test_business_days_read_names_short_and_long(api: Any, world: SimpleNamespace) -> None:
    client = api("owner")
    saved = client.patch("/alert-settings", {"business_days": ["Mon", "tuesday", " fri "]})
    assert saved.status_code == 200, saved.text
    assert client.get("/alert-settings").json["settings"]["business_days"] == ["mon", "tue", "fri"]
    assert client.patch("/alert-settings", {"business_days": []}).status_code == 200
    assert client.get("/alert-settings").json["settings"]["business_days"] == []


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/sharing", {"workspace": 99999999999999999999, "permissions": ["clients.view"]},
     "workspace"),
    ("/sharing", {"workspace": "beta", "permissions": ["clients.view"],
                  "expires_at": "9999-12-31T23:59:59-14:00"}, "expires_at"),
])
def test_out_of_range_values_are_named(api: Any, world: SimpleNamespace, path: str,
                                       body: dict[str, Any], field: str) -> None:
    response = api("owner").post(path, body)
    assert response.status_code == 400, response.text
    assert response.json["field"] == field, response.json
