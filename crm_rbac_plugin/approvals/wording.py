"""A request's payload in words, for the approval page: what exactly would change.

The approver decides on the change itself, so the page shows every part of
the payload the API returns: a settings change's fields each as "before →
after", the member and role of an assignment with its start, end and
condition, the record ids of a delete or a reassignment, an export's rows.
A key without a wording of its own is shown as its JSON value, never left
out. ``role_grants`` (a digest the replay compares) is shown as the role's
grants now, which is what the digest stands for.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import role_conditions
from ..loader import BYPASS
from ..roles import effective_specs

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The longest value shown for one key; the API carries the whole of it.
SHOWN = 400
LABELS = {"membership_id": "Member", "role_id": "Role", "starts_at": "Starts",
          "expires_at": "Ends", "condition": "When it applies", "ids": "Record ids",
          "resource": "Resource", "resources": "Resources", "from_user_id": "From user",
          "to_user_id": "To user", "move_to_id": "Members move to role", "query": "Filters",
          "via": "Export path"}


def _text(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= SHOWN else text[:SHOWN] + "…"


def _role_words(rbac: RBACProtocol, workspace_id: int, role_id: Any) -> tuple[str, str]:
    R = rbac.models.Role
    role = rbac.db.session.scalar(sa.select(R).where(R.id == role_id, R.workspace_id ==
                                                     workspace_id), execution_options=BYPASS) \
        if isinstance(role_id, int) and not isinstance(role_id, bool) else None
    if role is None:
        return f"#{role_id} (no longer exists)", ""
    if role.is_owner or (role.builtin and role.key == "admin"):
        return f"{role.name} (#{role.id})", "everything (full access)"
    grants = sorted(f"{'deny ' if s.effect == 'deny' else ''}{s.permission} ({s.scope})"
                    for s in effective_specs(role))
    return f"{role.name} (#{role.id})", ", ".join(grants) or "nothing"


def describe(rbac: RBACProtocol, req: Any, names: Mapping[int, str],
             timezone: str | None = None) -> list[tuple[str, str]]:
    """``(label, words)`` for each part of ``req.payload``, in the payload's order."""
    payload = req.payload if isinstance(req.payload, Mapping) else {}
    out: list[tuple[str, str]] = []
    for key, value in payload.items():
        if key == "role_grants":
            continue
        if key == "fields" and isinstance(value, Mapping):
            for name, change in value.items():
                if isinstance(change, Mapping):
                    out.append((f"Change {name}", f"{_text(change.get('before'))} → "
                                                  f"{_text(change.get('after'))}"))
                else:
                    out.append((f"Change {name}", _text(change)))
        elif key == "membership_id":
            out.append(("Member", f"{names.get(value, 'a former member')} (#{value})"))
        elif key == "role_id":
            role, grants = _role_words(rbac, req.workspace_id, value)
            out.append(("Role", role))
            if grants:
                out.append(("The role grants now", grants))
        elif key == "condition":
            words = role_conditions.describe(role_conditions.stored(value), timezone) \
                if value else ""
            out.append(("When it applies", words or "always"))
        elif key in ("starts_at", "expires_at") and not value:
            out.append((LABELS[key], "now" if key == "starts_at" else "never"))
        else:
            out.append((LABELS.get(key, key), _text(value)))
    return out
