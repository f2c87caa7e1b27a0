"""View-as decides on the viewer's capped access even when their Access is warm."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.security.test_view_as import assert_refused, start


def test_a_visibility_level_narrows_a_viewer_whose_access_is_warm(
        world: SimpleNamespace, login: Any) -> None:
    """The Admin's lists read their rules before they ask to view as the Viewer."""
    with rbac.system():
        world.members["admin"].visibility = "own"
        db.session.commit()
    admin = login(world.users["admin"], world.ws)
    for page in ("/leads/", "/deals/", "/clients/", "/tasks/"):
        assert admin.get(page).status_code == 200
    assert_refused(start(admin, world, "viewer"), admin, "wider")
