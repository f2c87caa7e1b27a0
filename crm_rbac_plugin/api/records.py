"""API endpoints for protected records: read only, filtered and with hidden fields left out.

Column values are written by :mod:`.values` (the host's ``@rbac.field_serializer``
first), so no column type answers a 500.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import jsonify, request
from flask.typing import ResponseReturnValue

from .. import inputs
from ..decorators import by_primary_key
from ..inputs import typed_key
from ..policy import Access
from ..proxies import current_rbac
from .blueprint import ApiError, bp, not_found, require
from .values import Encoder


def _record_json(resource: str, record: Any, access: Access, encoder: Encoder) -> dict[str, Any]:
    """A record's columns without the fields hidden from the member, as JSON values."""
    return {key: encoder.field(key, value)
            for key, value in current_rbac.redact(resource, record, access=access).items()}


def _model_resource(resource: str) -> Any:
    rbac = current_rbac
    if resource not in rbac.registry or rbac.registry.get(resource).model is None:
        raise ApiError(404, "not_found", f"No resource named {resource!r}.")
    return rbac.registry.get(resource)


@bp.get("/records/<resource>")
def list_records(resource: str) -> ResponseReturnValue:
    """One page of the records the member may view (``?page=``, ``?per_page=`` ≤ 100)."""
    res = _model_resource(resource)
    access = require(f"{resource}.view")
    per_page = inputs.whole_number(request.args, "per_page", 50, 1, 100)
    page = inputs.whole_number(request.args, "page", 1, 1, inputs.MAX_ID // per_page)
    pk = sa.inspect(res.model).primary_key[0]
    rows = current_rbac.db.session.scalars(
        sa.select(res.model).order_by(pk).limit(per_page).offset((page - 1) * per_page)).all()
    encoder = Encoder(current_rbac.hooks.field_serializer, resource)
    return jsonify(items=[_record_json(resource, r, access, encoder) for r in rows], page=page,
                   per_page=per_page)


@bp.get("/records/<resource>/<record_id>")
def get_record(resource: str, record_id: str) -> ResponseReturnValue:
    """One record the member may view; any other id is a 404 (no existence leak).

    The id is read as the model's key type: an integer, a UUID, a text key.
    """
    res = _model_resource(resource)
    access = require(f"{resource}.view")
    pk_type, statement = by_primary_key(res.model)
    ident = typed_key(pk_type, record_id)
    record = None if ident is None else current_rbac.db.session.execute(
        statement, {"rbac_ident": ident}).scalar_one_or_none()
    if record is None:
        raise not_found(f"{resource} record")
    return jsonify(_record_json(resource, record, access,
                                Encoder(current_rbac.hooks.field_serializer, resource)))
