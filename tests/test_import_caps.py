"""A record cap of the importer's roles meets an import before its first row is written.

The preview says so (with what the member owns and what the import adds), the
Import button is off, and a commit is a 409 with the same figures, however the
rows are chunked. Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from tests.test_imports import (
    count,
    importer_role,
    progress_dir,  # noqa: F401  (autouse fixture)
    upload,
)

REFUSAL = ("Your role allows at most 5 leads record(s) per member; you own 1 and this adds 6: "
           "import at most 4, hand some over or ask for a higher cap.")


def test_a_capped_import_is_refused_up_front_with_the_members_figures(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    app.config["RBAC_IMPORT_CHUNK_ROWS"] = 2  # the cap is passed in the third chunk
    role = importer_role(world, "member", "leads")
    with rbac.system():
        db.session.add(rbac.models.RoleQuota(role=role, resource="leads", max_records=5))
        db.session.commit()
    member = login(world.users["member"], world.ws)
    before = count(Lead)
    upload(member, "leads", "Name\n" + "".join(f"Capped {i}\n" for i in range(6)))
    preview = member.get("/imports/leads").text
    assert REFUSAL in preview and "data-import-refusal" in preview
    assert 'data-import-start="" disabled' in preview or "disabled data-import-start" in preview
    done = member.post("/imports/leads/commit", headers={"Accept": "application/json"})
    assert done.status_code == 409
    assert done.json == {"error": REFUSAL, "field": "leads.max_records"}
    assert count(Lead) == before
    upload(member, "leads", "Name\n" + "".join(f"Fits {i}\n" for i in range(4)))
    assert "data-import-refusal" not in member.get("/imports/leads").text
    assert member.post("/imports/leads/commit").status_code == 302
    assert count(Lead) == before + 4
