"""Fixtures and helpers of the attack battery (``tests/security``).

What is here, for every module of the package to use:

* :func:`security_world` (fixture): the shared ``world`` of ``tests/conftest.py``
  plus the plugin objects an attacker could aim at in *both* workspaces (a
  custom role pair with a segregation-of-duties conflict, a spare custom role,
  a department, a pending invitation, an API token per active member, a
  manager link in the second workspace), and plain-data views of all of it:
  ``w.objects[workspace_id][kind]`` lists :class:`Obj` (id, workspace, secret
  text, label) and ``w.probers`` the members who attack (:class:`Prober`).
* :func:`snapshot_database` / :func:`snapshot_diff`: every table's rows,
  minus the documented exclusions (:data:`EXCLUDED_TABLES`,
  :data:`EXCLUDED_COLUMNS`), to prove a refused request changed nothing.
* Route classification from ``app.url_map``: :func:`id_argument_kind` names
  the kind of object a URL argument identifies, failing loudly for an
  argument it does not know (so a new route is never silently skipped);
  :func:`admin_panels` lists the Flask-Admin model views and what their
  ``?id=`` names.
* :func:`~tests.battery_stats.probe_stats` (fixture, loaded for the whole
  suite by ``tests/conftest.py``): counters shown at the end of the run
  ("IDOR probes: N, leaks: 0" ...), summed over xdist workers.
* :func:`csrf_app` / :func:`csrf_login` (fixtures): the demo app with
  ``WTF_CSRF_ENABLED=True`` and a login helper for it.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.routing import Rule

from crm_app.accounting.models import Invoice
from crm_app.campaigns.models import Campaign
from crm_app.extensions import db
from crm_app.models import Lead, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import Access, approvals, gate, roles, sharing, team, tokens, workspaces
from crm_rbac_plugin.certification import runs as certification_runs
from crm_rbac_plugin.notify import queue as notify_queue
from tests.conftest import app_with_tables, build_world
from tests.rbac_helpers import custom_role, world_records

# -- the world, as data ------------------------------------------------------------------


@dataclass(frozen=True)
class Obj:
    """One object an id in a URL can name, as plain data (safe after any rollback).

    ``secret`` is a text only this object's pages would show (a record's
    name, a custom role's name, an invitee's email); None when no such
    distinctive text exists (a built-in role called "Admin" is in every
    workspace), in which case only the status of a probe is checked.
    """

    kind: str
    id: int
    workspace_id: int
    secret: str | None
    label: str


@dataclass
class Prober:
    """A member attacking from their current workspace (``workspace_id``)."""

    key: str
    user: Any
    workspace: Any
    membership: Any
    access: Access
    token: str  # plaintext personal API token of this membership

    @property
    def workspace_id(self) -> int:
        return int(self.workspace.id)

    def can(self, action: str, resource: str, record: Any = None) -> bool:
        """The policy's answer for this member (resource level without ``record``)."""
        return bool(rbac.can(action, resource, record, access=self.access))


#: Members who attack, as (world user key, workspace attribute): one per built-in
#: role in ``w.ws``, plus two members of the *other* workspace acting there: a
#: plain Member (outsider) and its Owner (dual, who is also a Viewer of ``w.ws``).
PROBERS: tuple[tuple[str, str], ...] = (
    ("owner", "ws"), ("admin", "ws"), ("manager", "ws"), ("member", "ws"),
    ("viewer", "ws"), ("finance", "ws"), ("junior_rep", "ws"), ("client_success", "ws"),
    ("outsider", "ws2"), ("dual", "ws2"),
)

def record_resources() -> list[str]:
    """Resources with records (the demo's CRM data), as registered with the plugin."""
    return [res.name for res in rbac.registry if res.model is not None]


def membership_of(user: Any, workspace: Any) -> Any:
    M = rbac.models.Membership
    return db.session.scalar(sa.select(M).where(M.user_id == user.id,
                                                M.workspace_id == workspace.id))


def _role(workspace: Any, key: str) -> Any:
    R = rbac.models.Role
    return db.session.scalar(sa.select(R).where(R.workspace_id == workspace.id, R.key == key))


