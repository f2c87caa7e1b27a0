"""The plugin's tables as an Alembic branch, ``rbac``, that a host's migrations include.

The revisions live in ``versions/`` next to this module, with the branch
label ``rbac``. A Flask-Migrate host adds them to its own version locations
with one line, ``migrate.configure(include_branch)``, or in its
``migrations/alembic.ini``::

    path_separator = space
    version_locations = %(here)s/versions crm_rbac_plugin:migrations/versions

The branch creates the tables :func:`crm_rbac_plugin.models.define_models`
defines, with every constraint named as the models name it. Its foreign keys
to the host's users point at the primary key of ``rbac.user_model`` on the
current app, so the first revision runs once the host's user table exists:
a fresh database upgrades the host's own branch first, then ``rbac@head``.

This module imports neither Alembic nor Flask-Migrate, which stay an optional
extra (``crm-rbac[migrations]``); the revisions import Alembic when Alembic
loads them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..models.base import user_pk_of
from ..proxies import get_rbac

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["BRANCH", "include_branch", "require_user_table", "user_key", "version_location"]

#: The branch label of the plugin's revisions: ``flask db upgrade rbac@head``.
BRANCH = "rbac"


def version_location() -> str:
    """Return the directory holding the plugin's revisions, for ``version_locations``."""
    return str(Path(__file__).resolve().parent / "versions")


def include_branch(config: Config) -> Config:
    """Add the plugin's revisions to an Alembic config's version locations.

    A Flask-Migrate configure callback: ``migrate.configure(include_branch)``.
    The host's own locations stay first (``<script_location>/versions``
    unless ``version_locations`` names others). Locations are joined by
    newlines, so a path with spaces stays whole.
    """
    locations = config.get_version_locations_list() or [
        f"{config.get_main_option('script_location')}/versions"]
    if version_location() not in locations:
        locations.append(version_location())
    config.set_main_option("path_separator", "newline")
    config.set_main_option("version_locations", "\n".join(locations).replace("%", "%%"))
    return config


def user_key() -> Any:
    """Return the host's user key column: the primary key of ``rbac.user_model``.

    Read from the extension on the current app at migration time, because
    the user table's name and key type belong to the host.
    """
    return user_pk_of(get_rbac().user_model)


def require_user_table(bind: sa.engine.Connection, table: str) -> None:
    """Stop with a clear message when the host's user table does not exist yet."""
    if not sa.inspect(bind).has_table(table):
        raise RuntimeError(
            f"the rbac branch points at the user table {table!r}, which does not exist yet: "
            f"upgrade your own migrations first, then run `flask db upgrade {BRANCH}@head`")
