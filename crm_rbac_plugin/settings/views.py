"""The settings pages: members' access, segregation of duties, plan, API tokens.

The settings blueprint's entry point: :func:`register` mounts its pages
with their tabs, the role pages (:mod:`.role_views`), the team pages
(:mod:`.team_views`) and the sharing pages (:mod:`.sharing_views`) included.

Thin views over :mod:`..roles` and :mod:`..tokens`: the service layer makes
every decision about what may be granted, given or removed, and each change
goes through :func:`.blueprint.attempt`, which commits it or rolls it back
and shows the refusal (403, or 400 with the message at the input it names).

Everything acts in the current member's workspace
(:func:`.blueprint.acting_access`); an id from another workspace is a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, flash, redirect, request, url_for

from .. import approvals, files, pages, queries, quotas, roles, tokens
from ..certification import report
from ..config import setting
from ..decorators import login_required, require_permission
from ..models import utcnow
from ..pages import ConfirmForm, acting_access, can, not_found
from ..policy import Decision
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from . import (  # noqa: F401  (pages on the same blueprint)
    alert_views,
    approval_views,
    condition_views,
    lifecycle_views,
    member_list_views,
    mfa_views,
    notification_views,
    review_views,
    role_overview_views,
    role_user_views,
    role_views,
    security_views,
    sharing_views,
    team_views,
    workspace_views,
)
from .blueprint import attempt, bp, membership_or_404, render
from .condition_fields import condition_data
from .forms import AssignRoleForm, ConflictForm, PlanForm, TokenForm, choices


def register(app: Flask) -> None:
    """Mount the pages under ``RBAC_SETTINGS_URL_PREFIX`` (None: not at all), with their tabs."""
    prefix = setting("RBAC_SETTINGS_URL_PREFIX", app)
    if prefix is None:
        return
    app.register_blueprint(bp, url_prefix=prefix)
    # A members CSV over the export threshold waits; approved, this produces it.
    approvals.export_producer(app, member_list_views.produce_approved_members, via="members")
    approvals.export_producer(app, review_views.produce_approved_report,
                              via=report.REPORT_EXPORT)
    _add_tabs(app)
    mfa_views.add_tabs(app)
    security_views.add_tabs(app)
    notification_views.add_tabs(app)
    approval_views.add_tabs(app)
    alert_views.add_tabs(app)
    review_views.add_tabs(app)
    lifecycle_views.add_tabs(app)


def _add_tabs(app: Flask) -> None:
    """The blueprint's tabs: the workspace's settings first (orders 10 to 70), the
    member's own pages last (200 and 210); the oversight pages' tabs go between."""
    s = bp.name
    pages.add_tab(app, f"{s}.roles", "Roles", order=10, permission="roles.view",
                  highlight=[f"{s}.new_role", f"{s}.edit_role", f"{s}.delete_role",
                             f"{s}.role_condition", f"{s}.role_users"])
    pages.add_tab(app, f"{s}.role_overview", "Overview", order=15, permission="roles.view")
    pages.add_tab(app, f"{s}.compare", "Compare roles", order=20, permission="roles.view")
    pages.add_tab(app, f"{s}.members", "Members", order=30, permission="members.view",
                  highlight=[f"{s}.member_access", f"{s}.team_member", f"{s}.invite",
                             f"{s}.reassign"])
    pages.add_tab(app, f"{s}.conflicts", "Segregation of duties", order=40,
                  permission="roles.view")
    pages.add_tab(app, f"{s}.plan", "Plan", order=50, permission="billing.view")
    pages.add_tab(app, f"{s}.departments", "Departments", order=60, permission="members.view",
                  highlight=[f"{s}.department_roles"])
    pages.add_tab(app, f"{s}.sharing", "Sharing", order=70, permission="settings.view",
                  highlight=[f"{s}.new_agreement", f"{s}.edit_agreement"],
                  badge=sharing_views.pending_badge)
    pages.add_tab(app, f"{s}.profile", "Profile", order=200, group="personal")
    pages.add_tab(app, f"{s}.tokens", "API tokens", order=210, group="personal")


# -- helpers ---------------------------------------------------------------------

@bp.get("/")
@login_required
def index() -> Any:
    """Go to the first administration page the member may see, else to their profile."""
    if can("roles.view"):
        return redirect(url_for(".roles"))
    if can("members.view"):
        return redirect(url_for(".members"))
    return redirect(url_for(".profile"))


# -- members ---------------------------------------------------------------------


def _assign_form() -> AssignRoleForm:
    form = AssignRoleForm()
    form.role_id.choices = choices([("", "— choose a role —")] + [
        (r.id, r.name) for r in queries.workspace_roles(current_rbac, acting_access().workspace_id)])
    return form


def _member_page(membership: Any, *, form: AssignRoleForm | None = None, status: int = 200,
                 page_errors: list[str] | None = None) -> tuple[str, int]:
    rbac = current_rbac
    access = rbac.access_for(membership)
    assignments = sorted(membership.member_roles, key=lambda mr: mr.id)
    return render("member_access.html", status, membership=membership, member_access=access,
                  group_roles=roles.member_group_roles(rbac, membership),
                  condition_text=condition_views.condition_text,
                  assignments=assignments, status_of=queries.assignment_status,
                  chain=queries.role_chain,
                  matrix=queries.effective_matrix(rbac, membership, access),
                  columns=queries.module_columns(queries.ordered_modules(rbac.registry)),
                  form=form or _assign_form(), confirm=ConfirmForm(),
                  can_edit=can("members.edit") and roles.member_in_scope(
                      acting_access(), "edit", membership),
                  page_errors=page_errors or [])


@bp.get("/members/<int:membership_id>/access")
@require_permission("members", "view")
def member_access(membership_id: int) -> Any:
    """A member's roles (with time windows) and effective matrix, with each permission's origin."""
    return _member_page(membership_or_404(membership_id))


@bp.post("/members/<int:membership_id>/roles")
@require_permission("members", "edit")
@require_recent_mfa
def assign(membership_id: int) -> Any:
    """Give the member a role, optionally from/until a UTC date and time."""
    rbac, access = current_rbac, acting_access()
    membership = membership_or_404(membership_id)
    form = _assign_form()
    if not form.validate_on_submit():
        return _member_page(membership, form=form, status=400)
    role = queries.role_in(rbac, access.workspace_id, form.role_id.data)
    page_errors: list[str] = []
    outcome = attempt(lambda: roles.assign_role(rbac, access, membership, role,
                                                starts_at=form.starts_at.data,
                                                expires_at=form.expires_at.data,
                                                condition=condition_data(form)),
                      form, errors=page_errors)
    if not outcome.ok:
        return _member_page(membership, form=form, status=outcome.status,
                            page_errors=page_errors)
    flash(f"{membership.display_name} now holds {role.name}.", "success")
    return redirect(url_for(".member_access", membership_id=membership.id))


@bp.post("/members/<int:membership_id>/roles/<int:member_role_id>/remove")
@require_permission("members", "edit")
@require_recent_mfa
def unassign(membership_id: int, member_role_id: int) -> Any:
    """Take one role assignment away."""
    rbac, access = current_rbac, acting_access()
    membership = membership_or_404(membership_id)
    assignment = next((mr for mr in membership.member_roles if mr.id == member_role_id), None)
    if assignment is None:
        return not_found()
    if not ConfirmForm().validate_on_submit():
        return _member_page(membership, status=400, page_errors=["The form expired; try again."])
    name = assignment.role.name
    page_errors: list[str] = []
    outcome = attempt(lambda: roles.remove_role(rbac, access, assignment), errors=page_errors)
    if not outcome.ok:
        return _member_page(membership, status=outcome.status, page_errors=page_errors)
    flash(f"{membership.display_name} no longer holds {name}.", "success")
    return redirect(url_for(".member_access", membership_id=membership.id))


# -- segregation of duties ----------------------------------------------------------


@bp.route("/conflicts", methods=["GET", "POST"])
@require_permission("roles", "view")
def conflicts() -> Any:
    """Pairs of roles no member may hold together: list and add."""
    rbac, access = current_rbac, acting_access()
    form = ConflictForm()
    form.role_a_id.choices = form.role_b_id.choices = choices(
        (r.id, r.name) for r in queries.workspace_roles(rbac, access.workspace_id))
    status, page_errors = 200, []
    if request.method == "POST":
        if form.validate_on_submit():
            a = queries.role_in(rbac, access.workspace_id, form.role_a_id.data)
            b = queries.role_in(rbac, access.workspace_id, form.role_b_id.data)
            outcome = attempt(lambda: roles.add_conflict(rbac, access, a, b), form,
                              fallback=form.role_b_id, errors=page_errors)
            if outcome.ok:
                flash(f"{a.name} and {b.name} can no longer be held together.", "success")
                return redirect(url_for(".conflicts"))
            status = outcome.status
        else:
            status = 400
    return render("conflicts.html", status, form=form, confirm=ConfirmForm(),
                  pairs=queries.workspace_conflicts(rbac, access.workspace_id),
                  can_manage=can("roles.manage"), page_errors=page_errors)


@bp.post("/conflicts/<int:conflict_id>/remove")
@require_permission("roles", "manage")
def remove_conflict(conflict_id: int) -> Any:
    rbac, access = current_rbac, acting_access()
    pair = queries.conflict_in(rbac, access.workspace_id, conflict_id)
    if pair is None:
        return not_found()
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".conflicts"))
    roles.remove_conflict(rbac, access, pair)
    rbac.db.session.commit()
    flash("The pair was removed.", "success")
    return redirect(url_for(".conflicts"))


# -- plan -------------------------------------------------------------------------------


@bp.route("/plan", methods=["GET", "POST"])
@login_required
def plan() -> Any:
    """The workspace's plan, the modules, seats and storage each plan includes.

    Whoever holds ``billing.view`` reads it; only an Owner changes the plan.
    """
    rbac = current_rbac
    access = rbac.current_access()
    if access is None or not (access.is_owner or rbac.decide(access, "view", "billing")):
        return rbac.refuse(Decision(False, "Seeing the plan needs billing.view."), 403)
    if request.method == "POST" and not access.is_owner:
        return rbac.refuse(Decision(False, "Only an Owner can change the plan."), 403)
    workspace = rbac.db.session.get(rbac.models.Workspace, access.workspace_id)
    plans = list(setting("RBAC_PLANS"))
    form = PlanForm(data={"plan": workspace.plan})
    form.plan.choices = choices((p, p.title()) for p in plans)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: roles.set_plan(rbac, access, workspace, form.plan.data),
                              form, fallback=form.plan)
            if outcome.ok:
                flash(f"The workspace is now on the {workspace.plan} plan.", "success")
                return redirect(url_for(".plan"))
            status = outcome.status
        else:
            status = 400
    return render("plan.html", status, form=form if access.is_owner else None, workspace=workspace,
                  modules=list(queries.ordered_modules(rbac.registry)),
                  plans=[(p, set(queries.plan_modules(rbac, p))) for p in plans],
                  seats=quotas.seat_usage(rbac, workspace),
                  seat_limits={p: quotas.seat_limit(p) for p in plans},
                  storage=files.storage_usage(rbac, workspace),
                  storage_limits={p: files.quota_for(p) for p in plans})


# -- API tokens -------------------------------------------------------------------------


def _my_membership() -> Any:
    rbac = current_rbac
    access = rbac.current_access()
    if access is None or not access.active:
        return rbac.refuse(Decision(False, "You are not an active member of this workspace."))
    return rbac.db.session.get(rbac.models.Membership, access.membership_id)


@bp.route("/tokens", methods=["GET", "POST"], endpoint="tokens")
@login_required
@require_recent_mfa
def tokens_page() -> Any:
    """Create (the plaintext is shown once), list and revoke one's own API tokens.

    A recent MFA check is asked first when the member is enrolled (or must
    be): a token acts as the member without a session, and outlives signing
    out and password changes, so a stolen session must not mint one.
    """
    rbac = current_rbac
    membership = _my_membership()
    form = TokenForm()
    created, status = None, 200
    if request.method == "POST":
        if form.validate_on_submit():
            outcome = attempt(lambda: tokens.create_token(rbac, membership, form.name.data or "",
                                                          expires_at=form.expires_at.data),
                              form, fallback=form.name)
            if outcome.ok:
                token, plaintext = outcome.value
                created = {"token": token, "plaintext": plaintext}
                status = 201
                form = TokenForm(formdata=None)
            else:
                status = outcome.status
        else:
            status = 400
    return render("tokens.html", status, form=form, created=created, confirm=ConfirmForm(),
                  tokens=queries.member_tokens(rbac, membership.id), now=utcnow(),
                  api_prefix=setting("RBAC_API_URL_PREFIX"))


@bp.post("/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> Any:
    rbac = current_rbac
    membership = _my_membership()
    token = next((t for t in queries.member_tokens(rbac, membership.id) if t.id == token_id),
                 None)
    if token is None:
        return not_found()
    if ConfirmForm().validate_on_submit():
        tokens.revoke_token(rbac, membership, token)
        rbac.db.session.commit()
        flash(f"Token {token.name} revoked.", "success")
    else:
        flash("The form expired; try again.", "error")
    return redirect(url_for(".tokens"))