def build_security_world() -> SimpleNamespace:
    """``build_world()`` plus plugin objects in both workspaces and plain-data indexes.

    Added per workspace (names start with the workspace's name so a leak is
    recognisable): custom roles "<ws> sweep role A/B" held by nobody and in
    a segregation-of-duties pair, "<ws> spare role" (deletable), a
    department "<ws> sweep department", a pending invitation of
    ``<slug>-invitee@example.test`` and one API token per active member. In
    ``w.ws2`` dual (Owner) manages outsider.
    """
    w = build_world()
    m = rbac.models
    w.ms2 = {key: membership_of(w.users[key], w.ws2) for key in ("dual", "outsider")}
    w.custom_roles, w.sweep_departments, w.invitations, w.conflicts = {}, {}, {}, {}
    for ws in (w.ws, w.ws2):
        label = ws.name.split()[0]
        a = custom_role(w, f"{label} sweep role A", [("leads", "view", "own")], workspace=ws)
        b = custom_role(w, f"{label} sweep role B", [("deals", "view", "own")], workspace=ws)
        spare = custom_role(w, f"{label} spare role", [("clients", "view", "own")],
                            workspace=ws)
        w.custom_roles[ws.id] = {"a": a, "b": b, "spare": spare}
        w.conflicts[ws.id] = m.RoleConflict(workspace_id=ws.id, role_a_id=a.id,
                                            role_b_id=b.id)
        w.sweep_departments[ws.id] = m.Department(workspace=ws,
                                                  name=f"{label} sweep department")
        db.session.add_all([w.conflicts[ws.id], w.sweep_departments[ws.id]])
    db.session.add(m.ManagerAssignment(manager_id=w.ms2["dual"].id,
                                       member_id=w.ms2["outsider"].id))
    db.session.commit()
    add_agreements(w)
    add_approval_requests(w)
    add_certification_runs(w)
    add_attachments(w)
    w.tokens, w.tokens_by_membership = {}, {}
    w.user_workspaces = {key: [] for key in w.users}
    active = list(db.session.scalars(sa.select(m.Membership).where(
        m.Membership.status == "active").order_by(m.Membership.id)))
    for membership in active:
        token, plaintext = tokens.create_token(rbac, membership,
                                               f"Token of {membership.user.name} in "
                                               f"{membership.workspace_id}")
        db.session.flush()
        w.tokens[membership.id] = plaintext
        w.tokens_by_membership[membership.id] = token.id
        key = next(k for k, u in w.users.items() if u.id == membership.user_id)
        w.user_workspaces[key].append(membership.workspace_id)
    db.session.commit()
    add_notifications(w, active)
    w.probers = [Prober(key, w.users[key], getattr(w, attr),
                        membership_of(w.users[key], getattr(w, attr)),
                        _access(membership_of(w.users[key], getattr(w, attr))), "")
                 for key, attr in PROBERS]
    for prober in w.probers:
        prober.token = w.tokens[prober.membership.id]
    w.prober = {p.key: p for p in w.probers}
    w.records = {**world_records(w), "invoices": add_invoices(w)}
    w.records["campaigns"] = add_campaigns(w)
    w.record_by_id = {(res, rec.id): rec for res, recs in w.records.items()
                      for rec in recs.values()}
    return w


def add_campaigns(w: SimpleNamespace) -> dict[str, Any]:
    """Campaigns (crm_app/campaigns) by tag, as ``world_records`` tags records: the
    Member's and an unowned one in ``w.ws``, the outsider's in ``w.ws2`` (tag ``ws2``),
    each linked to a lead of its workspace. Names are secrets the sweeps look for."""
    owners = {"member": (w.ws, w.users["member"]), "unowned": (w.ws, None),
              "ws2": (w.ws2, w.users["outsider"])}
    out = {}
    with rbac.system():
        for tag, (ws, user) in owners.items():
            out[tag] = Campaign(workspace_id=ws.id, owner_id=user.id if user else None,
                                name=f"Sweep campaign C{tag}Z", subject="Sweep")
            out[tag].leads = [w.other["lead"] if tag == "ws2" else w.leads["member2"]]
        db.session.add_all(out.values())
        db.session.commit()
    return out


def add_invoices(w: SimpleNamespace) -> dict[str, Any]:
    """One invoice per owner in ``w.ws`` and one in ``w.ws2`` (the Accounting module)."""
    out = {}
    with rbac.system():
        for key in ("member", "member2", "manager", None):
            tag = key or "unowned"
            out[tag] = Invoice(workspace_id=w.ws.id, owner_id=w.users[key].id if key else None,
                               number=f"Acme invoice of {tag}", client_id=w.clients[tag].id)
        out["ws2"] = Invoice(workspace_id=w.ws2.id, owner_id=w.users["outsider"].id,
                             number="Beta invoice")
        db.session.add_all(out.values())
        db.session.commit()
    return out


