"""Secure defaults of a deployment: sign-in timing, secret key, cookies, API tokens.

* Sign-in verifies exactly one password hash whatever the email names (an
  unknown address, an account without a password, a deactivated account, a
  wrong or right password), and a failed sign-in answers the same bytes
  whichever way it failed, so neither timing nor the page tells which emails
  have accounts. Counted, never timed: every verification goes through
  werkzeug's ``_hash_internal``, which the tests wrap with a counter.
* Outside debug and testing, ``create_app`` refuses to start without a real
  ``SECRET_KEY``; it reads ``FLASK_SECRET_KEY`` or the instance key file.
* Cookies are HttpOnly and SameSite=Lax, Secure unless ``CRM_HTTPS`` is off;
  remember-me lasts 14 days by default.
* A deactivated member's API tokens stay dead after reactivation.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug import security as wz_security
from werkzeug.test import TestResponse

from crm_app import create_app
from crm_app.extensions import db
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_app.security import InsecureSecretKey
from crm_rbac_plugin import tokens
from tests.conftest import app_with_tables, build_world

FAILED = "That email and password do not match an account."
ENV_KEYS = ("FLASK_SECRET_KEY", "SECRET_KEY", "FLASK_DEBUG", "FLASK_TESTING",
            "FLASK_CRM_HTTPS", "FLASK_REMEMBER_COOKIE_DURATION", "FLASK_CRM_SECRET_KEY_FILE")


# -- sign-in timing -------------------------------------------------------------------


@pytest.fixture
def hash_count(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count password-hash computations (every ``check_password_hash`` makes exactly one)."""
    calls = [0]
    real = wz_security._hash_internal

    def counting(method: str, salt: str, password: str) -> tuple[str, str]:
        calls[0] += 1
        return real(method, salt, password)

    monkeypatch.setattr(wz_security, "_hash_internal", counting)
    return calls


def _sign_in(app: Flask, email: str, password: str) -> TestResponse:
    return app.test_client().post("/login", data={"email": email, "password": password})


def _anonymised(response: TestResponse, email: str) -> str:
    """The page with the typed email (echoed in the form) replaced by a placeholder."""
    return response.get_data(as_text=True).replace(email, "EMAIL")


@pytest.fixture
def accounts(world: SimpleNamespace) -> dict[str, str]:
    """Emails of each kind of account sign-in must not tell apart."""
    db.session.add(User(email="invited@example.test", name="Invited"))  # no password yet
    world.users["viewer"].is_active_user = False
    db.session.commit()
    return {"unknown": "nobody@example.test", "wrong password": "member@example.test",
            "no password": "invited@example.test", "deactivated": "viewer@example.test"}


def test_every_failed_sign_in_verifies_one_hash_and_answers_the_same(
        app: Flask, accounts: dict[str, str], hash_count: list[int]) -> None:
    """Unknown, password-less, deactivated or wrong: one hash each, identical 200 pages."""
    pages = {}
    for kind, email in accounts.items():
        hash_count[0] = 0
        response = _sign_in(app, email, "not-the-password")
        assert hash_count[0] == 1, (kind, hash_count[0])
        assert response.status_code == 200, kind
        assert FAILED in response.get_data(as_text=True), kind
        pages[kind] = _anonymised(response, email)
    assert len(set(pages.values())) == 1, "the failure pages differ by account kind"


def test_a_successful_sign_in_verifies_one_hash(app: Flask, accounts: dict[str, str],
                                                hash_count: list[int]) -> None:
    hash_count[0] = 0
    response = _sign_in(app, "member@example.test", "password")
    assert response.status_code == 302 and hash_count[0] == 1


def test_a_password_less_account_cannot_sign_in_with_an_empty_hash(
        app: Flask, accounts: dict[str, str], hash_count: list[int]) -> None:
    """The dummy hash is of a random password: no password matches it."""
    for password in ("password", "x" * 200):
        response = _sign_in(app, "invited@example.test", password)
        assert response.status_code == 200 and FAILED in response.get_data(as_text=True)


def test_the_right_password_of_a_deactivated_account_is_refused(
        app: Flask, accounts: dict[str, str]) -> None:
    """Refused with the wrong password's page: a message of its own would confirm the
    password to whoever guesses it."""
    wrong = _anonymised(_sign_in(app, "viewer@example.test", "not-the-password"),
                        "viewer@example.test")
    response = _sign_in(app, "viewer@example.test", "password")
    assert response.status_code == 200 and FAILED in response.get_data(as_text=True)
    assert "deactivated" not in response.get_data(as_text=True)
    assert _anonymised(response, "viewer@example.test") == wrong


# -- secret key -----------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No key, debug or transport setting from the environment; return a key file path."""
    for key in ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    return tmp_path / "secret_key"


def _production_app(key_file: Path, **config: Any) -> Flask:
    return create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://",
                       "CRM_SECRET_KEY_FILE": str(key_file), **config})


@pytest.mark.parametrize("key", [None, "", "dev-only-change-me", "short-key"])
def test_production_refuses_to_start_without_a_real_key(clean_env: Path, key: str | None) -> None:
    config = {} if key is None else {"SECRET_KEY": key}
    with pytest.raises(InsecureSecretKey, match="SECRET_KEY"):
        _production_app(clean_env, **config)
    assert issubclass(InsecureSecretKey, RuntimeError)


