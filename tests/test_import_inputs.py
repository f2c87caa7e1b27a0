"""What an import reads: wide files, odd file names, owner cells, the demo's own exports.

Every test runs on SQLite and PostgreSQL (the ``app`` fixture), through the
import pages as the members of the seeded world.
"""

from __future__ import annotations

import io
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.imports.models import ImportJob
from crm_app.models import Client, Deal
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import imports
from crm_rbac_plugin.errors import ValidationError
from tests.test_imports import (
    importer_role,
    names,
    progress_dir,  # noqa: F401  (autouse fixture)
    upload,
)


def staged_jobs() -> int:
    with rbac.system():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) or 0)


def test_a_file_wider_than_the_column_cap_is_refused_naming_the_line(
        world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    wide_header = "Name," + ",".join(f"c{i}" for i in range(200)) + "\nX\n"
    response = upload(admin, "leads", wide_header)
    assert response.status_code == 400
    assert "Line 1 has 201 columns; at most 100 may be imported." in response.text
    wide_row = "Name\nA\nB" + "," * 150 + "\n"
    response = upload(admin, "leads", wide_row)
    assert response.status_code == 400 and "Line 3 has 151 columns" in response.text
    assert staged_jobs() == 0


def test_read_csv_counts_columns_before_keeping_a_row() -> None:
    with pytest.raises(ValidationError, match="Line 2 has 3 columns; at most 2"):
        imports.read_csv(b"Name,Company\na,b,c\n", max_rows=10, max_columns=2)
    header, rows = imports.read_csv(b"Name,Company\na,b\n", max_rows=10, max_columns=2)
    assert header == ["Name", "Company"] and rows == [["a", "b"]]


@pytest.mark.parametrize("filename", ["a\x00.csv", "a\x1b[31m.csv"])
def test_a_file_name_with_control_characters_is_a_400_naming_the_file(
        world: SimpleNamespace, login: Any, filename: str) -> None:
    admin = login(world.users["admin"], world.ws)
    response = upload(admin, "leads", "Name\nA\n", filename=filename)
    assert response.status_code == 400
    assert 'data-import-error="file"' in response.text
    assert "control characters" in response.text
    assert staged_jobs() == 0


def test_an_importer_without_manage_learns_nothing_about_membership(
        world: SimpleNamespace, login: Any) -> None:
    """Every owner cell but the importer's own gets one answer, member or not."""
    importer_role(world, "member", "leads")
    member = login(world.users["member"], world.ws)
    assert member.get("/settings/members").status_code == 403
    others = ["admin@example.test", "nobody@example.test", "outsider@example.test", "Admin",
              "Nobody At All"]
    text = "Name,Owner\n" + "".join(f"T{i},{owner}\n" for i, owner in enumerate(others))
    upload(member, "leads", text + "Mine,member@example.test\nAlso mine,Member\n")
    preview = member.get("/imports/leads").text
    assert f'data-rows="{len(others) + 2}" data-errors="{len(others)}"' in preview
    assert preview.count("Owner: you may only import records you own") == len(others)
    assert "is not a member" not in preview


def test_the_demos_client_export_imports_back(world: SimpleNamespace, login: Any) -> None:
    """Phones keep the export's formula guard ('+...), owners are named, "Unassigned" is none."""
    with rbac.system():
        for client in world.clients.values():
            db.session.get(Client, client.id).phone = "+1 555 4193"
        db.session.commit()
    admin = login(world.users["admin"], world.ws)
    exported = admin.get("/clients/export.csv").data
    assert b"'+1 555 4193" in exported and b"Unassigned" in exported
    before = {c.name: c for c in names(Client).values()}
    assert upload(admin, "clients", exported).status_code == 302
    preview = admin.get("/imports/clients").text
    assert 'data-rows="5" data-errors="0"' in preview, preview[preview.find("import-errors"):][:600]
    assert admin.post("/imports/clients/commit").status_code == 302
    with rbac.system():
        copies = db.session.scalars(sa.select(Client).where(Client.id.notin_(
            [c.id for c in before.values()]))).all()
    assert sorted(c.name for c in copies) == sorted(c.name for c in world.clients.values())
    assert {c.phone for c in copies} == {"+1 555 4193"}
    owners = {c.name: c.owner_id for c in copies}
    assert owners["Client of member"] == world.users["member"].id
    assert owners["Client of unowned"] == world.users["admin"].id  # an empty owner: the importer


def test_the_demos_deal_export_maps_its_deal_column_to_the_title(
        world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    exported = owner.get("/deals/export.csv").data
    assert exported.startswith(b"ID,Deal,")
    upload(owner, "deals", io.BytesIO(exported).read())
    preview = owner.get("/imports/deals").text
    assert 'data-rows="10" data-errors="0"' in preview
    assert owner.post("/imports/deals/commit").status_code == 302
    assert len(names(Deal, "title")) == 10  # the copies carry the same titles
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Deal).where(
            Deal.workspace_id == world.ws.id)) == 20