def add_notifications(w: SimpleNamespace, memberships: list[Any]) -> None:
    """One notification per active member, whose summary is a secret only they may see."""
    w.notifications_by_membership = {}
    for membership in memberships:
        [row] = notify_queue.enqueue(
            db.session, rbac.models, workspace_id=membership.workspace_id,
            recipients=[membership.id], category="roles", event_name="sweep.event",
            summary=f"Sweep notice N{membership.id}Z for that member only",
            link="/settings/profile")
        db.session.flush()
        w.notifications_by_membership[membership.id] = row.id
def add_certification_runs(w: SimpleNamespace) -> None:
    """An open certification run in each of the two workspaces, started by its Owner."""
    w.certification_runs = {}
    for ws, owner in ((w.ws, w.members["owner"]), (w.ws2, w.ms2["dual"])):
        w.certification_runs[ws.id] = certification_runs.start_run(rbac, _access(owner), "deals")
    db.session.commit()


def add_attachments(w: SimpleNamespace) -> None:
    """A file attached to a lead in each of the two workspaces (a row only: no bytes)."""
    w.attachments = {}
    with rbac.system():
        for ws in (w.ws, w.ws2):
            lead = db.session.scalars(sa.select(Lead).where(Lead.workspace_id == ws.id)
                                      .order_by(Lead.id)).first()
            row = rbac.models.Attachment(
                workspace_id=ws.id, resource="leads", record_id=str(lead.id),
                storage_key=f"{ws.id:032x}", filename=f"sweep-file-{ws.id}.pdf",
                content_type="application/pdf", size=1)
            db.session.add(row)
            db.session.flush()
            w.attachments[ws.id] = row.id
        db.session.commit()


def add_agreements(w: SimpleNamespace) -> None:
    """A third workspace, Gamma, and a pending sharing agreement from each of ws and ws2 to it.

    So each of the two workspaces has an agreement of its own (granting side,
    ``w.agreements[ws_id]``) and one it is no party to (the other's), with
    distinctive notes. Pending: they share nothing yet.
    """
    gamma_owner = User(email="gamma_owner@example.test", name="Gamma Owner",
                       password_hash=w.users["owner"].password_hash)
    db.session.add(gamma_owner)
    db.session.flush()
    w.users["gamma_owner"] = gamma_owner
    w.ws3 = workspaces.create_workspace(rbac, "Gamma Labs", owner=gamma_owner, slug="gamma")
    db.session.commit()
    w.agreements = {}
    for ws, owner in ((w.ws, w.members["owner"]), (w.ws2, w.ms2["dual"])):
        label = ws.name.split()[0]
        w.agreements[ws.id] = sharing.create_agreement(
            rbac, _access(owner), workspace=w.ws3, permissions=["clients.view"],
            notes=f"{label} shares clients with Gamma (sweep notes)")
    db.session.commit()


def add_approval_requests(w: SimpleNamespace) -> None:
    """In each of ws and ws2, a plan change needs approval and the Owner asked for one.

    ``w.approval_requests[ws_id]`` is the pending request's id; its reason
    ("<ws> sweep approval reason") is the text no other workspace may see.
    """
    w.approval_requests = {}
    for ws, owner in ((w.ws, w.members["owner"]), (w.ws2, w.ms2["dual"])):
        approvals.save(rbac, _access(owner), {"operations": {"plan": True}})
        db.session.commit()
        label = ws.name.split()[0]
        try:
            with gate.with_reason(f"{label} sweep approval reason"):
                roles.set_plan(rbac, _access(owner), ws, "pro")
        except gate.ApprovalPending as pending:
            w.approval_requests[ws.id] = pending.request_id
    assert len(w.approval_requests) == 2


def _access(membership: Any) -> Access:
    access = rbac.access_for(membership)
    assert access is not None, f"no access for {membership!r}"
    return access


