"""Helpers shared by the policy, query-filter and write-guard tests.

Every check of a record-level expectation goes through :func:`allowed_tags`,
which asks the same question twice, once of the pure policy
(``rbac.can(..., access=...)``) and once of the query filter (a filtered
``select``), and fails if the two answers differ before the caller compares
them with the expected table.

Import :func:`fast_passwords` into a test module to make it autouse there::

    from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
"""

from __future__ import annotations

import functools
import io
import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.security import generate_password_hash
from werkzeug.test import encode_multipart

from crm_app.extensions import db, login_manager
from crm_app.models import Client, Deal, Lead, Note, Task, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import Access, conditions, workspaces

#: The protected models of the demo CRM, by resource name.
MODELS: dict[str, type] = {"leads": Lead, "deals": Deal, "clients": Client, "tasks": Task,
                           "notes": Note}

#: Actions whose record-level decision the tables check (letters V, E, D).
RECORD_ACTIONS: dict[str, str] = {"view": "V", "edit": "E", "delete": "D"}


@pytest.fixture(autouse=True)
def fast_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash the world's passwords with one PBKDF2 round instead of scrypt.

    ``build_world`` hashes eleven passwords; with the default scrypt that is
    most of its ~0.8 s, which the table tests would pay hundreds of times.
    """
    monkeypatch.setattr("crm_app.models.generate_password_hash",
                        functools.partial(generate_password_hash, method="pbkdf2:sha256:1"))


def ensure_user_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give Flask-Login a user loader for this test if the demo app has none yet."""
    if login_manager._user_callback is None:
        monkeypatch.setattr(login_manager, "_user_callback",
                            lambda ident: db.session.get(User, int(ident)))


def world_records(w: SimpleNamespace) -> dict[str, dict[str, Any]]:
    """Return the world's records by resource and tag; workspace 2's are tagged ``ws2``."""
    return {
        "leads": {**w.leads, "ws2": w.other["lead"]},
        "deals": dict(w.deals),
        "clients": {**w.clients, "ws2": w.other["client"]},
        "tasks": dict(w.tasks),
        "notes": dict(w.notes),
    }


def access_of(membership: Any) -> Access:
    """Return the effective access of a membership, failing if it has none."""
    access = rbac.access_for(membership)
    assert access is not None, f"no access for membership {membership!r}"
    return access


def filtered_ids(model: type, action: str = "view") -> set[int]:
    """Return the ids a filtered ``select(model)`` yields in the current context."""
    stmt = sa.select(model)
    if action != "view":
        stmt = stmt.execution_options(rbac_action=action)
    return {obj.id for obj in db.session.scalars(stmt)}


def allowed_tags(membership: Any, resource: str, action: str,
                 records: dict[str, Any]) -> set[str]:
    """Return the tags of ``records`` the member may ``action``, by policy and by filter.

    Fails when ``rbac.can`` and the filtered select disagree on any record.
    """
    access = access_of(membership)
    by_policy = {tag for tag, rec in records.items()
                 if rbac.can(action, resource, rec, access=access)}
    with rbac.as_member(access):
        ids = filtered_ids(MODELS[resource], action)
    by_filter = {tag for tag, rec in records.items() if rec.id in ids}
    assert by_policy == by_filter, (
        f"{resource}.{action}: policy allows {sorted(by_policy)} "
        f"but the filter returns {sorted(by_filter)}")
    return by_policy


