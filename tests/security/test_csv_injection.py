"""CSV injection sweep: no cell of any CSV the app serves can run as a spreadsheet formula.

Every text column of every CRM record, an owner's email and an audit event
are seeded with values starting with each character of
:data:`crm_rbac_plugin.csvsafe.FORMULA_STARTS` (and a space before ``=``).
The CSV routes are found in ``app.url_map``, never listed by hand: every
``GET`` route the Owner can request (Flask-Admin's ``<export_type>`` filled
with ``csv``) whose answer is ``text/csv``. Every cell of every one of them
must be neutralised (``'`` in front) or be a plain number.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.accounting.models import Invoice
from crm_app.extensions import db
from crm_app.models import Client, Deal, Lead, Note, Task, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import csvsafe, workspaces
from crm_rbac_plugin.certification import runs as certification_runs
from crm_rbac_plugin.csvsafe import FORMULA_STARTS
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

#: How the seeded values start: each formula character, and one after a space.
PREFIXES = (*sorted(FORMULA_STARTS), " =")

#: Values for URL arguments of CSV routes (Flask-Admin's export type).
ARGUMENTS = {"export_type": "csv"}

NUMBER = re.compile(r"-?\d+(\.\d+)?")


def seed_formulas(world: SimpleNamespace) -> int:
    """Records of every CRM model whose text columns all start with a formula character,
    and a certification run listing their owner; return the run's id."""
    with rbac.system():
        evil = User(email="=evil@example.test", name="=Evil", password_hash="x")
        db.session.add(evil)
        db.session.flush()
        workspaces.add_member(rbac, world.ws, evil, ["viewer"])  # for the members export
        for n, prefix in enumerate(PREFIXES):
            for model in (Client, Lead, Deal, Task, Note, Invoice):
                record: Any = model(workspace_id=world.ws.id, owner_id=evil.id)
                for column in sa.inspect(model).columns:
                    if isinstance(column.type, sa.String) and not column.foreign_keys:
                        setattr(record, column.key, f"{prefix}SUM({n})"[:20])
                db.session.add(record)
        db.session.flush()
        client = db.session.scalars(sa.select(Client).where(Client.name.startswith("=")))
        first = client.first()
        for deal in db.session.scalars(sa.select(Deal).where(Deal.owner_id == evil.id)):
            deal.client_id = first.id if first else None
        rbac.audit("note", workspace_id=world.ws.id, resource="leads",
                   target='=HYPERLINK("http://evil.example")', before={"x": "-1"})
        db.session.commit()
    # A certification run listing =Evil (who may view deals), for its report's CSV.
    owner = rbac.access_for(world.members["owner"])
    with rbac.as_member(owner):
        run_id = certification_runs.start_run(rbac, owner, "deals").id
        db.session.commit()
    return int(run_id)


def csv_routes(app: Flask, client: Any, arguments: dict[str, Any]) -> dict[str, str]:
    """Request every argument-free (or fillable) GET route; keep the CSV answers by path."""
    found: dict[str, str] = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.endpoint.endswith("static"):
            continue
        if not set(rule.arguments) <= set(arguments):
            continue
        path = rule.build({k: arguments[k] for k in rule.arguments}, append_unknown=False)[1]
        response = client.get(path)
        if response.mimetype == "text/csv":
            assert response.status_code == 200, path
            found[path] = response.get_data(as_text=True)
    return found


def unescaped(text: str) -> list[str]:
    """The cells of a CSV that a spreadsheet would run as a formula."""
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row
            if (cell[:1] in FORMULA_STARTS or cell.lstrip()[:1] in FORMULA_STARTS)
            and not NUMBER.fullmatch(cell)]


def neutralised(text: str) -> int:
    """How many cells carry a neutralised formula (the seeded values reached this CSV)."""
    return sum(1 for row in csv.reader(io.StringIO(text)) for cell in row
               if cell[:1] == "'" and (cell[1:2] in FORMULA_STARTS
                                       or cell[1:].lstrip()[:1] in FORMULA_STARTS))


def test_no_csv_cell_runs_as_a_formula(app: Flask, world: SimpleNamespace,
                                       login: Any) -> None:
    run_id = seed_formulas(world)
    owner = login(world.users["owner"], world.ws)
    found = csv_routes(app, owner, {**ARGUMENTS, "run_id": run_id})
    # The sweep reaches the demo's exports, Flask-Admin's and the audit trail's.
    assert {p for p in found if p.endswith("/export.csv")} >= {
        f"/{r}/export.csv" for r in ("leads", "deals", "clients", "tasks")}
    assert {p for p in found if p.startswith("/admin/")} >= {
        f"/admin/{r}/export/csv/" for r in ("leads", "deals", "clients", "tasks")}
    assert any(p.endswith("/audit.csv") for p in found)
    assert any(p.endswith("/report.csv") for p in found)
    for path, text in found.items():
        assert unescaped(text) == [], path
        assert neutralised(text) > 0, path


def test_safe_cell_rule() -> None:
    """The rule itself: text is prefixed, numbers and dates are not, the prefix is idempotent."""
    for prefix in PREFIXES:
        assert csvsafe.safe_cell(f"{prefix}1+1") == f"'{prefix}1+1"
    assert csvsafe.safe_cell("'=1+1") == "'=1+1"  # already neutralised: unchanged
    assert csvsafe.safe_cell("Acme") == "Acme" and csvsafe.safe_cell(None) == ""
    assert csvsafe.safe_cell(Decimal("-12.50")) == Decimal("-12.50")
    assert csvsafe.safe_cell(-3) == -3 and csvsafe.safe_cell(True) == "True"
    assert csvsafe.safe_cell(dt.date(2026, 1, 2)) == dt.date(2026, 1, 2)
    out = io.StringIO()
    csvsafe.writer(out).writerow(["=cmd", "-2", Decimal("-2"), "\r\n@x"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'=cmd", "'-2", "-2", "'\r\n@x"]