def add_invitations(app: Flask, w: SimpleNamespace) -> None:
    """Invite ``<slug>-invitee@example.test`` as Viewer into each workspace (no mail).

    ``team.invite`` reads ``current_app`` and sends a signal, so it runs in a
    request context; its audit event ("member.invited", target = the email)
    gives each workspace an audit event with a distinctive text.
    """
    for ws, owner in ((w.ws, w.members["owner"]), (w.ws2, w.ms2["dual"])):
        with app.test_request_context():
            inv, token = team.invite(rbac, _access(owner), f"{ws.slug}-invitee@example.test",
                                     [_role(ws, "viewer")], send=False)
            db.session.commit()
        w.invitations[ws.id] = (inv, token)


def index_objects(w: SimpleNamespace) -> None:
    """Fill ``w.objects[workspace_id][kind]`` with :class:`Obj` for every id-named object.

    Kinds: ``record:<resource>`` for CRM records and the plugin's ``role``,
    ``membership``, ``member_role``, ``department``, ``invitation``,
    ``token``, ``conflict`` and ``audit_event``. Read in ``rbac.system()``
    so that nothing is filtered.
    """
    m = rbac.models
    objects: dict[int, dict[str, list[Obj]]] = {w.ws.id: {}, w.ws2.id: {}}

    def add(kind: str, ident: int, ws_id: int, secret: str | None, label: str) -> None:
        objects.setdefault(ws_id, {}).setdefault(kind, []).append(
            Obj(kind, ident, ws_id, secret, label))

    with rbac.system():
        for res, recs in w.records.items():
            text_attr = {"deals": "title", "tasks": "title", "notes": "body",
                         "invoices": "number"}.get(res, "name")
            for tag, rec in recs.items():
                add(f"record:{res}", rec.id, rec.workspace_id, getattr(rec, text_attr),
                    f"{res} {tag!r}")
        both = {u for u in w.users.values()
                if membership_of(u, w.ws) is not None and membership_of(u, w.ws2) is not None}
        for ms in db.session.scalars(sa.select(m.Membership).order_by(m.Membership.id)):
            user = db.session.get(User, ms.user_id)
            add("membership", ms.id, ms.workspace_id, None if user in both else user.email,
                f"membership of {user.email}")
            for mr in ms.member_roles:
                add("member_role", mr.id, ms.workspace_id, None,
                    f"assignment of {mr.role.name} to {user.email}")
            for tok in db.session.scalars(sa.select(m.ApiToken).where(
                    m.ApiToken.membership_id == ms.id)):
                add("token", tok.id, ms.workspace_id, tok.name, f"token {tok.name!r}")
            for note in db.session.scalars(sa.select(m.Notification).where(
                    m.Notification.membership_id == ms.id)):
                add("notification", note.id, ms.workspace_id, note.summary,
                    f"notification #{note.id} of {user.email}")
        for role in db.session.scalars(sa.select(m.Role).order_by(m.Role.id)):
            add("role", role.id, role.workspace_id, None if role.builtin else role.name,
                f"role {role.name!r}")
        for dept in db.session.scalars(sa.select(m.Department)):
            add("department", dept.id, dept.workspace_id,
                dept.name if "sweep" in dept.name else None, f"department {dept.name!r}")
        for inv in db.session.scalars(sa.select(rbac.models.Invitation)):
            add("invitation", inv.id, inv.workspace_id, inv.email, f"invitation of {inv.email}")
        for pair in db.session.scalars(sa.select(m.RoleConflict)):
            add("conflict", pair.id, pair.workspace_id, None, f"SoD pair #{pair.id}")
        for ag in db.session.scalars(sa.select(m.SharingAgreement)):
            # An agreement belongs to both parties' workspaces.
            for ws_id in (ag.granting_workspace_id, ag.receiving_workspace_id):
                add("agreement", ag.id, ws_id, ag.notes, f"sharing agreement #{ag.id}")
        for req in db.session.scalars(sa.select(m.ApprovalRequest)):
            add("approval_request", req.id, req.workspace_id, req.reason,
                f"approval request #{req.id}")
        for att in db.session.scalars(sa.select(rbac.models.Attachment)):
            add("attachment", att.id, att.workspace_id, None, f"attachment {att.filename}")
        for run in db.session.scalars(sa.select(rbac.models.CertificationRun)):
            add("certification_run", run.id, run.workspace_id, None,
                f"certification run #{run.id}")
        for ev in db.session.scalars(sa.select(rbac.models.AuditEvent)):
            if ev.workspace_id is not None:
                add("audit_event", ev.id, ev.workspace_id,
                    ev.target if "invitee@" in (ev.target or "") else None,
                    f"audit event {ev.action} #{ev.id}")
    w.objects = objects
    # The object of each kind a write aims at in each workspace, as plain ids.
    w.targets = {}
    for ws, member, manager, owner in ((w.ws, w.members["member2"], w.members["manager"],
                                        w.members["owner"]),
                                       (w.ws2, w.ms2["outsider"], w.ms2["dual"],
                                        w.ms2["dual"])):
        with rbac.system():
            w.targets[ws.id] = {
                "role": w.custom_roles[ws.id]["spare"].id,
                "membership": member.id,
                "member_role": member.member_roles[0].id,
                "department": w.sweep_departments[ws.id].id,
                "invitation": w.invitations[ws.id][0].id,
                "token": next(o.id for o in objects[ws.id]["token"]
                              if o.secret and o.secret.startswith(
                                  f"Token of {owner.user.name} in")),
                "conflict": w.conflicts[ws.id].id,
                "notification": w.notifications_by_membership[owner.id],
                # Not kinds of URL ids: what the bodies of the writes name.
                "manager": manager.id,
                "team_member": member.id if ws is w.ws2 else w.members["member"].id,
                "member_user": member.user_id,
                "viewer_role": _role(ws, "viewer").id,
                "role_a": w.custom_roles[ws.id]["a"].id,
                "agreement": w.agreements[ws.id].id,
                "approval_request": w.approval_requests[ws.id],
                "slug": ws.slug,
                "certification_run": w.certification_runs[ws.id].id,
                "attachment": w.attachments[ws.id],
                # An item whose member is not the workspace's Owner (who may decide it).
                "certification_item": next(
                    i.id for i in w.certification_runs[ws.id].items
                    if i.membership_id != owner.id),
            }
        w.targets[ws.id]["invitation_token"] = w.invitations[ws.id][1]
    db.session.rollback()


