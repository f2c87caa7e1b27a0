"""What every state-changing route needs, and who may not use it.

The write sweep, the cross-workspace id probes and the CSRF test all send
"plausible" writes: the request an honest member with the right would send
(a filled-in form, a JSON body, ids of real objects). This module builds
them from ``app.url_map`` and a small documented table:

* CRM routes (``<resource>.create|edit|delete|bulk_delete``) and Flask-Admin
  model views are derived from the plugin's registry: the permission is the
  route's action on the route's resource, and form bodies come from the
  resource's own WTForms class.
* Every other state-changing endpoint must be in :data:`ENDPOINT_RULES`,
  which names the permission that the route needs (checked against the
  policy to find who may not) and the body it takes. An endpoint in neither
  fails the sweeps with :class:`~tests.security.conftest.UnclassifiedRoute`.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from flask import Flask
from werkzeug.routing import Rule

from crm_app.accounting.resources import INVOICES
from crm_app.crm.resources import CONFIGS
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import approvals
from tests.security.conftest import (
    AdminPanel,
    Obj,
    Prober,
    UnclassifiedRoute,
    admin_endpoint,
    id_arguments,
    invisible_records,
    own_objects,
    route_values,
    rules_of,
    unsafe_methods,
)

Body = dict[str, Any]
#: A real 8x8 PNG: the picture upload's plausible body (a fresh stream per request).
SWEEP_PICTURE = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFWEXHbQSACj/P8Fu7N9hAAAAAElFTkSuQmCC")
BodyFn = Callable[[SimpleNamespace, int], Body]
HiddenFn = Callable[[SimpleNamespace, Prober, int], bool]


@dataclass(frozen=True)
class EndpointRule:
    """How to attack one state-changing endpoint that is not CRM or Flask-Admin.

    ``permission``: ``"resource.action"`` (who lacks it per the policy may not),
    ``"owner"`` (only an Owner may), ``"self"`` (any signed-in member acts on
    their own things: the one who may not is an anonymous client),
    ``"own:token"`` (a member's own API token: everyone else may not),
    ``"own:notification"`` (one of the member's own notifications: the same), or
    ``"public"`` (anyone; attempted anonymously with a body that must fail).
    ``body(w, workspace_id)`` builds the form (or JSON, ``json=True``) body.
    ``expected_public`` is the status of the failing public attempt.
    ``hidden(w, prober, workspace_id)`` tells whether the route's object is
    outside the prober's view: such a member gets the 404 of a missing id,
    not a 403 that would confirm the id exists.
    """

    permission: str
    body: BodyFn = field(default=lambda w, ws: {})
    json: bool = False
    expected_public: frozenset[int] = frozenset()
    why: str = ""
    hidden: HiddenFn | None = None


def _request_hidden(w: SimpleNamespace, p: Prober, ws: int) -> bool:
    """Whether the workspace's pending request is hidden from ``p`` (neither its
    requester nor an approver)."""
    with rbac.system():
        req = rbac.db.session.get(rbac.models.ApprovalRequest, w.approval_requests[ws])
        return not approvals.may_see(rbac, p.access, req)


def _file_hidden(w: SimpleNamespace, p: Prober, ws: int) -> bool:
    """Whether the workspace's attachment sits on a lead ``p`` may not view."""
    with rbac.system():
        row = rbac.db.session.get(rbac.models.Attachment, w.attachments[ws])
        lead = w.record_by_id[("leads", int(row.record_id))]
    return not p.can("view", "leads", lead)


def _t(key: str) -> Callable[[SimpleNamespace, int], Any]:
    return lambda w, ws: w.targets[ws][key]


def _alert(w: SimpleNamespace, ws: int) -> dict[str, Any]:
    """The workspace's open alert (``add_alerts``): a leaked acknowledge or resolve
    would change it."""
    return {"alert_id": w.alert_ids[ws]}


#: Every state-changing endpoint outside the CRM blueprints and Flask-Admin.
ENDPOINT_RULES: dict[str, EndpointRule] = {
    # -- roles and SoD (settings pages) --
    "rbac_settings.new_role": EndpointRule(
        "roles.create", lambda w, ws: {"name": "Sweep role", "scope__leads__view": "all"}),
    "rbac_settings.edit_role": EndpointRule(
        "roles.edit", lambda w, ws: {"name": "Renamed by sweep", "scope__leads__view": "all"}),
    "rbac_settings.delete_role": EndpointRule("roles.delete", lambda w, ws: {"move_to": ""}),
    "rbac_settings.conflicts": EndpointRule(
        "roles.manage", lambda w, ws: {"role_a_id": w.targets[ws]["role_a"],
                                       "role_b_id": w.targets[ws]["role"]},
        why="the page is roles.view; adding a pair is roles.manage (service layer)"),
    "rbac_settings.remove_conflict": EndpointRule("roles.manage"),
    "rbac_settings.plan": EndpointRule("owner", lambda w, ws: {"plan": "free"}),
    # -- members and team --
    "rbac_settings.assign": EndpointRule(
        "members.edit", lambda w, ws: {"role_id": w.targets[ws]["viewer_role"]}),
    "rbac_settings.unassign": EndpointRule("members.edit"),
    "rbac_settings.role_assign": EndpointRule(
        "members.edit", lambda w, ws: {"membership_id": w.targets[ws]["membership"]}),
    "rbac_settings.role_unassign": EndpointRule("members.edit"),
    "rbac_settings.role_cap": EndpointRule(
        "roles.manage", lambda w, ws: {"resource": "leads", "max_records": 3}),
    "rbac_settings.invite": EndpointRule(
        "members.create", lambda w, ws: {"email": "sweep-invitee@example.test",
                                         "roles": [w.targets[ws]["viewer_role"]]}),
    "rbac_settings.resend_invitation": EndpointRule("members.create"),
    "rbac_settings.revoke_invitation": EndpointRule("members.create"),
    "rbac_settings.deactivate": EndpointRule("members.edit"),
    "rbac_settings.revoke_member_token": EndpointRule("members.edit"),
    "rbac_settings.reactivate": EndpointRule("members.edit"),
    "rbac_settings.member_department": EndpointRule(
        "members.edit", lambda w, ws: {"department_id": w.targets[ws]["department"],
                                       "visibility": "own"}),
    "rbac_settings.add_to_team": EndpointRule(
        "members.edit", lambda w, ws: {"member_id": w.targets[ws]["membership"]}),
    "rbac_settings.remove_from_team": EndpointRule("members.edit"),
    "rbac_settings.reassign": EndpointRule(
        "members.edit", lambda w, ws: {"to_user_id": w.targets[ws]["member_user"],
                                       "step": "apply"}),
    "rbac_settings.departments": EndpointRule(
        "members.edit", lambda w, ws: {"name": "Sweep-created department"},
        why="the page is members.view; creating is members.edit"),
    "rbac_settings.rename_department": EndpointRule(
        "members.edit", lambda w, ws: {"name": "Renamed by sweep"}),
    "rbac_settings.delete_department": EndpointRule("members.edit"),
    "rbac_settings.bulk_members": EndpointRule(
        "members.edit", lambda w, ws: {"members": [w.targets[ws]["membership"]],
                                       "action": "deactivate"}),
    # -- one's own things --
    "rbac_settings.profile": EndpointRule("self", lambda w, ws: {"name": "Renamed by sweep"}),
    "rbac_settings.profile_picture": EndpointRule(
        "self", lambda w, ws: {"picture": (io.BytesIO(SWEEP_PICTURE), "sweep.png")},
        why="sets one's own picture (no id: nobody else's can be named)"),
    "rbac_settings.remove_profile_picture": EndpointRule(
        "self", why="removes one's own picture (no id: nobody else's can be named)"),
    "rbac_settings.tokens": EndpointRule("self", lambda w, ws: {"name": "Sweep token"}),
    "rbac_settings.revoke_token": EndpointRule("own:token"),
    "rbac_settings.mfa": EndpointRule(
        "self", lambda w, ws: {"code": "000000"},
        why="confirms one's own two-factor enrolment; a wrong code writes only its audit event"),
    "rbac_settings.mfa_recovery_codes": EndpointRule("self"),
    "rbac_settings.mfa_turn_off": EndpointRule(
        "self", lambda w, ws: {"password": "wrong password"},
        why="turns off one's own two-factor authentication, with one's password"),
    "rbac_settings.mfa_verify": EndpointRule(
        "public", lambda w, ws: {"code": "000000"}, expected_public=frozenset({400}),
        why="the sign-in's second step: without a session to verify, a code gets the same "
            "400 a wrong code gets, so the page tells nothing about accounts"),
    "rbac_settings.mfa_reset": EndpointRule("owner"),
    "rbac_settings.sign_out_session": EndpointRule(
        "self", lambda w, ws: {"session_id": 0},
        why="signs out one of one's own sessions; another account's session id is a 404"),
    "rbac_settings.sign_out_others": EndpointRule("self"),
    # -- one's own notifications (another member's id is a 404) --
    "rbac_settings.save_notification_preferences": EndpointRule(
        "self", lambda w, ws: {"roles": "app", "membership": "mail", "sharing": "mail",
                               "approvals": "mail", "security": "mail", "reviews": "digest"}),
    "rbac_settings.read_notification": EndpointRule("own:notification"),
    "rbac_settings.open_notification": EndpointRule("own:notification"),
    "rbac_settings.read_all_notifications": EndpointRule("self"),
    "rbac_api.read_notification": EndpointRule("own:notification", json=True),
    "rbac_api.read_all_notifications": EndpointRule("self", json=True),
    "rbac_api.update_notification_preferences": EndpointRule(
        "self", lambda w, ws: {"roles": "app"}, json=True),
    "rbac_settings.member_sign_out_everywhere": EndpointRule(
        "members.manage", why="an admin signs a member out everywhere (an Owner only by an "
                              "Owner)"),
    # -- the workspace's security policy --
    "rbac_settings.security": EndpointRule(
        "owner", lambda w, ws: {
            "step": "save", "mfa": "nobody", "step_up_minutes": "20",
            "idle_minutes_privileged": "30", "absolute_minutes_privileged": "720",
            "idle_minutes_member": "480", "absolute_minutes_member": "10080",
            "max_sessions": "", "ip_allowlist": "", "password_min_length": "12",
            "password_min_score": "3", "allowed_devices": ["desktop", "mobile", "tablet"]},
        why="Admins read the page; only an Owner saves it"),
    "rbac_api.update_security_policy": EndpointRule(
        "owner", lambda w, ws: {"step_up_minutes": 20}, json=True),
    # -- alerts: Owners and Admins handle them, Owners set their thresholds --
    "rbac_settings.acknowledge_alert": EndpointRule("settings.manage", _alert),
    "rbac_settings.resolve_alert": EndpointRule("settings.manage", _alert),
    "rbac_api.acknowledge_alert": EndpointRule("settings.manage", _alert, json=True),
    "rbac_api.resolve_alert": EndpointRule("settings.manage", _alert, json=True),
    "rbac_settings.alert_settings": EndpointRule(
        "owner", lambda w, ws: {"export_rows_per_hour": "10", "timezone": "Europe/Paris"},
        why="Admins read the thresholds; only an Owner saves them"),
    "rbac_api.update_alert_settings": EndpointRule(
        "owner", lambda w, ws: {"export_rows_per_hour": 10}, json=True),
    "rbac_settings.accept_invitation": EndpointRule(
        "public", lambda w, ws: {"name": "Sweep", "password": "sweep-password-1",
                                 "confirm": "sweep-password-1"},
        expected_public=frozenset({400, 404}),
        why="the link is the capability: a forged link is refused (tests use a forged one)"),
    "rbac_settings.forgot_password": EndpointRule(
        "public", lambda w, ws: {"email": "owner@example.test"},
        expected_public=frozenset({200}),
        why="anyone may ask for a reset link: the same answer for every address; it writes "
            "its audit event and mails a link to the address only"),
    "rbac_settings.reset_password": EndpointRule(
        "public", lambda w, ws: {"password": "sweep-password-1", "confirm": "sweep-password-1"},
        expected_public=frozenset({400, 404}),
        why="the mailed link is the capability: a forged one is refused (the sweeps use one)"),
    # -- oversight --
    "rbac_oversight.view_as_start": EndpointRule(
        "settings.view", lambda w, ws: {"membership_id": w.targets[ws]["membership"]}),
    "rbac_oversight.view_as_stop": EndpointRule("self"),
    "rbac_oversight.request_access": EndpointRule(
        "self", lambda w, ws: {"action": "export", "resource": "leads"},
        why="asks the admins for a permission: mails them and writes its audit event only"),
    "rbac_oversight.review_sign_off": EndpointRule("settings.view"),
    "rbac_oversight.review_deactivate": EndpointRule("members.edit"),
    "rbac_oversight.review_remove_role": EndpointRule("members.edit"),
    # -- authentication --
    "auth.login": EndpointRule(
        "public", lambda w, ws: {"email": "owner@example.test", "password": "wrong"},
        expected_public=frozenset({200}),
        why="a failed sign-in re-renders the form (200) and writes only its throttle count "
            "and audit event"),
    "auth.logout": EndpointRule("self"),
    "rbac_settings.switch_workspace": EndpointRule(
        "self", lambda w, ws: {"workspace_id": next(i for i in w.targets if i != ws)},
        why="also attempted by members switching to a workspace they are not in"),
    # -- sharing agreements (settings.manage; the ids are the granting workspace's) --
    "rbac_settings.new_agreement": EndpointRule(
        "settings.manage", lambda w, ws: {"workspace": _other_slug(w, ws),
                                          "share__leads__view": "y", "notes": "Sweep"}),
    "rbac_settings.edit_agreement": EndpointRule(
        "settings.manage", lambda w, ws: {"share__leads__view": "y", "share__deals__view": "y",
                                          "notes": "Changed by sweep"}),
    "rbac_settings.end_agreement": EndpointRule("settings.manage"),
    "rbac_api.create_agreement": EndpointRule(
        "settings.manage", lambda w, ws: {"workspace": _other_slug(w, ws),
                                          "permissions": ["leads.view"]}, json=True),
    "rbac_api.update_agreement": EndpointRule(
        "settings.manage", lambda w, ws: {"notes": "Changed by sweep"}, json=True),
    "rbac_api.end_agreement": EndpointRule("settings.manage", json=True),
    # -- JSON API --
    "rbac_api.create_role": EndpointRule(
        "roles.create", lambda w, ws: {"name": "Sweep API role", "permissions": ["leads.view"]},
        json=True),
    "rbac_api.update_role": EndpointRule(
        "roles.edit", lambda w, ws: {"name": "Renamed by sweep",
                                     "permissions": ["leads.view", "deals.view"]}, json=True),
    "rbac_api.delete_role": EndpointRule("roles.delete", json=True),
    "rbac_api.clone_role": EndpointRule(
        "roles.create", lambda w, ws: {"name": "Sweep clone"}, json=True),
    "rbac_api.assign_role": EndpointRule(
        "members.edit", lambda w, ws: {"role_id": w.targets[ws]["viewer_role"]}, json=True),
    "rbac_api.remove_role": EndpointRule("members.edit", json=True),
    "rbac_api.change_status": EndpointRule("members.edit", json=True),
    "rbac_api.revoke_member_token": EndpointRule("members.edit", json=True),
    # -- conditional and group roles --
    "rbac_settings.role_condition": EndpointRule(
        "roles.edit", lambda w, ws: {"weekdays": ["mon"], "start": "09:00", "end": "18:00"}),
    "rbac_settings.give_department_role": EndpointRule(
        "members.edit", lambda w, ws: {"role_id": w.targets[ws]["viewer_role"]}),
    "rbac_settings.remove_department_role": EndpointRule("members.edit"),
    "rbac_api.update_assignment": EndpointRule(
        "members.edit", lambda w, ws: {"condition": {"weekdays": ["mon"]}}, json=True),
    "rbac_api.update_role_condition": EndpointRule(
        "roles.edit", lambda w, ws: {"condition": {"weekdays": ["mon"]}}, json=True),
    "rbac_api.give_department_role": EndpointRule(
        "members.edit", lambda w, ws: {"role_id": w.targets[ws]["viewer_role"]}, json=True),
    "rbac_api.remove_department_role": EndpointRule("members.edit", json=True),
    # -- approvals (each workspace has a pending plan change its Owner asked for) --
    "rbac_settings.approve_request": EndpointRule(
        "approvals.decide", lambda w, ws: {"reason": "sweep"}, hidden=_request_hidden,
        why="approvers hold approvals.decide; the requester (the Owner) is refused too (403)"),
    "rbac_settings.reject_request": EndpointRule(
        "approvals.decide", lambda w, ws: {"reason": "sweep"}, hidden=_request_hidden),
    "rbac_settings.cancel_request": EndpointRule(
        "owner", lambda w, ws: {"reason": "sweep"}, hidden=_request_hidden,
        why="only the requester cancels; the sweep's requests are the Owners'"),
    "rbac_settings.ask_approval": EndpointRule(
        "self", lambda w, ws: {"token": "not-a-signed-offer", "reason": "sweep"},
        why="any member asks with an offer a page made for them; a forged one is a 400"),
    "rbac_settings.download_request": EndpointRule(
        "owner", hidden=_request_hidden,
        why="the requester's own file; a pending request has none (404 for everyone)"),
    "rbac_settings.approval_policy": EndpointRule(
        "owner", lambda w, ws: {"op_plan": "y", "approvals_required": "1",
                                "approver_permission": "approvals.decide",
                                "expiry_hours": "72"}),
    "rbac_api.approve_approval": EndpointRule(
        "approvals.decide", lambda w, ws: {"reason": "sweep"}, json=True,
        hidden=_request_hidden),
    "rbac_api.reject_approval": EndpointRule(
        "approvals.decide", lambda w, ws: {"reason": "sweep"}, json=True,
        hidden=_request_hidden),
    "rbac_api.cancel_approval": EndpointRule("owner", json=True, hidden=_request_hidden),
    "rbac_api.update_approval_policy": EndpointRule(
        "owner", lambda w, ws: {"expiry_hours": 48}, json=True),
    # -- access reviews and certification --
    "rbac_settings.review_schedule": EndpointRule(
        "owner", lambda w, ws: {"interval_days": "30", "require_reason": "y"},
        why="Owners and Admins read the page; only an Owner saves the schedule"),
    "rbac_api.update_review_schedule": EndpointRule(
        "owner", lambda w, ws: {"interval_days": 30, "require_reason": True}, json=True),
    "rbac_settings.start_review_run": EndpointRule(
        "roles.manage", lambda w, ws: {"resource": "deals"},
        why="the page is settings.view; starting a run is a reviewer's (roles.manage)"),
    "rbac_api.start_review_run": EndpointRule(
        "roles.manage", lambda w, ws: {"resource": "deals"}, json=True),
    "rbac_settings.decide_review_item": EndpointRule(
        "roles.manage", lambda w, ws: {"item_id": w.targets[ws]["certification_item"],
                                       "decision": "revoke", "reason": "sweep"}),
    "rbac_api.decide_review_item": EndpointRule(
        "roles.manage", lambda w, ws: {"item_id": w.targets[ws]["certification_item"],
                                       "decision": "revoke", "reason": "sweep"}, json=True),
    "rbac_settings.refresh_review_run": EndpointRule("roles.manage"),
    "rbac_api.refresh_review_run": EndpointRule("roles.manage", json=True),
    "rbac_settings.complete_review_run": EndpointRule("roles.manage"),
    "rbac_api.complete_review_run": EndpointRule("roles.manage", json=True),
    # -- the workspace lifecycle (tests/test_workspace_lifecycle.py drives the Owner's side) --
    "rbac_settings.create_workspace": EndpointRule(
        "self", lambda w, ws: {"name": "Sweep workspace"},
        why="any signed-in user creates a workspace of their own"),
    "rbac_api.create_workspace": EndpointRule(
        "self", lambda w, ws: {"name": "Sweep workspace"}, json=True),
    "rbac_settings.restore_workspace": EndpointRule(
        "self", lambda w, ws: {"workspace_id": str(ws)},
        why="only an Owner of a deleted workspace restores it; a live one is a 404 for all"),
    "rbac_api.restore_workspace": EndpointRule(
        "self", lambda w, ws: {"workspace_id": ws}, json=True),
    "rbac_settings.transfer_ownership": EndpointRule(
        "owner", lambda w, ws: {"membership_id": w.targets[ws]["membership"],
                                "password": "password"}),
    "rbac_api.transfer_ownership": EndpointRule(
        "owner", lambda w, ws: {"membership_id": w.targets[ws]["membership"],
                                "password": "password"}, json=True),
    "rbac_settings.delete_workspace": EndpointRule(
        "owner", lambda w, ws: {"confirm": _workspace_name(ws)}),
    "rbac_api.delete_workspace": EndpointRule(
        "owner", lambda w, ws: {"confirm": _workspace_name(ws)}, json=True),
    # CSV import (crm_app.imports): import and create on the resource; a member
    # without them is refused before the body (the file) is read.
    "imports.upload": EndpointRule("leads.import", why="upload a CSV to import leads"),
    "imports.mapping": EndpointRule("leads.import", lambda w, ws: {"map-name": "0"}),
    "imports.commit": EndpointRule("leads.import"),
    "imports.discard": EndpointRule("leads.import"),
    # -- campaigns (crm_app/campaigns): the blueprint is a resource's, the routes are not CRUD --
    "campaigns.create": EndpointRule("campaigns.create", lambda w, ws: {"name": "Sweep campaign"}),
    "campaigns.link": EndpointRule(
        "campaigns.edit", lambda w, ws: {"lead_id": first_record(w, ws, "leads").id}),
    "campaigns.unlink": EndpointRule(
        "campaigns.edit", lambda w, ws: {"lead_id": first_record(w, ws, "leads").id}),
    "campaigns.send": EndpointRule("campaigns.send"),
    "campaigns.delete": EndpointRule("campaigns.delete"),
    "campaigns.unsubscribe": EndpointRule(
        "public", lambda w, ws: {"t": "forged-token"}, expected_public=frozenset({400}),
        why="the signed token is the capability: a forged one is a 400 and changes nothing"),
    # -- attachments (a right on a file is a right on its record) --
    "files.upload": EndpointRule(
        "leads.edit", why="upload needs edit on the record; the body has no file, so even "
                          "a member who may gets a 400 and nothing is stored"),
    "files.delete": EndpointRule("leads.delete", hidden=_file_hidden,
                                 why="delete needs edit and delete on the file's record; "
                                     "a file on a lead one may not view is a 404"),
}


def _workspace_name(ws: int) -> str:
    """The exact name that confirms the deletion of workspace ``ws``."""
    with rbac.system():
        return str(rbac.db.session.get(rbac.models.Workspace, ws).name)


def _other_slug(w: SimpleNamespace, ws: int) -> str:
    """The slug of the other of the two main workspaces (no agreement with it yet)."""
    return str(next(t["slug"] for i, t in w.targets.items() if i != ws))


#: Per-endpoint URL ids that must belong together (default: w.targets by kind).
URL_TARGETS: dict[str, Callable[[SimpleNamespace, int], dict[str, int]]] = {
    "rbac_settings.remove_from_team": lambda w, ws: {
        "membership_id": w.targets[ws]["manager"], "member_id": w.targets[ws]["team_member"]},
}

#: Flask-Admin's answers to a refused write, besides 403/404, and why they are accepted
#: (the database must still be unchanged, which the sweep checks):
#: 302: with can_create/can_edit/can_delete False (or a mass action deleting only the
#: rows of the scoped query), Flask-Admin flashes and redirects to the list;
#: 200: an edit whose flush the plugin's guard refused re-renders the form with
#: "Failed to update record" (the record was visible, so the form shows nothing new).
ADMIN_REFUSALS: frozenset[int] = frozenset({302})
ADMIN_EDIT_REFUSED_VISIBLE: frozenset[int] = frozenset({200, 302, 403})


@dataclass(frozen=True)
class Req:
    """One HTTP request of a sweep."""

    method: str
    url: str
    data: Body | None = None
    json: Body | None = None


@dataclass(frozen=True)
class Attempt:
    """A request someone may not make, and the statuses that refuse it."""

    who: str  # a prober key, or "anonymous"
    req: Req
    expected: frozenset[int]
    why: str
    bearer: bool = False  # send as the prober's API token instead of their session
    secret: str | None = None  # text the response must not show

    def describe(self) -> str:
        via = " (Bearer token)" if self.bearer else ""
        return f"{self.who}{via}: {self.req.method} {self.req.url} ({self.why})"


# -- classification ------------------------------------------------------------------------

CRM_ACTIONS = {"create": "create", "edit": "edit", "delete": "delete", "bulk_delete": "delete"}


def family(app: Flask, rule: Rule) -> str:
    """``crm``, ``admin``, ``settings``, ``api`` or ``auth``; fails for an unknown route."""
    if admin_endpoint(app, rule) is not None:
        return "admin"
    blueprint, _, name = rule.endpoint.rpartition(".")
    if rule.endpoint in ENDPOINT_RULES and blueprint in rbac.registry:
        return "auth"  # a resource's own routes that are not the generic CRUD (campaigns)
    if blueprint in rbac.registry and rbac.registry.get(blueprint).model is not None:
        if name not in CRM_ACTIONS:
            raise UnclassifiedRoute(f"CRM route {rule.rule!r} ({rule.endpoint}) changes state "
                                    "but is not create/edit/delete/bulk_delete: add it to "
                                    "tests/security/write_specs.py")
        return "crm"
    if rule.endpoint in ENDPOINT_RULES:
        return {"rbac_api": "api", "rbac_settings": "settings",
                "rbac_oversight": "settings"}.get(blueprint, "auth")
    raise UnclassifiedRoute(
        f"state-changing route {rule.rule!r} (endpoint {rule.endpoint!r}, methods "
        f"{unsafe_methods(rule)}) is unknown to the security sweeps: add it to ENDPOINT_RULES "
        "in tests/security/write_specs.py (its permission and a plausible body)")


def unsafe_routes(app: Flask) -> list[tuple[Rule, str]]:
    """Every (rule, method) that changes state, each classified (or failing)."""
    out = []
    for rule in rules_of(app):
        for method in unsafe_methods(rule):
            family(app, rule)
            id_arguments(rule)
            out.append((rule, method))
    return out


# -- bodies ----------------------------------------------------------------------------------


def crm_form_body(app: Flask, resource: str) -> Body:
    """A valid submission of the resource's record form (owner and client left out)."""
    cfg = next(c for c in (*CONFIGS, INVOICES) if c.name == resource)
    with app.test_request_context():
        form = cfg.form(meta={"csrf": False}, formdata=None)
    body: Body = {}
    for fld in form:
        if fld.name in ("owner_id", "client_id", "deal_id"):
            continue
        kind = fld.type
        if kind in ("StringField", "TextAreaField", "EmailField"):
            body[fld.name] = ("sweep@example.test" if "email" in fld.name
                              else f"Sweep {resource} {fld.name}")
        elif kind in ("SelectField", "RadioField"):
            values = [getattr(c, "value", c[0] if isinstance(c, tuple) else c)
                      for c in (fld.choices or [])]
            body[fld.name] = next((v for v in values if v), "")
        elif kind in ("DecimalField", "IntegerField", "FloatField"):
            body[fld.name] = "12"
        elif kind in ("DateField",):
            body[fld.name] = "2031-01-31"
        elif kind == "BooleanField":
            body[fld.name] = "y"
        else:
            raise UnclassifiedRoute(f"{resource} form field {fld.name} of type {kind}: teach "
                                    "crm_form_body a plausible value")
    return body


def admin_form_body(panel: AdminPanel) -> Body:
    """A plausible Flask-Admin form: a value for each of the view's form columns."""
    columns = list(getattr(panel.view, "form_columns", None) or ["name"])
    return {col: f"Sweep {col}" if col not in ("amount",) else "12" for col in columns}


# -- building requests ----------------------------------------------------------------------


def build_url(app: Flask, rule: Rule, method: str, values: dict[str, Any],
              query: dict[str, Any] | None = None) -> str:
    """The path of ``rule`` with ``values`` (and a query string)."""
    adapter = app.url_map.bind("crm.test")
    return str(adapter.build(rule.endpoint, {**route_values(rule), **values, **(query or {})},
                             method=method))


def url_ids(w: SimpleNamespace, rule: Rule, ws_id: int) -> dict[str, int]:
    """Ids of ``ws_id``'s target objects for the plugin-object arguments of ``rule``."""
    ids = {arg: w.targets[ws_id][kind] for arg, kind in id_arguments(rule).items()
           if not kind.startswith(("record:", "capability:"))}
    if rule.endpoint in URL_TARGETS:
        ids.update(URL_TARGETS[rule.endpoint](w, ws_id))
    return ids


def first_record(w: SimpleNamespace, ws_id: int, resource: str) -> Obj:
    """The first record of ``resource`` in ``ws_id`` (any workspace's if it has none:
    ``w.ws2`` has no deals, and a refusal that does not depend on the record
    still needs an id to send)."""
    own = own_objects(w, ws_id, f"record:{resource}")
    return own[0] if own else next(o for ws in w.objects
                                   for o in own_objects(w, ws, f"record:{resource}"))


def forged_invitation_token(token: str) -> str:
    """The link's token with its signature changed (a guess an attacker could make)."""
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


def legit_request(app: Flask, w: SimpleNamespace, rule: Rule, method: str,
                  ws_id: int, record_ids: dict[str, int] | None = None) -> Req:
    """The request a member with every right would send to ``rule`` in ``ws_id``.

    Record arguments take the first record of the route's resource in the
    workspace unless ``record_ids`` says otherwise; plugin ids come from
    ``w.targets``. Used as is by the CSRF test (an Owner would succeed) and
    as the template of the sweeps' attempts.
    """
    fam = family(app, rule)
    values: dict[str, Any] = url_ids(w, rule, ws_id)
    for arg, kind in id_arguments(rule).items():
        if kind.startswith("record:"):
            values[arg] = (record_ids or {}).get(arg) or first_record(
                w, ws_id, kind.partition(":")[2]).id
        elif kind.startswith("capability:"):
            values[arg] = w.targets[ws_id]["invitation_token"]
    if fam == "crm":
        resource, _, name = rule.endpoint.rpartition(".")
        if name == "bulk_delete":
            ids = (record_ids or {}).get("ids")
            data: Body = {"ids": ids if ids is not None else
                          [first_record(w, ws_id, resource).id]}
        elif name in ("create", "edit"):
            data = crm_form_body(app, resource)
        else:
            data = {}
        return Req(method, build_url(app, rule, method, values), data=data)
    if fam == "admin":
        found = admin_endpoint(app, rule)
        assert found is not None
        panel, name = found
        target = (record_ids or {}).get("id") or _admin_target(w, panel, ws_id)
        if name == "edit_view":
            return Req(method, build_url(app, rule, method, values, {"id": target}),
                       data=admin_form_body(panel))
        if name == "delete_view":
            return Req(method, build_url(app, rule, method, values), data={"id": target})
        if name == "action_view":
            return Req(method, build_url(app, rule, method, values),
                       data={"action": "delete", "rowid": [target]})
        if name == "ajax_update":
            return Req(method, build_url(app, rule, method, values),
                       data={"list_form_pk": target, "name": "Sweep"})
        return Req(method, build_url(app, rule, method, values), data=admin_form_body(panel))
    spec = ENDPOINT_RULES[rule.endpoint]
    body = spec.body(w, ws_id)
    url = build_url(app, rule, method, values)
    return Req(method, url, json=body) if spec.json else Req(method, url, data=body)


def _admin_target(w: SimpleNamespace, panel: AdminPanel, ws_id: int) -> int:
    if panel.kind.startswith("record:"):
        return first_record(w, ws_id, panel.kind.partition(":")[2]).id
    if panel.kind in w.targets[ws_id]:
        return int(w.targets[ws_id][panel.kind])
    return own_objects(w, ws_id, panel.kind)[0].id


# -- who may not -------------------------------------------------------------------------------


def may_not_attempts(app: Flask, w: SimpleNamespace, rule: Rule, method: str) -> list[Attempt]:
    """Attempts of ``rule`` by every prober (or anonymous client) that may not make them.

    "May not" comes from the policy (``Prober.can``) for permission routes
    and from each record's decision for record routes; targets are in the
    prober's own workspace (other workspaces' ids: see the IDOR module).
    """
    fam = family(app, rule)
    if fam == "crm":
        return _crm_attempts(app, w, rule, method)
    if fam == "admin":
        return _admin_attempts(app, w, rule, method)
    return _table_attempts(app, w, rule, method)


def _record_targets(w: SimpleNamespace, prober: Prober, resource: str,
                    action: str) -> list[tuple[Obj, bool]]:
    """Up to two records of the prober's workspace they may not ``action``:
    the first invisible one and the first visible one (``(obj, visible)``)."""
    out: list[tuple[Obj, bool]] = []
    own = [o for o in invisible_records(w, prober, resource, action)
           if o.workspace_id == prober.workspace_id]
    invisible = {o.id for o in invisible_records(w, prober, resource, "view")}
    hidden = next((o for o in own if o.id in invisible), None)
    shown = next((o for o in own if o.id not in invisible), None)
    if hidden is not None:
        out.append((hidden, False))
    if shown is not None:
        out.append((shown, True))
    return out


def _crm_attempts(app: Flask, w: SimpleNamespace, rule: Rule, method: str) -> list[Attempt]:
    resource, _, name = rule.endpoint.rpartition(".")
    action = CRM_ACTIONS[name]
    attempts = []
    for p in w.probers:
        ws = p.workspace_id
        if name == "create":
            if not p.can("create", resource):
                attempts.append(Attempt(p.key, legit_request(app, w, rule, method, ws),
                                        frozenset({403}), f"no {resource}.create"))
        elif name == "bulk_delete":
            if not (p.can("bulk", resource) and p.can("delete", resource)):
                attempts.append(Attempt(p.key, legit_request(app, w, rule, method, ws),
                                        frozenset({403}), f"no {resource}.bulk/delete"))
                continue
            targets = _record_targets(w, p, resource, "delete")
            own_ok = [o for o in own_objects(w, ws, f"record:{resource}")
                      if o not in [t for t, _ in targets]
                      and p.can("delete", resource, w.record_by_id[(resource, o.id)])]
            for obj, visible in targets:
                ids = [obj.id, *(o.id for o in own_ok[:1])]
                attempts.append(Attempt(
                    p.key, legit_request(app, w, rule, method, ws, {"ids": ids}),
                    frozenset({403} if visible else {404}),
                    f"bulk delete including {obj.label} (not deletable)",
                    secret=None if visible else obj.secret))
        else:
            for obj, visible in _record_targets(w, p, resource, action):
                req = legit_request(app, w, rule, method, ws, {"id": obj.id})
                attempts.append(Attempt(
                    p.key, req, frozenset({403} if visible else {404}),
                    f"{action} {obj.label}: {'visible, not allowed' if visible else 'invisible'}",
                    secret=None if visible else obj.secret))
    return attempts


def _admin_attempts(app: Flask, w: SimpleNamespace, rule: Rule, method: str) -> list[Attempt]:
    found = admin_endpoint(app, rule)
    assert found is not None
    panel, name = found
    attempts = []
    for p in w.probers:
        ws = p.workspace_id
        if panel.kind.startswith("record:"):
            resource = panel.kind.partition(":")[2]
            action = {"create_view": "create", "edit_view": "edit", "ajax_update": "edit",
                      "delete_view": "delete", "action_view": "delete"}[name]
            if name == "create_view":
                if not p.can("create", resource):
                    attempts.append(Attempt(p.key, legit_request(app, w, rule, method, ws),
                                            frozenset({403}) | ADMIN_REFUSALS,
                                            f"no {resource}.create"))
                continue
            for obj, visible in _record_targets(w, p, resource, action):
                req = legit_request(app, w, rule, method, ws, {"id": obj.id})
                if visible:
                    expected = (ADMIN_EDIT_REFUSED_VISIBLE if name == "edit_view"
                                else frozenset({403, 404, 400}) | ADMIN_REFUSALS)
                else:
                    expected = frozenset({403, 404, 400}) | ADMIN_REFUSALS
                attempts.append(Attempt(p.key, req, expected,
                                        f"admin {name} on {obj.label} "
                                        f"({'visible' if visible else 'invisible'})",
                                        secret=None if visible else obj.secret))
        elif panel.read_only:
            # The plugin's panels are read-only for everyone, Owners included.
            attempts.append(Attempt(p.key, legit_request(app, w, rule, method, ws),
                                    frozenset({403, 404, 400}) | ADMIN_REFUSALS,
                                    f"read-only panel {panel.endpoint}"))
        else:
            raise UnclassifiedRoute(f"writable Flask-Admin panel {panel.endpoint} of a plugin "
                                    "model: teach the write sweep who may write to it")
    return attempts


def _table_attempts(app: Flask, w: SimpleNamespace, rule: Rule, method: str) -> list[Attempt]:
    spec = ENDPOINT_RULES[rule.endpoint]
    perm = spec.permission
    attempts = []
    if perm in ("self", "public") or perm.startswith("own:"):
        # Nobody signed in: the login page (pages) or 401 (API).
        req = legit_request(app, w, rule, method, w.ws.id)
        if rule.endpoint == "rbac_settings.accept_invitation":
            req = Req(method, req.url.replace(
                w.targets[w.ws.id]["invitation_token"],
                forged_invitation_token(w.targets[w.ws.id]["invitation_token"])), data=req.data)
        expected = spec.expected_public if perm == "public" else frozenset({302, 401})
        attempts.append(Attempt("anonymous", req, expected, f"anonymous ({perm})"))
    for p in w.probers:
        ws = p.workspace_id
        refused = frozenset({404} if spec.hidden and spec.hidden(w, p, ws) else {403})
        if perm == "owner":
            if not p.access.is_owner:
                attempts.append(Attempt(p.key, legit_request(app, w, rule, method, ws),
                                        refused, "only an Owner"))
        elif perm == "own:token":
            for obj in own_objects(w, ws, "token"):
                if obj.id != w.tokens_by_membership.get(p.membership.id):
                    req = Req(method, build_url(app, rule, method, {"token_id": obj.id}),
                              data={})
                    attempts.append(Attempt(p.key, req, frozenset({404}),
                                            f"someone else's {obj.label}"))
                    break
        elif perm == "own:notification":
            for obj in own_objects(w, ws, "notification"):
                if obj.id != w.notifications_by_membership.get(p.membership.id):
                    req = Req(method, build_url(app, rule, method, {"notification_id": obj.id}),
                              data=None if spec.json else {}, json={} if spec.json else None)
                    attempts.append(Attempt(p.key, req, frozenset({404}),
                                            f"someone else's {obj.label}", secret=obj.secret,
                                            bearer=spec.json))
                    break
        elif perm == "self":
            if rule.endpoint == "rbac_settings.switch_workspace":
                other = next(i for i in w.targets if i != ws)
                if not any(ms_ws == other for ms_ws in w.user_workspaces[p.key]):
                    attempts.append(Attempt(p.key, legit_request(app, w, rule, method, ws),
                                            frozenset({403}), "not a member there"))
        elif perm == "public":
            continue
        else:
            resource, _, action = perm.partition(".")
            if not p.can(action, resource):
                for bearer in ((False, True) if spec.json else (False,)):
                    attempts.append(Attempt(p.key, legit_request(app, w, rule, method, ws),
                                            refused, f"no {perm}", bearer=bearer))
    return attempts


def foreign_attempts(app: Flask, w: SimpleNamespace, rule: Rule, method: str) -> list[Attempt]:
    """The route with another workspace's ids, by members who may do it in their own.

    The ws Owner aims at ``w.ws2``'s objects and ws2's Owner (dual) at
    ``w.ws``'s, one id argument at a time (the others stay valid, own ids):
    the answer must be 404 (the id does not exist for them). Routes without
    id arguments give no attempt.
    """
    args = {a: k for a, k in id_arguments(rule).items() if not k.startswith("capability:")}
    panel = admin_endpoint(app, rule)
    if panel is not None and panel[1] in ("edit_view", "delete_view", "action_view",
                                          "ajax_update"):
        args = {"id": panel[0].kind}
    attempts = []
    for key in ("owner", "dual"):
        p = w.prober[key]
        ws, other = p.workspace_id, next(i for i in w.targets if i != p.workspace_id)
        for arg, kind in args.items():
            if kind.startswith("record:"):
                resource = kind.partition(":")[2]
                objs = own_objects(w, other, f"record:{resource}")[:1]
                for obj in objs:
                    req = legit_request(app, w, rule, method, ws, {arg: obj.id})
                    expected = (frozenset({404}) if panel is None else
                                frozenset({404, 403, 400}) | ADMIN_REFUSALS)
                    attempts.append(Attempt(key, req, expected, f"{arg}={obj.label} of the "
                                            "other workspace", secret=obj.secret))
                continue
            base = legit_request(app, w, rule, method, ws)
            foreign_id = (w.targets[other][kind] if kind in w.targets[other]
                          else own_objects(w, other, kind)[0].id)
            if panel is not None:
                req = legit_request(app, w, rule, method, ws, {"id": foreign_id})
                expected = frozenset({404, 403, 400}) | ADMIN_REFUSALS
            else:
                values = {**url_ids(w, rule, ws), arg: foreign_id}
                req = Req(method, build_url(app, rule, method, values), data=base.data,
                          json=base.json)
                expected = frozenset({404})
            attempts.append(Attempt(key, req, expected, f"{arg}={kind} #{foreign_id} of the "
                                    "other workspace"))
            if ENDPOINT_RULES.get(rule.endpoint, EndpointRule("")).json:
                attempts.append(Attempt(key, req, expected, f"{arg}={kind} #{foreign_id} of "
                                        "the other workspace", bearer=True))
    return attempts
