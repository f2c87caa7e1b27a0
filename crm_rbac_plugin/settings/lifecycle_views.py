"""The workspace lifecycle's pages (:mod:`..lifecycle`).

- ``GET <prefix>/workspaces``: the signed-in user's workspaces, the "New
  workspace" form, and the deleted workspaces they own with a Restore button
  each (the only place a deleted workspace shows, and only to its Owners).
- ``POST <prefix>/workspaces/new``: create a workspace; the user becomes its
  Owner and acts there from now on.
- ``POST <prefix>/workspaces/restore``: restore a deleted workspace of
  ``workspace_id`` (its Owners only; anyone else gets a 404).
- ``GET <prefix>/lifecycle``: the Owner's page of the current workspace:
  transfer ownership, download the export, delete.
- ``POST <prefix>/lifecycle/transfer``, ``POST <prefix>/lifecycle/delete``,
  ``GET <prefix>/lifecycle/export``: Owners only.

Every change goes through :func:`.blueprint.attempt`: committed whole or
rolled back with the refusal shown at the field it names.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, flash, redirect, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import Optional

from .. import lifecycle, pages, workspaces
from ..config import setting
from ..decorators import login_required
from ..identity import set_workspace, signed_in_user
from ..inputs import is_digits
from ..pages import not_found
from ..policy import Decision
from ..proxies import current_rbac
from ..security import stepup
from .blueprint import attempt, bp, render


class NewWorkspaceForm(FlaskForm):
    name = StringField("Name", validators=[Optional()],
                       description="You become its Owner; you can invite members next.")


class RestoreForm(FlaskForm):
    workspace_id = HiddenField()


class TransferForm(FlaskForm):
    membership_id = SelectField("New Owner", choices=[], validate_choice=False,
                                description="An active member. They become Owner; you become "
                                            "an Admin.")
    password = PasswordField("Your password", validators=[Optional()])


class DeleteForm(FlaskForm):
    confirm = StringField("Type the workspace's name to confirm", validators=[Optional()])


def add_tabs(app: Flask) -> None:
    """The Owner's "Workspace" tab and everyone's "Workspaces" tab."""
    s = bp.name
    pages.add_tab(app, f"{s}.workspace_lifecycle", "Workspace", order=55, owner=True)
    pages.add_tab(app, f"{s}.workspaces", "Workspaces", order=215, group="personal")


def _owner_access() -> Any:
    """The current Owner's access, or the 403 refusal response."""
    access = current_rbac.current_access()
    if access is None or not access.active or not access.is_owner:
        return None
    return access


def _refuse_non_owner() -> Any:
    return current_rbac.refuse(Decision(False, "Only an Owner can do that."), 403)


def _mfa() -> tuple[bool, bool]:
    """(enrolled, fresh) of the signed-in user's two-factor authentication."""
    state = stepup.mfa_state()
    if state is None:
        return False, False
    return state.enrolled, state.fresh()


# -- the user's workspaces ------------------------------------------------------------------


def _workspaces_page(form: Any = None, status: int = 200) -> Any:
    rbac, user = current_rbac, signed_in_user()
    return render("workspaces.html", status, form=form or NewWorkspaceForm(),
                  restore_form=RestoreForm(), current_id=rbac.current_workspace_id(),
                  mine=workspaces.switchable(rbac, user),
                  restorable=lifecycle.restorable_workspaces(rbac, user))


@bp.get("/workspaces", endpoint="workspaces")
@login_required
def workspaces_page() -> Any:
    """The user's workspaces, a "New workspace" form and the deleted ones they may restore."""
    if setting("RBAC_SINGLE_TENANT"):
        return not_found()
    return _workspaces_page()



@bp.post("/workspaces/new")
@login_required
def create_workspace() -> Any:
    """Create a workspace whose Owner is the signed-in user, and switch to it."""
    if setting("RBAC_SINGLE_TENANT"):
        return not_found()
    form = NewWorkspaceForm()
    if not form.validate_on_submit():
        return _workspaces_page(form, 400)
    outcome = attempt(lambda: lifecycle.create_for_user(current_rbac, signed_in_user(),
                                                        form.name.data), form,
                      fallback=form.name)
    if not outcome.ok:
        return _workspaces_page(form, outcome.status)
    set_workspace(outcome.value.id)
    flash(f"Created {outcome.value.name}. You are its Owner.", "success")
    return redirect(url_for(".workspaces"))


