"""The settings pages' one way to save: commit the change, or roll it back and show why.

:func:`crm_rbac_plugin.settings.blueprint.attempt` commits a change that
succeeds and rolls back a refused one (nothing of it is written); the
refusal's message goes to the input it names, then (for a PermissionDenied)
to the page's errors, then to the page's fallback input, then to the page's
errors, else to a flashed message.
"""

from __future__ import annotations

from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask, get_flashed_messages

from crm_app.rbac_setup import rbac
from crm_rbac_plugin.errors import PermissionDenied, RuleConflict, ValidationError
from crm_rbac_plugin.settings.blueprint import attempt, show_refusal


def form_with(*names: str) -> Any:
    return SimpleNamespace(_fields={n: SimpleNamespace(errors=[]) for n in names})


def errors_of(form: Any) -> dict[str, list[str]]:
    return {name: field.errors for name, field in form._fields.items() if field.errors}


@pytest.mark.parametrize(("exc", "fallback", "has_page", "expected"), [
    (ValidationError("bad name", field="name"), "other", True, {"name": ["bad name"]}),
    (ValidationError("bad", field="unknown"), "other", True, {"other": ["bad"]}),
    (ValidationError("bad", field="unknown"), None, True, {"page": ["bad"]}),
    (PermissionDenied("no"), "other", True, {"page": ["no"]}),
    (PermissionDenied("no"), "other", False, {"other": ["no"]}),
])
def test_a_refusal_goes_to_the_first_place_that_applies(
        app: Flask, exc: Any, fallback: str | None, has_page: bool,
        expected: dict[str, list[str]]) -> None:
    form = form_with("name", "other")
    page: list[str] | None = [] if has_page else None
    show_refusal(exc, form, fallback=form._fields[fallback] if fallback else None, errors=page)
    shown = errors_of(form)
    if page:
        shown["page"] = page
    assert shown == expected


def test_a_refusal_with_nowhere_to_go_is_flashed(app: Flask) -> None:
    with app.test_request_context("/settings/departments"):
        show_refusal(ValidationError("still has members", field="department"))
        assert get_flashed_messages(with_categories=True) == [("error", "still has members")]


def _department_count(workspace_id: int) -> int:
    D = rbac.models.Department
    with rbac.system():
        return int(rbac.db.session.scalar(
            sa.select(sa.func.count()).select_from(D).where(D.workspace_id == workspace_id)))


def test_a_change_is_committed_and_a_refused_one_written_not_at_all(
        app: Flask, world: SimpleNamespace) -> None:
    before = _department_count(world.ws.id)

    def add(name: str, refusal: Exception | None = None) -> Any:
        dept = rbac.models.Department(workspace_id=world.ws.id, name=name)
        rbac.db.session.add(dept)
        rbac.db.session.flush()
        if refusal is not None:
            raise refusal
        return dept

    with app.test_request_context("/settings/departments"), rbac.system():
        saved = attempt(lambda: add("Legal"))
        assert saved.ok and saved.status == 200 and saved.value.name == "Legal"
        refused = [attempt(partial(add, "Ops", refusal)) for refusal in (
            ValidationError("bad"), RuleConflict("conflict"), PermissionDenied("no"))]
        assert [(o.ok, o.value, o.status) for o in refused] == [
            (False, None, 400), (False, None, 409), (False, None, 403)]
        preview = attempt(lambda: add("Preview"), commit=False)
        assert preview.ok
        rbac.db.session.rollback()
    assert _department_count(world.ws.id) == before + 1
