"""A new record is judged as it will be stored: an omitted column counts as its default.

The ORM fills a column's Python-side default only at INSERT time, so a row that
leaves ``status`` out was judged with ``None`` and stored as ``"new"``: a deny
rule on ``status = "new"``, which refuses the record form (it posts the default),
let an import without a Status column, or any code path that leaves the field
out, create exactly that record.
"""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Deal, Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, roles, workspaces
from tests.rbac_helpers import custom_role, give_role, remove_roles


def _upload(client: Any, resource: str, text: str) -> Any:
    return client.post(f"/imports/{resource}",
                       data={"file": (io.BytesIO(text.encode()), "rows.csv")},
                       content_type="multipart/form-data")


def _member_with(w: SimpleNamespace, resource: str, deny: dict[str, str]) -> Any:
    """Give the member a role with own-scope rights on ``resource`` and a deny on create."""
    with rbac.system():
        role = custom_role(w, f"{resource} importer", [(resource, a, "own") for a in
                                                      ("view", "create", "import", "edit")])
        workspaces.add_grant(rbac, role, resource, "create", "own", effect="deny",
                             condition=[deny])
        member = w.members["member"]
        remove_roles(member)
        give_role(member, role)
        db.session.commit()
    return role


def _stored(model: Any, **where: Any) -> Any:
    db.session.expire_all()
    with rbac.system():
        return db.session.scalars(sa.select(model).filter_by(**where)).first()


def test_the_form_and_an_import_without_the_column_are_refused_alike(
        world: SimpleNamespace, login: Any) -> None:
    _member_with(world, "leads", {"field": "status", "op": "eq", "value": "new"})
    member = login(world.users["member"], world.ws)
    assert member.post("/leads/new", data={"name": "Form lead"}).status_code == 403
    assert _upload(member, "leads", "Name\nImported lead\n").status_code == 302
    response = member.post("/imports/leads/commit")
    assert response.status_code == 409
    assert "may not create this row" in response.get_data(as_text=True)
    assert _stored(Lead, name="Imported lead") is None
    assert _stored(Lead, name="Form lead") is None


def test_a_numeric_default_is_judged_too(world: SimpleNamespace, login: Any) -> None:
    _member_with(world, "deals", {"field": "amount", "op": "lt", "value": "100"})
    member = login(world.users["member"], world.ws)
    assert _upload(member, "deals", "Title\nTiny deal\n").status_code == 302
    assert member.post("/imports/deals/commit").status_code == 409
    assert _stored(Deal, title="Tiny deal") is None
    # A row that names an amount above the limit is allowed.
    assert _upload(member, "deals", "Title,Amount\nBig deal,500\n").status_code == 302
    assert member.post("/imports/deals/commit").status_code == 302
    assert _stored(Deal, title="Big deal") is not None


def test_the_flush_guard_judges_the_default(world: SimpleNamespace) -> None:
    _member_with(world, "leads", {"field": "status", "op": "eq", "value": "new"})
    with rbac.as_member(world.members["member"]):
        db.session.add(Lead(name="Left out"))
        with pytest.raises(PermissionDenied):
            db.session.flush()
        db.session.rollback()
        lead = Lead(name="Qualified", status="qualified")
        db.session.add(lead)
        db.session.flush()
        assert lead.status == "qualified"
        db.session.commit()
    assert _stored(Lead, name="Left out") is None


def test_a_default_in_a_read_only_field_is_not_the_members_doing(
        world: SimpleNamespace) -> None:
    """The default fills a field the member may not write; that is not writing it."""
    role = _member_with(world, "leads", {"field": "status", "op": "eq", "value": "lost"})
    with rbac.system():
        roles.set_field_rules(rbac, role, {"leads": {"status": "readonly"}})
        db.session.commit()
    with rbac.as_member(world.members["member"]):
        lead = Lead(name="Defaulted")
        db.session.add(lead)
        db.session.commit()
        assert lead.status == "new"
        db.session.add(Lead(name="Chosen", status="qualified"))
        with pytest.raises(PermissionDenied, match="status"):
            db.session.flush()
        db.session.rollback()