def test_production_reads_the_key_from_the_environment(
        clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLASK_SECRET_KEY", "k" * 40)
    assert _production_app(clean_env).secret_key == "k" * 40


def test_production_reads_the_key_from_the_instance_file(clean_env: Path) -> None:
    clean_env.write_text("f" * 64 + "\n")
    assert _production_app(clean_env).secret_key == "f" * 64


@pytest.mark.parametrize("mode", ["DEBUG", "TESTING"])
def test_debug_and_tests_without_a_key_get_a_random_one(clean_env: Path, mode: str) -> None:
    first = _production_app(clean_env, **{mode: True}).secret_key
    second = _production_app(clean_env, **{mode: True}).secret_key
    assert first and second and first != second
    assert first != "dev-only-change-me"


# -- cookies and transport ------------------------------------------------------------


def test_production_defaults_secure_cookies_and_two_weeks_of_remember_me(clean_env: Path) -> None:
    clean_env.write_text("f" * 64)
    app = _production_app(clean_env, RBAC_BASE_URL="https://crm.example")  # its address
    config = app.config
    assert config["CRM_HTTPS"] is True
    assert config["SESSION_COOKIE_SECURE"] and config["REMEMBER_COOKIE_SECURE"]
    assert config["SESSION_COOKIE_HTTPONLY"] and config["REMEMBER_COOKIE_HTTPONLY"]
    assert config["SESSION_COOKIE_SAMESITE"] == config["REMEMBER_COOKIE_SAMESITE"] == "Lax"
    assert config["REMEMBER_COOKIE_DURATION"] == dt.timedelta(days=14)
    # Plain HTTP is sent to HTTPS; HTTPS answers carry HSTS.
    response = app.test_client().get("/login", base_url="http://crm.example")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("https://crm.example/login")
    response = app.test_client().get("/login", base_url="https://crm.example")
    assert response.status_code == 200
    assert "max-age=" in response.headers["Strict-Transport-Security"]


def test_the_plain_http_switch(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``FLASK_CRM_HTTPS=false`` (the demo script's): no Secure flag, no redirect, no HSTS."""
    clean_env.write_text("f" * 64)
    monkeypatch.setenv("FLASK_CRM_HTTPS", "false")
    monkeypatch.setenv("FLASK_REMEMBER_COOKIE_DURATION", "3600")
    app = _production_app(clean_env)
    assert not app.config["SESSION_COOKIE_SECURE"] and not app.config["REMEMBER_COOKIE_SECURE"]
    assert app.config["REMEMBER_COOKIE_DURATION"] == 3600
    response = app.test_client().get("/login", base_url="http://127.0.0.1:5000")
    assert response.status_code == 200
    assert "Strict-Transport-Security" not in response.headers


def _set_cookies(response: TestResponse) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in response.headers.getlist("Set-Cookie")}


@pytest.fixture
def https_app(database_url: str) -> Iterator[Flask]:
    with app_with_tables(database_url, CRM_HTTPS=True) as app:
        yield app


def test_sign_in_cookies_are_secure_http_only_lax(https_app: Flask) -> None:
    build_world()
    response = https_app.test_client().post(
        "/login", base_url="https://crm.test",
        data={"email": "member@example.test", "password": "password", "remember": "y"})
    assert response.status_code == 302
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    cookies = _set_cookies(response)
    for name in ("session", "remember_token"):
        flags = [f.strip().lower() for f in cookies[name].split(";")]
        assert "secure" in flags and "httponly" in flags and "samesite=lax" in flags, name
    expires = re.search(r"Expires=([^;]+)", cookies["remember_token"])
    assert expires is not None
    lifetime = dt.datetime.strptime(expires.group(1), "%a, %d %b %Y %H:%M:%S GMT") - (
        dt.datetime.now(dt.UTC).replace(tzinfo=None))
    assert dt.timedelta(days=13, hours=23) < lifetime <= dt.timedelta(days=14)


# -- API tokens across deactivation ---------------------------------------------------


def test_tokens_stay_dead_after_reactivation(app: Flask, world: SimpleNamespace,
                                             login: Any) -> None:
    """Token works -> deactivate -> 401 -> reactivate -> still 401 -> a new token works."""
    member = world.members["member"]
    _, old = tokens.create_token(rbac, member, "before deactivation")
    db.session.commit()
    api = app.test_client()
    url = "/api/v1/records/leads"

    def status(plaintext: str) -> int:
        return api.get(url, headers={"Authorization": f"Bearer {plaintext}"}).status_code

    assert status(old) == 200
    owner = login(world.users["owner"], world.ws)
    assert owner.post(f"/settings/members/{member.id}/deactivate").status_code == 302
    assert status(old) == 401
    assert owner.post(f"/settings/members/{member.id}/reactivate").status_code == 302
    assert status(old) == 401
    Token = rbac.models.ApiToken
    revoked = db.session.scalars(sa.select(Token.revoked_at).where(
        Token.membership_id == member.id)).all()
    assert revoked and all(revoked), "deactivation revokes every token of the member"
    db.session.expire_all()
    _, new = tokens.create_token(rbac, db.session.get(type(member), member.id), "after")
    db.session.commit()
    assert status(new) == 200
    assert status(old) == 401
