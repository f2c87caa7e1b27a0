"""The server side of the load run (``bench/load.py``): its world and the app gunicorn serves.

Two variants of one app, each served by its own gunicorn (``BENCH_LOAD_VARIANT``):

* ``plugin``: ``/load/rbac/...``: list, detail, create, edit and export of
  leads guarded by the plugin (``require_permission``, ``record_required``,
  the query filter and the flush guard), exactly as a CRM page is.
* ``hand``: ``/load/hand/...``: the same five pages with the plugin off for
  them (its request hooks skipped, the user loaded alone by its session
  token, every statement in ``rbac.system()``) and each member's rows
  filtered by a hand-written WHERE, as figure 3*'s hand pages are
  (``bench/views.py``): the scope, department and workspace come in the
  query string, so the baseline pays nothing to learn them. The hand WHERE
  reads the sharing agreements itself, so both variants answer the same rows.

Both answer the same JSON (or CSV for the export) with ``workspace_id`` and
``owner_id`` on every row, which is what the load client checks each answer
against.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
import random
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, abort, jsonify, request
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf
from werkzeug.security import generate_password_hash

from crm_app import create_app
from crm_app.auth import token_of
from crm_app.extensions import db, login_manager
from crm_app.models import Lead, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import csvsafe, record_required, require_permission, sharing, tokens
from crm_rbac_plugin import workspaces as ws_mod
from crm_rbac_plugin.identity import access_for

from . import world as world_mod

VARIANT_ENV = "BENCH_LOAD_VARIANT"
PASSWORD = "load-password"
PAGE = 25
EXPORT_ROWS = 100
SCOPES = ("own", "department", "all")
#: Config both servers share: sign-ins all come from 127.0.0.1, so the per-IP limit is lifted.
SERVER_CONFIG: dict[str, Any] = {
    "RBAC_UNOWNED_VISIBLE": True,
    "RBAC_SIGN_IN_RATE_LIMIT": "100000 per minute",
    "CRM_DEMO_LOGIN_HINTS": False,
    "CRM_HTTPS": False,
    "CRM_WORKER_HEADER": True,
    "RBAC_CACHE_SIZE": 20_000,
}


@dataclass
class LoadMember:
    """One signed-in member of the load, as the client sees it."""

    email: str
    user_id: int
    membership_id: int
    scope: str
    department_id: int
    own_leads: list[int]


@dataclass
class LoadWorld:
    """Everything the client needs to drive the load and check answers (JSON-able)."""

    crm_ws: int
    other_ws: int
    leads: int
    members: list[LoadMember]
    #: user id -> department id, for the department scope's rows.
    departments: dict[int, int]
    agreement_id: int
    crm_owner_token: str
    other_owner_token: str
    #: The member whose role moves from all to own scope, and the roles involved.
    role_probe: int  # index into members
    role_probe_assignment: int  # its all-scope MemberRole id
    own_role_id: int
    share_probe: int  # index into members: an all-scope member who reads shared leads
    #: Leads the probes see before the change and must not after (lead id, ws, owner).
    role_sentinels: list[tuple[int, int, int | None]] = field(default_factory=list)
    share_sentinels: list[tuple[int, int, int | None]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadWorld:
        data = dict(data)
        data["members"] = [LoadMember(**m) for m in data["members"]]
        data["departments"] = {int(k): v for k, v in data["departments"].items()}
        for key in ("role_sentinels", "share_sentinels"):
            data[key] = [tuple(s) for s in data[key]]
        return cls(**data)


def build_world(url: str, members: int, leads: int, seed: int = 23) -> LoadWorld:
    """Seed the load's world on an empty database ``url`` and return its description.

    The bench world (``bench/world.py``) with ``members`` + 1 members in five
    departments; member 0 is the Owner (the admin client), members 1.. hold
    one of three custom roles (view, create, edit and export of leads at
    own, department or all scope) in turn. The ``other`` workspace shares
    ``leads.view`` with the CRM workspace through an active agreement.
    """
    app = world_mod.make_app(url)
    sizes = world_mod.Sizes(crm_members=members + 1, departments=5, role_counts=(),
                            role_members=0)
    with app.app_context():
        world = world_mod.seed(sizes)
        world_mod.load_leads(world, sizes, leads)
        with rbac.system():
            result = _shape(world, members, leads, random.Random(seed))
        db.session.remove()
        db.engine.dispose()
    return result


def _shape(world: world_mod.World, members: int, leads: int, rng: random.Random) -> LoadWorld:
    m = rbac.models
    crm = db.session.get(m.Workspace, world.crm_ws)
    role_ids = {}
    for scope in SCOPES:
        role = m.Role(workspace=crm, key=f"load_{scope}", name=f"Load {scope}",
                      description=f"Works the leads at {scope} scope.")
        for action in ("view", "create", "edit", "export"):
            ws_mod.add_grant(rbac, role, "leads", action, scope)
        db.session.add(role)
        db.session.flush()
        role_ids[scope] = role.id
    rows = db.session.execute(sa.select(m.Membership).where(
        m.Membership.workspace_id == world.crm_ws).order_by(m.Membership.id)).scalars().all()
    owner_ms, load_ms = rows[0], rows[1:members + 1]
    db.session.execute(sa.delete(m.MemberRole).where(
        m.MemberRole.membership_id.in_([x.id for x in load_ms])))
    scopes = [SCOPES[k % 3] for k in range(len(load_ms))]
    assignments = [m.MemberRole(membership_id=x.id, role_id=role_ids[s])
                   for x, s in zip(load_ms, scopes, strict=True)]
    db.session.add_all(assignments)
    other_owner = db.session.scalar(sa.select(m.Membership).where(
        m.Membership.workspace_id == world.other_ws))
    other_owner_role = db.session.scalar(sa.select(m.Role).where(
        m.Role.workspace_id == world.other_ws, m.Role.is_owner.is_(True)))
    db.session.add(m.MemberRole(membership_id=other_owner.id, role_id=other_owner_role.id))
    db.session.execute(sa.update(User).values(password_hash=generate_password_hash(PASSWORD)))
    db.session.flush()
    agreement = sharing.create_agreement(rbac, access_for(rbac, other_owner.id),
                                         workspace=world.crm_ws, permissions=["leads.view"])
    agreement.status = "active"
    crm_token = tokens.create_token(rbac, owner_ms, "load run")[1]
    other_token = tokens.create_token(rbac, other_owner, "load run")[1]
    db.session.commit()
    users = {u.id: u.email for u in db.session.scalars(sa.select(User))}
    out = [LoadMember(email=users[x.user_id], user_id=x.user_id, membership_id=x.id, scope=s,
                      department_id=x.department_id, own_leads=_owned(x.user_id, world.crm_ws))
           for x, s in zip(load_ms, scopes, strict=True)]
    alls = [k for k, s in enumerate(scopes) if s == "all"]
    role_probe, share_probe = alls[0], alls[1 % len(alls)]
    probe_uid = out[role_probe].user_id
    t = Lead.__table__
    others = db.session.execute(sa.select(t.c.id, t.c.workspace_id, t.c.owner_id).where(
        t.c.workspace_id == world.crm_ws, t.c.owner_id != probe_uid)).all()
    shared = db.session.execute(sa.select(t.c.id, t.c.workspace_id, t.c.owner_id).where(
        t.c.workspace_id == world.other_ws)).all()
    return LoadWorld(
        crm_ws=world.crm_ws, other_ws=world.other_ws, leads=leads, members=out,
        departments={x.user_id: x.department_id for x in rows},
        agreement_id=agreement.id, crm_owner_token=crm_token, other_owner_token=other_token,
        role_probe=role_probe, role_probe_assignment=assignments[role_probe].id,
        own_role_id=role_ids["own"], share_probe=share_probe,
        role_sentinels=[tuple(r) for r in rng.sample(others, min(50, len(others)))],
        share_sentinels=[tuple(r) for r in rng.sample(shared, min(50, len(shared)))])


def _owned(user_id: int, ws: int) -> list[int]:
    t = Lead.__table__
    return list(db.session.scalars(sa.select(t.c.id).where(
        t.c.owner_id == user_id, t.c.workspace_id == ws).order_by(t.c.id.desc()).limit(20)))


# -- the served app ----------------------------------------------------------------------


def server() -> Flask:
    """Build the app of one variant (``BENCH_LOAD_VARIANT``); gunicorn calls this."""
    variant = os.environ.get(VARIANT_ENV, "plugin")
    if variant not in ("plugin", "hand"):
        raise RuntimeError(f"{VARIANT_ENV} must be plugin or hand, not {variant!r}")
    app = create_app(dict(SERVER_CONFIG))
    app.register_blueprint(blueprint(variant))
    if variant == "hand":
        _plugin_off_for_load_pages(app)
    return app


def _plugin_off_for_load_pages(app: Flask) -> None:
    """Skip the plugin's request hooks and its user loader on the hand-filtered pages.

    Sign-in (``/login``) still runs through the demo and the plugin: only
    the measured pages are "the app without the plugin", as figure 3*'s
    baselines are (``bench/world.py``).
    """
    def hand_page() -> bool:
        return (request.endpoint or "").startswith("load.")

    def skip(hook: Any) -> Any:
        if not getattr(hook, "__module__", "").startswith("crm_rbac_plugin"):
            return hook

        @functools.wraps(hook)
        def unless_hand(*args: Any) -> Any:
            if hand_page():
                return args[0] if args else None
            return hook(*args)
        return unless_hand

    for hooks in (app.before_request_funcs, app.after_request_funcs):
        for key, funcs in hooks.items():
            hooks[key] = [skip(f) for f in funcs]
    loader = login_manager._user_callback

    def load(login_id: str) -> Any:
        if hand_page():  # the demo's login id is ``<session_token>.<session id>``
            user = db.session.scalar(
                sa.select(User).where(User.session_token == token_of(login_id)))
            return user if user is not None and user.is_active_user else None
        return loader(login_id)

    login_manager.user_loader(load)


def _row(lead: Any) -> dict[str, Any]:
    return {"id": lead.id, "workspace_id": lead.workspace_id, "owner_id": lead.owner_id,
            "name": lead.name, "company": lead.company, "status": lead.status}


def _page(limit: int) -> sa.Select[tuple[Lead]]:
    stmt = sa.select(Lead).order_by(Lead.id.desc()).limit(limit)
    before = request.args.get("before", type=int)
    return stmt.where(Lead.id < before) if before else stmt


def _csv(leads: list[Any]) -> Any:
    out = io.StringIO()
    writer = csvsafe.writer(out)
    writer.writerow(["id", "workspace_id", "owner_id", "name", "company", "status"])
    for lead in leads:
        writer.writerow([lead.id, lead.workspace_id, lead.owner_id if lead.owner_id else "",
                         lead.name, lead.company, lead.status])
    return out.getvalue(), 200, {"Content-Type": "text/csv; charset=utf-8"}


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400)
    return body


def blueprint(variant: str) -> Blueprint:
    """The five pages of ``variant`` under ``/load``, and a CSRF token for the client."""
    bp = Blueprint("load", __name__, url_prefix="/load")

    @bp.get("/csrf")
    @login_required
    def csrf_token() -> Any:
        return jsonify(csrf=generate_csrf())

    (_plugin_pages if variant == "plugin" else _hand_pages)(bp)
    return bp


def _plugin_pages(bp: Blueprint) -> None:
    @bp.get("/rbac/leads")
    @require_permission("leads", "view")
    def rbac_list() -> Any:
        return jsonify([_row(x) for x in db.session.scalars(_page(PAGE))])

    @bp.get("/rbac/leads/<int:id>")
    @record_required("leads", "view", name="lead")
    def rbac_detail(lead: Lead) -> Any:
        return jsonify(_row(lead))

    @bp.post("/rbac/leads")
    @require_permission("leads", "create")
    def rbac_create() -> Any:
        body = _body()
        lead = Lead(workspace_id=rbac.current_access().workspace_id, owner_id=current_user.id,
                    name=str(body.get("name", ""))[:100], company=str(body.get("company", "")),
                    status="new", source="web", created_at=dt.datetime.now(dt.UTC).replace(
                        tzinfo=None))
        db.session.add(lead)
        db.session.commit()
        return jsonify(_row(lead)), 201

    @bp.post("/rbac/leads/<int:id>")
    @record_required("leads", "edit", name="lead")
    def rbac_edit(lead: Lead) -> Any:
        lead.status = str(_body().get("status", "contacted"))[:20]
        db.session.commit()
        return jsonify(_row(lead))

    @bp.get("/rbac/leads.csv")
    @require_permission("leads", "export")
    def rbac_export() -> Any:
        return _csv(list(db.session.scalars(_page(EXPORT_ROWS))))


def _hand_where(action: str = "view") -> sa.ColumnElement[bool]:
    """The member's rows, written by hand: own workspace, or shared to it, at their scope."""
    ws = request.args.get("ws", type=int)
    scope = request.args.get("scope", "own")
    m = rbac.models
    if scope == "all":
        by_scope: sa.ColumnElement[bool] = sa.true()
    else:
        mine = [Lead.owner_id == current_user.id, Lead.owner_id.is_(None)]
        if scope == "department":
            mine.append(Lead.owner_id.in_(sa.select(m.Membership.user_id).where(
                m.Membership.workspace_id == ws,
                m.Membership.department_id == request.args.get("dept", type=int))))
        elif scope != "own":
            abort(400)
        by_scope = sa.or_(*mine)
    if action != "view":
        return sa.and_(Lead.workspace_id == ws, by_scope)
    A, P = m.SharingAgreement, m.SharingPermission
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    shared = (sa.select(A.granting_workspace_id).join(P, P.agreement_id == A.id)
              .where(A.receiving_workspace_id == ws, A.status == "active",
                     sa.or_(A.expires_at.is_(None), A.expires_at > now),
                     P.resource == "leads", P.action == "view"))
    return sa.and_(sa.or_(Lead.workspace_id == ws, Lead.workspace_id.in_(shared)), by_scope)


