"""What a member learns of records they may not view, and a workspace of another.

Each test is a path an outside review found naming what it should not: a
form's check that ran on any posted id, pages printing a shared record's
owner (a person of the sharing workspace), an upload's refusal quoting the
sharing workspace's plan, a shared write's audit event naming hidden
records, and who-could naming another workspace's invitees. SQLite and
PostgreSQL.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import Flask

from crm_app.campaigns.models import Campaign
from crm_app.extensions import db
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from tests.rbac_helpers import custom_role, give_role
from tests.test_sharing import agree, beta  # noqa: F401  (fixture)

#: People of Acme (the sharing workspace) whom Beta's pages must never name.
ACME_PEOPLE = ("Member2", "Junior Rep", "Manager")
PDF = b"%PDF-1.4\n% a tiny test document\n"


def text_of(response: Any) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.text)))


def test_the_invoice_form_tells_nothing_of_a_hidden_deal(world: SimpleNamespace,
                                                         login: Any) -> None:
    """Finance sees closed deals only: a hidden deal id is "not a valid choice", whatever
    client is posted with it, exactly as an id that does not exist."""
    hidden = world.deals["member-new"]
    with rbac.system():
        hidden.client_id = world.clients["member"].id
        db.session.commit()
    finance = login(world.users["finance"], world.ws)
    assert finance.get(f"/deals/{hidden.id}").status_code == 404

    def answer(deal_id: int, client_id: int | None) -> str:
        response = finance.post("/invoices/new", data={
            "number": "INV-P", "status": "draft", "amount": "1", "deal_id": str(deal_id),
            "client_id": "" if client_id is None else str(client_id)})
        assert response.status_code == 400
        found = re.search(r"Deal.*?(Not a valid choice|belongs to another client)",
                          text_of(response))
        return found.group(1) if found else ""

    answers = {answer(hidden.id, c) for c in (None, world.clients["member2"].id,
                                              world.clients["member"].id)}
    assert answers == {answer(999999, None)} == {"Not a valid choice"}


def test_pages_name_a_shared_records_owner_by_the_sharing_workspace(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:  # noqa: F811
    with rbac.system():
        db.session.add(Campaign(workspace_id=world.ws.id, owner_id=world.users["member2"].id,
                                name="Spring promo"))
        db.session.commit()
    agree(world, ["leads.view", "leads.edit", "campaigns.view"])
    client = login(beta.owner, world.ws2)
    lead = world.leads["member2"].id
    pages = {url: client.get(url) for url in (
        "/", "/leads/", f"/leads/{lead}", f"/leads/{lead}/edit", "/campaigns/",
        "/admin/leads/", f"/admin/leads/details/?id={lead}")}
    for url, response in pages.items():
        assert response.status_code == 200, url
        named = [n for n in ACME_PEOPLE if n in text_of(response)]
        assert named == [], (url, named)
    assert "Spring promo" in pages["/campaigns/"].text
    assert "Owned by Acme" in text_of(pages[f"/leads/{lead}/edit"])
    assert "Acme" in text_of(pages["/admin/leads/"])


def test_an_upload_to_a_shared_record_does_not_quote_the_sharing_workspaces_storage(
        app: Flask, world: SimpleNamespace, beta: SimpleNamespace, login: Any,  # noqa: F811
        tmp_path: Path) -> None:
    app.config["RBAC_FILES_DIR"] = str(tmp_path / "files")
    app.config["RBAC_FILES_QUOTA_BYTES"] = {world.ws.plan: len(PDF) + 10, "*": 10 ** 9}
    agree(world, ["leads.view", "leads.edit"])

    def upload(client: Any, lead_id: int) -> Any:
        return client.post(f"/leads/{lead_id}/attachments",
                           data={"file": (io.BytesIO(PDF), "x.pdf")},
                           content_type="multipart/form-data",
                           headers={"Accept": "application/json"})

    acme = login(world.users["owner"], world.ws)
    assert upload(acme, world.leads["member"].id).status_code == 201
    own = upload(acme, world.leads["member"].id)
    assert own.status_code == 409 and world.ws.plan in own.get_json()["message"]
    refused = upload(login(beta.owner, world.ws2), world.leads["member2"].id)
    message = refused.get_json()["message"]
    assert refused.status_code == 409 and refused.get_json()["field"] == "file"
    assert world.ws.plan not in message and not re.search(r"\d", message), message


def test_a_shared_write_is_named_to_a_narrow_reader_without_its_hidden_records(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:  # noqa: F811
    reader = custom_role(world, "Trail reader", [("settings", "view", "all"),
                                                ("settings", "export", "all")])
    give_role(world.members["junior_rep"], reader)
    db.session.commit()
    agree(world, ["leads.view", "leads.edit"])
    lead = world.leads["member2"]
    edited = login(beta.owner, world.ws2).post(f"/leads/{lead.id}/edit", data={
        "name": "Edited from Beta", "status": "qualified", "email": "", "source": "",
        "company": ""})
    assert edited.status_code == 302
    junior = login(world.users["junior_rep"], world.ws)
    assert junior.get(f"/leads/{lead.id}").status_code == 404
    for response in (junior.get("/settings/audit?action=shared.write"),
                     junior.get("/settings/audit.csv?action=shared.write"),
                     junior.get("/api/v1/audit?action=shared.write")):
        assert response.status_code == 200
        assert f"leads #{lead.id}" not in response.text and "a record you cannot see" in \
            response.text, response.text[:300]
    admin = login(world.users["admin"], world.ws)
    assert f"leads #{lead.id}" in admin.get("/settings/audit?action=shared.write").text


def test_who_could_names_no_invitee_of_the_workspace_it_was_shared_with(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:  # noqa: F811
    agree(world, ["leads.view"])
    invitee = User(email="secret.hire@beta.test", name="Secret Hire")
    invitee.password_hash = beta.owner.password_hash
    db.session.add(invitee)
    db.session.flush()
    workspaces.add_member(rbac, world.ws2, invitee, ["member"]).status = "pending"
    db.session.commit()
    admin = login(world.users["admin"], world.ws)
    page = admin.get(f"/settings/who-could?resource=leads&record={world.leads['member2'].id}")
    assert page.status_code == 200 and "Beta Viewer" in page.text  # the members who could
    assert "secret.hire@beta.test" not in page.text and "Secret Hire" not in page.text


#: Templates that print an owner themselves, each after asking whether the record is
#: shared (``shared_from``): the ``owner`` macro, and the detail page's ownership card.
OWNER_PRINTERS = {"_macros.html", "crud/detail.html"}


def test_no_template_prints_an_owner_but_through_the_owner_macro() -> None:
    """A new page that printed ``record.owner.name`` would name a shared record's owner,
    a person of the sharing workspace: pages use ``owner(record)`` from _macros.html."""
    root = Path(__file__).resolve().parents[2] / "templates"
    printing = sorted(
        f"{path.relative_to(root)}:{number}"
        for path in root.rglob("*.html") if str(path.relative_to(root)) not in OWNER_PRINTERS
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.owner\.(name|email)\b", line))
    assert printing == []