@pytest.fixture
def security_world(app: Flask) -> SimpleNamespace:
    """The world of ``tests/conftest.py`` with plugin objects in both workspaces.

    See :func:`build_security_world`, :func:`add_invitations` and
    :func:`index_objects`. Build it once per test and share it between many
    probes: GET probes change nothing, and refused writes change nothing
    either (which the write sweep checks).
    """
    # A sweep is hundreds of refusals a minute: no refusal alert (the counters still
    # count), so that a row of rbac_alert changing is always a write that leaked.
    app.config["RBAC_ALERT_REFUSALS_PER_10_MINUTES"] = 10**6
    w = build_security_world()
    add_invitations(app, w)
    add_alerts(w)
    index_objects(w)
    return w


def add_alerts(w: SimpleNamespace) -> None:
    """One open alert per workspace, ``w.alert_ids[workspace id]``: what a leaked
    acknowledge or resolve would change."""
    m = rbac.models
    alerts = {ws.id: m.Alert(workspace_id=ws.id, rule="refusals", severity="medium",
                             status="open", summary="Sweep alert") for ws in (w.ws, w.ws2)}
    with rbac.system():
        db.session.add_all(alerts.values())
        db.session.commit()
    w.alert_ids = {ws_id: alert.id for ws_id, alert in alerts.items()}


def foreign_objects(w: SimpleNamespace, workspace_id: int, kind: str) -> list[Obj]:
    """Objects of ``kind`` that are not ``workspace_id``'s (not also listed as its own)."""
    own = {obj.id for obj in w.objects.get(workspace_id, {}).get(kind, [])}
    out: dict[int, Obj] = {}
    for ws_id, kinds in w.objects.items():
        for obj in kinds.get(kind, []):
            if ws_id != workspace_id and obj.id not in own:
                out.setdefault(obj.id, obj)
    return list(out.values())


def own_objects(w: SimpleNamespace, workspace_id: int, kind: str) -> list[Obj]:
    return list(w.objects[workspace_id].get(kind, []))


def invisible_records(w: SimpleNamespace, prober: Prober, resource: str,
                      action: str = "view") -> list[Obj]:
    """Records of ``resource`` (both workspaces) ``prober`` may not ``action``, per the policy."""
    out = []
    for ws_id in w.objects:
        for obj in w.objects[ws_id].get(f"record:{resource}", []):
            if not prober.can(action, resource, w.record_by_id[(resource, obj.id)]):
                out.append(obj)
    return out


# -- route classification ------------------------------------------------------------------

