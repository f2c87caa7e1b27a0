"""The extension's public face: strict configuration, host hooks, JSON detection."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_login import login_user, logout_user

from crm_app.extensions import db
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_app.roles import CRM_ROLE_TEMPLATES
from crm_rbac_plugin import config, team, workspaces
from crm_rbac_plugin.config import DEFAULTS, apply_defaults, setting
from crm_rbac_plugin.decorators import wants_json
from crm_rbac_plugin.defaults import ROLE_TEMPLATES
from crm_rbac_plugin.errors import ConfigurationError
from crm_rbac_plugin.identity import signed_in_user
from crm_rbac_plugin.proxies import current_rbac
from tests.conftest import make_app
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)


def test_a_misspelt_key_stops_the_app_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match="RBAC_UNOWNED_VISIBILE"):
        make_app("sqlite://", RBAC_UNOWNED_VISIBILE=False)


def test_apply_defaults_fills_every_key_and_keeps_the_hosts() -> None:
    config: dict[str, Any] = {"RBAC_CACHE_SIZE": 7, "OTHER": 1}
    apply_defaults(config)
    assert config["RBAC_CACHE_SIZE"] == 7 and config["OTHER"] == 1
    assert set(DEFAULTS) <= set(config)


def test_reading_an_unknown_key_fails_loudly(app: Flask) -> None:
    with pytest.raises(ConfigurationError, match="RBAC_NOPE"):
        setting("RBAC_NOPE")
    with pytest.raises(ConfigurationError, match="RBAC_NOPE"):
        rbac.config("RBAC_NOPE")
    assert rbac.config("RBAC_CACHE_SIZE") == app.config["RBAC_CACHE_SIZE"]


def test_every_default_is_documented_by_a_comment() -> None:
    lines = Path(config.__file__).read_text(encoding="utf-8").splitlines()
    for key in DEFAULTS:
        line = next(i for i, text in enumerate(lines) if f'"{key}":' in text)
        assert lines[line - 1].strip().startswith("#"), key


def test_the_readme_documents_every_key() -> None:
    readme = (Path(config.__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    missing = [key for key in DEFAULTS if f"| `{key}` |" not in readme]
    assert not missing, missing


def test_current_rbac_is_the_registered_extension(app: Flask) -> None:
    assert current_rbac._get_current_object() is rbac  # type: ignore[attr-defined]
    assert current_rbac.models is rbac.models


@pytest.mark.parametrize(("prefix", "path", "expected"), [
    ("/api/v1", "/api/v1/leads", True),
    ("/api/v1", "/api/v1", True),
    ("/api/v1", "/api/v1x/leads", False),
    ("/api/v1", "/api/other", False),
    ("/json/", "/json/leads", True),
    ("/json/", "/api/v1/leads", False),
])
def test_wants_json_follows_the_api_prefix(prefix: str, path: str, expected: bool) -> None:
    app = make_app("sqlite://", RBAC_API_URL_PREFIX=prefix)
    with app.test_request_context(path, headers={"Accept": "text/html"}):
        assert wants_json() is expected


def test_the_invited_user_factory_builds_the_host_user(world: SimpleNamespace) -> None:
    made: list[str] = []

    @rbac.invited_user_factory
    def build(email: str) -> Any:
        made.append(email)
        return User(email=email, name="Invited by hook")

    try:
        owner = rbac.access_for(team.membership_of(rbac, world.ws.id, world.users["owner"].id))
        viewer = workspaces.role_by_key(rbac, world.ws, "viewer")
        with rbac.as_member(owner):
            team.invite(rbac, owner, "hooked@example.test", [viewer], send=False)
        db.session.commit()
    finally:
        rbac.hooks.invited_user = None
    assert made == ["hooked@example.test"]
    user = db.session.scalar(sa.select(User).where(User.email == "hooked@example.test"))
    assert user is not None and user.name == "Invited by hook"


def test_a_host_gets_the_four_neutral_roles_and_the_demo_its_sales_roles() -> None:
    assert [t["key"] for t in ROLE_TEMPLATES] == ["owner", "admin", "member", "viewer"]
    assert [t["key"] for t in CRM_ROLE_TEMPLATES] == [
        "owner", "admin", "manager", "member", "viewer", "finance", "junior_rep",
        "client_success", "sales", "marketing", "finance_accounting", "support", "guest"]
    assert DEFAULTS["RBAC_ROLE_TEMPLATES"] is ROLE_TEMPLATES


def test_the_kept_user_follows_sign_in_and_out_within_a_request(
        world: SimpleNamespace, app: Flask) -> None:
    with app.test_request_context("/"):
        assert signed_in_user() is None
        login_user(world.users["member"])
        assert signed_in_user() is world.users["member"]
        login_user(world.users["owner"])
        assert signed_in_user() is world.users["owner"]
        logout_user()
        assert signed_in_user() is None