@bp.post("/workspaces/restore")
@login_required
def restore_workspace() -> Any:
    """Restore a deleted workspace the user owns (404 for anyone else)."""
    form = RestoreForm()
    if not form.validate_on_submit():
        return _workspaces_page(status=400)
    raw = (form.workspace_id.data or "").strip()
    ws_id = int(raw) if is_digits(raw) and len(raw) < 11 else None
    if lifecycle.owner_membership(current_rbac, signed_in_user(), ws_id) is None:
        return not_found()
    outcome = attempt(lambda: lifecycle.restore_workspace(current_rbac, signed_in_user(), ws_id))
    if not outcome.ok:
        return _workspaces_page(status=outcome.status)
    set_workspace(outcome.value.id)
    flash(f"Restored {outcome.value.name}.", "success")
    return redirect(url_for(".workspaces"))


# -- the Owner's page ------------------------------------------------------------------------


def _lifecycle_page(access: Any, transfer: Any = None, delete: Any = None,
                    status: int = 200) -> Any:
    rbac = current_rbac
    transfer = transfer or TransferForm()
    transfer.membership_id.choices = [("", "Choose a member")] + [
        (str(m.id), f"{m.display_name} ({m.user.email})" if getattr(m.user, "email", None)
         else m.display_name) for m in lifecycle.transfer_candidates(rbac, access)]
    enrolled, _ = _mfa()
    return render("workspace_lifecycle.html", status, transfer=transfer,
                  delete=delete or DeleteForm(), mfa_enrolled=enrolled,
                  workspace=rbac.db.session.get(rbac.models.Workspace, access.workspace_id),
                  grace_days=setting("RBAC_WORKSPACE_GRACE_DAYS"))


@bp.get("/lifecycle")
@login_required
def workspace_lifecycle() -> Any:
    """Transfer ownership, export, delete: the current workspace's Owners only."""
    access = _owner_access()
    if access is None:
        return _refuse_non_owner()
    return _lifecycle_page(access)


@bp.post("/lifecycle/transfer")
@login_required
@stepup.require_recent_mfa
def transfer_ownership() -> Any:
    """Make another active member the Owner; the acting Owner becomes an Admin."""
    access = _owner_access()
    if access is None:
        return _refuse_non_owner()
    form = TransferForm()
    if not form.validate_on_submit():
        return _lifecycle_page(access, transfer=form, status=400)
    enrolled, fresh = _mfa()
    outcome = attempt(lambda: lifecycle.transfer_ownership(
        current_rbac, access, form.membership_id.data, user=signed_in_user(),
        password=form.password.data, mfa_enrolled=enrolled, mfa_fresh=fresh),
        form, fallback=form.membership_id)
    if not outcome.ok:
        return _lifecycle_page(access, transfer=form, status=outcome.status)
    flash(f"{outcome.value.display_name} is now the Owner; you are an Admin.", "success")
    return redirect(url_for(".members"))


@bp.post("/lifecycle/delete")
@login_required
@stepup.require_recent_mfa
def delete_workspace() -> Any:
    """Delete the workspace after its name was typed; restorable during the grace period."""
    access = _owner_access()
    if access is None:
        return _refuse_non_owner()
    form = DeleteForm()
    if not form.validate_on_submit():
        return _lifecycle_page(access, delete=form, status=400)
    outcome = attempt(lambda: lifecycle.delete_workspace(current_rbac, access, form.confirm.data),
                      form, fallback=form.confirm)
    if not outcome.ok:
        return _lifecycle_page(access, delete=form, status=outcome.status)
    ws = outcome.value
    others = workspaces.switchable(current_rbac, signed_in_user())
    set_workspace(others[0].id if others else None)
    flash(f"Deleted {ws.name}. You can restore it here until "
          f"{ws.purge_after:%Y-%m-%d %H:%M} UTC.", "success")
    return redirect(url_for(".workspaces"))


@bp.get("/lifecycle/export", endpoint="export_workspace_zip")
@login_required
def export_workspace() -> Any:
    """Download the workspace's full export (a zip of JSON and CSV)."""
    access = _owner_access()
    if access is None:
        return _refuse_non_owner()
    outcome = attempt(lambda: lifecycle.export_zip(current_rbac, access))
    if not outcome.ok:
        return _refuse_non_owner()
    name, data = outcome.value
    return Response(data, mimetype="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