#: URL arguments that name a plugin object, and the kind of that object.
ID_ARGUMENTS: dict[str, str] = {
    "role_id": "role",
    "membership_id": "membership",
    "member_id": "membership",
    "member_role_id": "member_role",
    "dept_id": "department",
    "invitation_id": "invitation",
    "token_id": "token",
    "conflict_id": "conflict",
    "agreement_id": "agreement",
    "notification_id": "notification",
    "request_id": "approval_request",
    "run_id": "certification_run",
    "attachment_id": "attachment",
}

#: URL arguments that genuinely name no record, as (endpoint pattern, argument): why.
#: Keep this list short; anything else must be classified by ID_ARGUMENTS or the
#: record rules of :func:`id_argument_kind`.
NOT_RECORD_IDS: dict[tuple[str, str], str] = {
    ("static", "filename"): "a file of the app's static folder",
    ("*.static", "filename"): "a file of a blueprint's (Flask-Admin's, the plugin's) static folder",
    ("*.export", "export_type"): "Flask-Admin's export format (csv ...): rows come from the "
                                 "scoped list query",
    ("rbac_api.list_records", "resource"): "a resource name; the list is filtered by the plugin",
    ("rbac_api.get_record", "resource"): "a resource name; the id is record_id (probed)",
    ("*.end_agreement", "verb"): "what to do with the agreement (revoke, accept, decline, "
                                 "leave); the id is agreement_id (probed)",
    ("rbac_api.change_status", "verb"): "deactivate or reactivate the member; the id is "
                                        "membership_id (probed)",
    ("imports.*", "resource"): "a resource name (leads, clients, deals); the staged file is "
                               "the member's own, found by the member in force",
    ("files.upload", "resource"): "the resource of record_id; the sweeps attach to leads",
}

#: Values for the arguments of NOT_RECORD_IDS that a URL needs (by endpoint pattern).
ROUTE_VALUES: dict[tuple[str, str], str] = {
    ("*.end_agreement", "verb"): "revoke",
    ("rbac_api.change_status", "verb"): "deactivate",
    ("imports.*", "resource"): "leads",
    ("files.upload", "resource"): "leads",
}


def route_values(rule: Rule) -> dict[str, str]:
    """Fixed values of ``rule``'s non-id arguments listed in :data:`ROUTE_VALUES`."""
    return {arg: value for arg in rule.arguments
            if (value := _matches(ROUTE_VALUES, rule.endpoint, arg)) is not None}

#: URL arguments that are capabilities rather than ids: the secret itself is the
#: authorisation (a signed, expiring, single-use invitation link).
CAPABILITY_ARGUMENTS: dict[tuple[str, str], str] = {
    ("rbac_settings.accept_invitation", "token"): "invitation",
    ("rbac_settings.download_csv", "token"): "approval_download",
    ("rbac_settings.reset_password", "token"): "password_reset",
}


class UnclassifiedRoute(AssertionError):
    """A route argument the sweeps do not know: classify it before trusting the sweep."""


def _matches(table: dict[tuple[str, str], str], endpoint: str, arg: str) -> str | None:
    for (pattern, name), value in table.items():
        if name == arg and fnmatch.fnmatchcase(endpoint, pattern):
            return value
    return None


def id_argument_kind(rule: Rule, arg: str) -> str | None:
    """The kind of object URL argument ``arg`` of ``rule`` names; None if it names none.

    ``record:<resource>`` for ``<int:id>`` under a resource's blueprint
    (``/leads/<int:id>``), ``record:*`` for ``<int:record_id>`` next to a
    ``<resource>`` argument; the plugin's kinds from :data:`ID_ARGUMENTS`;
    ``capability:<kind>`` for :data:`CAPABILITY_ARGUMENTS`. Raises
    :class:`UnclassifiedRoute` for anything else.
    """
    endpoint = rule.endpoint
    if _matches(NOT_RECORD_IDS, endpoint, arg) is not None:
        return None
    capability = _matches(CAPABILITY_ARGUMENTS, endpoint, arg)
    if capability is not None:
        return f"capability:{capability}"
    if arg in ID_ARGUMENTS:
        return ID_ARGUMENTS[arg]
    blueprint = endpoint.rpartition(".")[0]
    if arg == "id" and blueprint in rbac.registry and rbac.registry.get(blueprint).model:
        return f"record:{blueprint}"
    if arg == "record_id" and "resource" in rule.arguments:
        fixed = _matches(ROUTE_VALUES, endpoint, "resource")
        return f"record:{fixed}" if fixed else "record:*"
    raise UnclassifiedRoute(
        f"route {rule.rule!r} (endpoint {endpoint!r}, methods {sorted(rule.methods or ())}) "
        f"takes argument {arg!r} that the security sweeps cannot classify: add it to "
        "ID_ARGUMENTS (and give the world an object of that kind in both workspaces), or, "
        "if it truly names no record, to NOT_RECORD_IDS in tests/security/conftest.py")


