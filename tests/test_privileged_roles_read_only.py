"""An Admin opens the built-in Owner and Admin roles read-only: the Edit link of the
role list leads to the page (200), never to a 403, and a save is still refused."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import form_values, policy_snapshot, role


@pytest.mark.parametrize("key", ["owner", "admin"])
def test_an_admin_views_the_privileged_roles_read_only(world: SimpleNamespace, login: Any,
                                                       key: str) -> None:
    client = login(world.users["admin"], world.ws)
    url = f"/settings/roles/{role(world, key).id}/edit"
    listing = client.get("/settings/roles").text
    assert f'href="{url}"' in listing, "the role list links the built-in role"
    link = re.search(rf'href="{re.escape(url)}"[^>]*>([^<]+)<', listing)
    assert link is not None and link.group(1).strip() in ("View", "Edit")
    page = client.get(url)
    assert page.status_code == 200
    assert "Built-in role: its permissions cannot be changed" in page.text
    assert '<fieldset class="rbac-role-fieldset" disabled>' in page.text
    before = policy_snapshot()
    refused = client.post(url, data={**form_values(page.text), "step": "save"})
    assert refused.status_code == 403 and "always has full access" in refused.text
    assert policy_snapshot() == before
