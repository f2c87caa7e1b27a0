"""Register the import pages, their model and the list pages' "Import CSV" link."""

from __future__ import annotations

from flask import Flask, url_for

from crm_rbac_plugin import imports

from .. import bodies
from ..rbac_setup import rbac
from . import models as models  # noqa: F401  (the staged-import table joins the metadata)
from .fields import FIELDS
from .views import bp


def import_url(resource: str) -> str | None:
    """The import page of ``resource`` if the member may import into it, else None."""
    if resource not in FIELDS:
        return None
    if not (rbac.can(imports.IMPORT, resource) and rbac.can("create", resource)):
        return None
    return url_for("imports.show", resource=resource)


def init_app(app: Flask) -> None:
    """Mount the import pages at /imports/<resource>."""
    app.register_blueprint(bp)
    # Checked before the CSRF check parses the form (crm_app.bodies).
    bodies.upload_limit("imports.upload", lambda: rbac.config("RBAC_IMPORT_MAX_BYTES"))
    app.context_processor(lambda: {"import_url": import_url})