def id_arguments(rule: Rule) -> dict[str, str]:
    """``{argument: kind}`` for the arguments of ``rule`` that name an object."""
    out = {}
    for arg in sorted(rule.arguments):
        kind = id_argument_kind(rule, arg)
        if kind is not None:
            out[arg] = kind
    return out


UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def rules_of(app: Flask) -> list[Rule]:
    """Every rule of the app, sorted by URL (stable probe order)."""
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def unsafe_methods(rule: Rule) -> list[str]:
    return sorted(set(rule.methods or ()) & UNSAFE_METHODS)


# -- Flask-Admin -----------------------------------------------------------------------------

#: Endpoints every Flask-Admin model view registers, and what each takes.
#: ``id`` in the query string (details, edit), ``id`` in the form (delete),
#: ``rowid`` (actions), ``list_form_pk`` (inline list editing).
ADMIN_VIEW_ENDPOINTS = frozenset({"index_view", "details_view", "edit_view", "create_view",
                                  "delete_view", "action_view", "ajax_lookup", "ajax_update",
                                  "export"})


@dataclass(frozen=True)
class AdminPanel:
    """A Flask-Admin model view: its endpoint, RBAC resource and what its ids name."""

    endpoint: str
    resource: str
    kind: str
    read_only: bool
    view: Any = field(compare=False, repr=False)


#: Plugin models shown in Flask-Admin and the object kind of their ids.
def _plugin_model_kinds() -> dict[type, str]:
    m = rbac.models
    return {m.Role: "role", m.Membership: "membership", m.Department: "department",
            rbac.models.AuditEvent: "audit_event", m.ApiToken: "token",
            rbac.models.Invitation: "invitation", m.RoleConflict: "conflict",
            m.SharingAgreement: "agreement"}


def admin_panels(app: Flask) -> list[AdminPanel]:
    """Every Flask-Admin model view registered on ``app``, classified.

    A view of a model that is neither a registered resource nor a known
    plugin model fails the sweep (its ``?id=`` could not be probed).
    """
    from flask_admin.model import BaseModelView

    kinds = _plugin_model_kinds()
    panels = []
    for admin in app.extensions.get("admin", []):
        for view in admin._views:
            if not isinstance(view, BaseModelView):
                continue
            resource = getattr(view, "resource", None)
            res = rbac.registry.get(resource) if resource in rbac.registry else None
            if res is not None and res.model is view.model:
                kind = f"record:{resource}"
            elif view.model in kinds:
                kind = kinds[view.model]
            else:
                raise UnclassifiedRoute(
                    f"Flask-Admin view {view.endpoint!r} shows model {view.model.__name__}, "
                    "which the security sweeps cannot classify: map it to an object kind in "
                    "tests/security/conftest.py (_plugin_model_kinds)")
            panels.append(AdminPanel(view.endpoint, str(resource), kind, _read_only(view), view))
    return panels


def _read_only(view: Any) -> bool:
    """Whether the view's class fixes create, edit and delete to False (plugin panels)."""
    return all(getattr(type(view), flag, None) is False
               for flag in ("can_create", "can_edit", "can_delete"))


def admin_endpoint(app: Flask, rule: Rule) -> tuple[AdminPanel, str] | None:
    """``(panel, view endpoint)`` if ``rule`` belongs to a Flask-Admin model view.

    Fails for a model view endpoint outside :data:`ADMIN_VIEW_ENDPOINTS`.
    """
    prefix, _, name = rule.endpoint.rpartition(".")
    for panel in admin_panels(app):
        if panel.endpoint == prefix:
            if name not in ADMIN_VIEW_ENDPOINTS:
                raise UnclassifiedRoute(
                    f"Flask-Admin endpoint {rule.endpoint!r} ({rule.rule}) is not one the "
                    "sweeps know (ADMIN_VIEW_ENDPOINTS in tests/security/conftest.py)")
            return panel, name
    return None


# -- database snapshots ---------------------------------------------------------------------