def record_table(membership: Any, records: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Return {resource: {tag: "VED"-letters}} for one member, checked for agreement."""
    table: dict[str, dict[str, str]] = {res: dict.fromkeys(recs, "") for res, recs in
                                        records.items()}
    for res, recs in records.items():
        for action, letter in RECORD_ACTIONS.items():
            for tag in allowed_tags(membership, res, action, recs):
                table[res][tag] += letter
    return table


def custom_role(w: SimpleNamespace, name: str,
                grants: list[tuple[str, str, str]] | tuple[tuple[str, str, str], ...] = (),
                *, parent: Any = None, workspace: Any = None, effect: str = "allow",
                condition: Any = None) -> Any:
    """Create and flush a custom role with ``(resource, action, scope)`` grants."""
    ws = workspace if workspace is not None else w.ws
    role = rbac.models.Role(workspace=ws, name=name, parent=parent)
    for resource, action, scope in grants:
        workspaces.add_grant(rbac, role, resource, action, scope, effect=effect,
                             condition=condition)
    db.session.add(role)
    db.session.flush()
    return role


def give_role(membership: Any, role: Any, **window: Any) -> Any:
    """Assign ``role`` to ``membership`` (optionally time-limited) and flush."""
    assignment = workspaces.assign_role(rbac, membership, role, **window)
    db.session.flush()
    return assignment


def remove_roles(membership: Any) -> None:
    """Take every role away from ``membership`` and flush."""
    for mr in list(membership.member_roles):
        db.session.delete(mr)
    db.session.flush()


def policy_version(workspace: Any) -> int:
    """Return the workspace's policy version as stored (not the loaded attribute)."""
    W = rbac.models.Workspace
    return int(db.session.scalar(sa.select(W.policy_version).where(W.id == workspace.id)))


def stored_values(model: type, column: str = "name") -> set[Any]:
    """Return every value of ``column`` of ``model`` as stored, in the system context."""
    with rbac.system():
        return set(db.session.scalars(sa.select(getattr(model, column))))


def matching_three_ways(model: type, records: dict[Any, Any], clauses: Any,
                        ) -> tuple[set[Any], set[Any], set[Any]]:
    """Return the tags of ``records`` that ``clauses`` match: in Python, in SQL,
    and as the complement of ``NOT(SQL)`` (all three must agree)."""
    ids = {record.id: tag for tag, record in records.items()}
    with rbac.system():
        by_python = {tag for tag, r in records.items() if conditions.matches(r, clauses)}
        in_ids = model.id.in_(ids)  # type: ignore[attr-defined]
        by_sql = {ids[i] for i in db.session.scalars(
            sa.select(model.id).where(in_ids, conditions.to_sql(model, clauses)))}  # type: ignore[attr-defined]
        negated = set(records) - {ids[i] for i in db.session.scalars(
            sa.select(model.id).where(in_ids, sa.not_(conditions.to_sql(model, clauses))))}  # type: ignore[attr-defined]
    return by_python, by_sql, negated


#: Test-client keywords that send ``input_stream`` as a chunked upload: no
#: Content-Length, a stream the server ends (as gunicorn and Werkzeug's server pass it).
CHUNKED: dict[str, Any] = {"headers": {"Transfer-Encoding": "chunked"},
                           "environ_overrides": {"wsgi.input_terminated": True,
                                                 "CONTENT_LENGTH": ""}}


def multipart(fields: dict[str, Any]) -> dict[str, Any]:
    """Test-client keywords posting ``fields`` as multipart/form-data, a ``(bytes, name)``
    value as a file. The body is encoded here: for a body over 500 KB, the test client's
    own encoding spools it to a temporary file it never closes."""
    values = {k: FileStorage(io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v
              for k, v in fields.items()}
    boundary, body = encode_multipart(values)
    return {"input_stream": io.BytesIO(body), "content_length": len(body),
            "content_type": f"multipart/form-data; boundary={boundary}"}


def ask_for_approval(client: Any, url: str, reason: str = "") -> Any:
    """GET ``url``, an operation over the workspace's approval threshold: it records
    nothing and offers to ask (a form); then ask with ``reason``. Returns the
    answer to the POST (303 to the request's page)."""
    offer = client.get(url)
    assert offer.status_code == 200 and "data-rbac-approval-required" in offer.text, \
        offer.text[:300]
    found = re.search(r'name="token" value="([^"]+)"', offer.text)
    assert found is not None, offer.text[:300]
    return client.post("/settings/approvals/ask", data={"token": found.group(1),
                                                         "reason": reason})


def approved_leads_export(w: SimpleNamespace, login: Any) -> tuple[Any, Any]:
    """With every export needing approval, the Manager asks for the leads CSV and the
    Admin approves it; return the Manager's client and the request, ready to download."""
    from crm_rbac_plugin import approvals
    approvals.save(rbac, access_of(w.members["owner"]), {"operations": {"export": 1}})
    db.session.commit()
    manager, admin = login(w.users["manager"], w.ws), login(w.users["admin"], w.ws)
    assert ask_for_approval(manager, "/leads/export.csv", "review").status_code == 303
    R = rbac.models.ApprovalRequest
    req = db.session.scalar(sa.select(R).order_by(R.id.desc()))
    assert admin.post(f"/settings/approvals/{req.id}/approve",
                      data={"reason": "ok"}).status_code == 302
    return manager, req