def _hand_pages(bp: Blueprint) -> None:
    @bp.get("/hand/leads")
    @login_required
    def hand_list() -> Any:
        with rbac.system():
            return jsonify([_row(x) for x in db.session.scalars(_page(PAGE).where(
                _hand_where()))])

    @bp.get("/hand/leads/<int:id>")
    @login_required
    def hand_detail(id: int) -> Any:
        with rbac.system():
            lead = db.session.scalar(sa.select(Lead).where(Lead.id == id, _hand_where()))
            if lead is None:
                abort(404)
            return jsonify(_row(lead))

    @bp.post("/hand/leads")
    @login_required
    def hand_create() -> Any:
        body = _body()
        with rbac.system():
            lead = Lead(workspace_id=request.args.get("ws", type=int), owner_id=current_user.id,
                        name=str(body.get("name", ""))[:100],
                        company=str(body.get("company", "")), status="new", source="web",
                        created_at=dt.datetime.now(dt.UTC).replace(tzinfo=None))
            db.session.add(lead)
            db.session.commit()
            return jsonify(_row(lead)), 201

    @bp.post("/hand/leads/<int:id>")
    @login_required
    def hand_edit(id: int) -> Any:
        with rbac.system():
            lead = db.session.scalar(sa.select(Lead).where(Lead.id == id, _hand_where("edit")))
            if lead is None:
                abort(404)
            lead.status = str(_body().get("status", "contacted"))[:20]
            db.session.commit()
            return jsonify(_row(lead))

    @bp.get("/hand/leads.csv")
    @login_required
    def hand_export() -> Any:
        with rbac.system():
            return _csv(list(db.session.scalars(_page(EXPORT_ROWS).where(_hand_where()))))