#: Tables a refused request may legitimately write to, and why.
EXCLUDED_TABLES: dict[str, str] = {
    "rbac_audit_event": "append-only audit trail: every refusal is stored as an "
                        "'access.denied' event after the request, by design",
    "rbac_sign_in_throttle": "failed sign-in counts: every failed attempt is counted, by "
                             "design (crm_rbac_plugin/security/throttle.py)",
    "rbac_session": "server-side session records: a signed-in request without a session id "
                    "is adopted (a new row) and last_seen_at is stamped once a minute, by "
                    "design (crm_rbac_plugin/security/sessions.py); every revocation is "
                    "audited and tested in tests/test_sessions.py",
    "rbac_alert_counter": "alert-rule counters: every refusal stored adds one to its "
                          "member's refusal count, by design (crm_rbac_plugin/alerts)",
}

#: Columns that legitimately change on any authenticated request, and why.
EXCLUDED_COLUMNS: dict[tuple[str, str], str] = {
    ("rbac_membership", "last_seen_at"): "last activity, written at most every "
                                         "RBAC_LAST_SEEN_INTERVAL by any request",
    ("rbac_api_token", "last_used_at"): "stamped whenever the token authenticates a request",
}

Snapshot = dict[str, list[tuple[Any, ...]]]


def snapshot_database() -> Snapshot:
    """Every row of every table (minus the exclusions above), committed state.

    Read with Core statements in ``rbac.system()`` (protected tables refuse
    Core reads otherwise), then the session's transaction is ended so the
    next snapshot sees the requests' commits on any backend.
    """
    out: Snapshot = {}
    with rbac.system():
        for table in db.metadata.sorted_tables:
            if table.name in EXCLUDED_TABLES:
                continue
            columns = [c for c in table.c if (table.name, c.name) not in EXCLUDED_COLUMNS]
            rows = db.session.execute(sa.select(*columns)).all()
            out[table.name] = sorted((tuple(_freeze(v) for v in row) for row in rows),
                                     key=repr)
    db.session.rollback()
    return out


def _freeze(value: Any) -> Any:
    """A hashable, order-independent stand-in for a JSON column's list or dict."""
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def snapshot_diff(before: Snapshot, after: Snapshot) -> list[str]:
    """Human-readable differences between two snapshots (empty: unchanged)."""
    lines = []
    for name in sorted(set(before) | set(after)):
        old, new = set(before.get(name, [])), set(after.get(name, []))
        for row in sorted(old - new, key=repr)[:5]:
            lines.append(f"{name}: - {row!r}")
        for row in sorted(new - old, key=repr)[:5]:
            lines.append(f"{name}: + {row!r}")
    return lines


# -- clients -----------------------------------------------------------------------------------


def logged_in(app: Flask, user: Any, workspace: Any) -> FlaskClient:
    """A test client signed in as ``user`` with ``workspace`` current (like ``login``)."""
    client = app.test_client(user=user)
    with client.session_transaction() as sess:
        sess[app.config["RBAC_SESSION_KEY"]] = workspace.id
    return client


def body_text(response: Any) -> str:
    return response.get_data(as_text=True)


def is_login_redirect(response: Any) -> bool:
    """Whether ``response`` sends an anonymous client to the login page."""
    return response.status_code in (301, 302, 303) and "/login" in response.headers.get(
        "Location", "")


# -- CSRF-enabled app --------------------------------------------------------------------------


@pytest.fixture
def csrf_app(database_url: str) -> Iterator[Flask]:
    """The demo app as deployed: CSRF protection on (``WTF_CSRF_ENABLED=True``).

    Same lifecycle as the ``app`` fixture of ``tests/conftest.py``; don't
    use both in one test.
    """
    with app_with_tables(database_url, WTF_CSRF_ENABLED=True) as app:
        yield app


@pytest.fixture
def csrf_world(csrf_app: Flask) -> SimpleNamespace:
    """:func:`security_world` built in :func:`csrf_app`."""
    w = build_security_world()
    add_invitations(csrf_app, w)
    add_alerts(w)
    index_objects(w)
    return w


@pytest.fixture
def csrf_login(csrf_app: Flask) -> Callable[[Any, Any], FlaskClient]:
    """``csrf_login(user, workspace)``: a client of :func:`csrf_app` signed in as ``user``."""
    return lambda user, workspace: logged_in(csrf_app, user, workspace)
