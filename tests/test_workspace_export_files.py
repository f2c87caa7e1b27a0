"""The workspace's full export carries its attachments' bytes (the purge deletes them).

Every test runs on SQLite and PostgreSQL; stored bytes go to the test's
temporary directory.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from flask import Flask

PDF = b"%PDF-1.4\n% the contract\n"


def attach(client: Any, resource: str, record_id: int, data: bytes, name: str) -> int:
    response = client.post(f"/{resource}/{record_id}/attachments",
                           data={"file": (io.BytesIO(data), name)},
                           content_type="multipart/form-data",
                           headers={"Accept": "application/json"})
    assert response.status_code == 201, response.get_data(as_text=True)
    return int(response.get_json()["id"])


def test_the_export_holds_every_attachments_bytes(app: Flask, world: SimpleNamespace,
                                                   login: Any, tmp_path: Path) -> None:
    app.config["RBAC_FILES_DIR"] = str(tmp_path / "files")
    owner = login(world.users["owner"], world.ws)
    text_id = attach(owner, "clients", world.clients["member"].id, b"acme internal",
                     "acme-north.txt")
    pdf_id = attach(owner, "leads", world.leads["member2"].id, PDF, "契約書.pdf")
    gone_id = attach(owner, "leads", world.leads["member"].id, b"lost bytes", "lost.txt")
    (lost,) = [Path(folder) / name for folder, _, names in os.walk(tmp_path / "files")
               for name in names if (Path(folder) / name).read_bytes() == b"lost bytes"]
    lost.unlink()  # a storage restored from an older backup
    other = login(world.users["dual"], world.ws2)
    attach(other, "clients", world.other["client"].id, b"beta only", "beta.txt")
    for url in ("/settings/lifecycle/export", "/api/v1/workspace/export"):
        response = owner.get(url)
        assert response.status_code == 200
        with zipfile.ZipFile(io.BytesIO(response.data)) as archive:
            files = {name: archive.read(name) for name in archive.namelist()
                     if name.startswith("files/")}
            document = json.loads(archive.read("workspace.json"))
        assert files == {f"files/{text_id}-acme-north.txt": b"acme internal",
                         f"files/{pdf_id}-契約書.pdf": PDF}
        assert document["missing_files"] == [gone_id]
