"""API endpoints for sharing agreements between workspaces."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import jsonify, url_for
from flask.typing import ResponseReturnValue

from .. import sharing
from ..policy import Access
from ..proxies import current_rbac
from .blueprint import (
    bad,
    bp,
    check_keys,
    created,
    instant,
    json_body,
    not_found,
    require,
    string,
)

AGREEMENT_KEYS = frozenset({"workspace", "permissions", "notes", "expires_at"})


def _agreement_or_404(access: Access, agreement_id: int) -> Any:
    agreement = sharing.agreement_in(current_rbac, access.workspace_id, agreement_id)
    if agreement is None:
        raise not_found("sharing agreement")
    return agreement


def _agreement_changes(body: Mapping[str, Any], *, create: bool) -> dict[str, Any]:
    check_keys(body, AGREEMENT_KEYS if create else AGREEMENT_KEYS - {"workspace"})
    changes: dict[str, Any] = {}
    if create:
        ref = body.get("workspace")
        if ref is None:
            raise bad("workspace is required (the receiving workspace's slug or id)",
                       "workspace")
        if isinstance(ref, bool) or not isinstance(ref, (str, int)):
            raise bad("workspace must be a slug or an id", "workspace")
        changes["workspace"] = ref
        if "permissions" not in body:
            raise bad("permissions is required", "permissions")
    if "permissions" in body:
        changes["permissions"] = body["permissions"]
    if "notes" in body:
        changes["notes"] = string(body, "notes", nullable=True) or ""
    if "expires_at" in body:
        changes["expires_at"] = instant(body, "expires_at")
    return changes


@bp.get("/sharing")
def list_agreements() -> ResponseReturnValue:
    access = require("settings.view")
    rbac = current_rbac
    return jsonify(
        shared_by_you=[sharing.to_json(a) for a in
                       sharing.agreements(rbac, access.workspace_id, "granting")],
        shared_with_you=[sharing.to_json(a) for a in
                         sharing.agreements(rbac, access.workspace_id, "receiving")])


@bp.post("/sharing")
def create_agreement() -> ResponseReturnValue:
    access = require("settings.manage")
    changes = _agreement_changes(json_body(), create=True)
    rbac = current_rbac
    agreement = sharing.create_agreement(rbac, access, **changes)
    rbac.db.session.commit()
    return created(sharing.to_json(agreement),
                    url_for(".get_agreement", agreement_id=agreement.id))


@bp.get("/sharing/<int:agreement_id>")
def get_agreement(agreement_id: int) -> ResponseReturnValue:
    access = require("settings.view")
    return jsonify(sharing.to_json(_agreement_or_404(access, agreement_id)))


@bp.patch("/sharing/<int:agreement_id>")
def update_agreement(agreement_id: int) -> ResponseReturnValue:
    access = require("settings.manage")
    agreement = _agreement_or_404(access, agreement_id)
    changes = _agreement_changes(json_body(), create=False)
    rbac = current_rbac
    sharing.update_agreement(rbac, access, agreement, **changes)
    rbac.db.session.commit()
    return jsonify(sharing.to_json(agreement))


@bp.post("/sharing/<int:agreement_id>/<any(revoke, accept, decline, leave):verb>")
def end_agreement(agreement_id: int, verb: str) -> ResponseReturnValue:
    """revoke (granting side), accept, decline or leave (receiving side)."""
    access = require("settings.manage")
    agreement = _agreement_or_404(access, agreement_id)
    rbac = current_rbac
    sharing.ACTIONS[verb](rbac, access, agreement)
    rbac.db.session.commit()
    return jsonify(sharing.to_json(agreement))
