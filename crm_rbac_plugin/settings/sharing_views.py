"""The sharing pages: "Shared by you" and "Shared with you", create, edit, end.

Thin views over :mod:`..sharing` on the settings blueprint: the service
decides, and :func:`.blueprint.attempt` commits the change or rolls it back
(PermissionDenied: 403, ValidationError: 400 with the message on the field).
The page edits one condition per resource, applied to each action shared on
it; the JSON API can give each action its own.

The receiving workspace is typed by name or slug; the form suggests only the
workspaces the acting user belongs to (see :func:`..sharing.find_workspace`
on enumeration). Before an agreement is offered, a receiving plan that
leaves out a shared module is shown as a warning and the sender confirms
(the agreement would save, but those records would reach nobody). Ending an
agreement asks first, naming what stops.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from flask import flash, redirect, request, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from .. import sharing
from ..decorators import login_required, require_permission
from ..errors import ValidationError
from ..models import utcnow
from ..pages import ConfirmForm, acting_access, not_found
from ..proxies import current_rbac
from ..registry import Registry, Resource
from .blueprint import Refusal, add_error, attempt, bp, render
from .forms import DATETIME_FORMATS, SEP


def shareable(registry: Registry) -> list[tuple[Resource, list[str]]]:
    """Record resources and the actions an agreement can share on each."""
    return [(res, [a for a in res.actions if a not in sharing.NOT_SHARED])
            for res in registry if res.model is not None]


class AgreementForm(FlaskForm):
    """Receiving workspace, notes and expiry; the permission fields are added per registry."""

    workspace = StringField("Share with (workspace name or slug)",
                            validators=[Length(max=120)],
                            description="The workspace whose members will see your records: "
                                        "its exact name, or its slug.")
    notes = TextAreaField("Notes", validators=[Optional(), Length(max=2000)],
                          description="Why, and what was agreed (recommended).")
    expires_at = DateTimeLocalField("Ends (UTC, optional)", format=DATETIME_FORMATS,
                                    validators=[Optional()])


def share_field(resource: str, action: str) -> str:
    return SEP.join(("share", resource, action))


def cond_field(resource: str) -> str:
    return SEP.join(("cond", resource))


def agreement_form_class(registry: Registry) -> type[AgreementForm]:
    attrs: dict[str, Any] = {}
    for res, actions in shareable(registry):
        for action in actions:
            attrs[share_field(res.name, action)] = BooleanField(f"{res.label} {action}")
        attrs[cond_field(res.name)] = StringField(
            f"Only {res.label} where (JSON clauses)", validators=[Optional(), Length(max=4000)])
    return type("AgreementPermissionsForm", (AgreementForm,), attrs)


def _form_data(agreement: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"notes": agreement.notes, "expires_at": agreement.expires_at}
    for perm in agreement.permissions:
        data[share_field(perm.resource, perm.action)] = True
        if perm.condition and (perm.action == "view" or cond_field(perm.resource) not in data):
            data[cond_field(perm.resource)] = json.dumps(perm.condition)
    return data


def _permission_items(form: AgreementForm, agreement: Any = None
                      ) -> list[dict[str, Any]] | None:
    """The checked boxes as service items; None (with errors on the form) if malformed.

    The page shows one condition per resource, where the API may give each action
    its own: editing ``agreement``, a resource whose condition comes back as the
    page showed it keeps each action's stored condition (a new action takes the
    one shown), so saving the notes never rewrites conditions it could not show.
    """
    shown = _form_data(agreement) if agreement is not None else {}
    stored = {(p.resource, p.action): p.condition or None
              for p in (agreement.permissions if agreement is not None else ())}
    items: list[dict[str, Any]] = []
    ok = True
    for res, actions in shareable(current_rbac.registry):
        cond = form[cond_field(res.name)]
        text = (cond.data or "").strip()
        condition = None
        if text:
            try:
                condition = json.loads(text)
            except ValueError as exc:
                add_error(cond, f"The condition is not valid JSON ({exc}).")
                ok = False
                continue
        as_shown = agreement is not None and condition == json.loads(
            shown.get(cond_field(res.name)) or "null")
        for action in actions:
            if form[share_field(res.name, action)].data:
                kept = as_shown and (res.name, action) in stored
                items.append({"resource": res.name, "action": action,
                              "condition": stored[(res.name, action)] if kept else condition})
    return items if ok else None


def _place(form: AgreementForm, exc: Refusal, items: list[dict[str, Any]]) -> None:
    """Put a service error on the input it names (a permission's condition, or the page)."""
    field = exc.field or ""
    target = form._fields.get(field)
    if field.startswith("permissions[") and field.endswith("].condition"):
        index = int(field[len("permissions["):field.index("]")])
        if index < len(items):
            target = form[cond_field(items[index]["resource"])]
    if target is None:
        target = form.workspace if "workspace" in form._fields else form.notes
    add_error(target, exc.message)


def _page(form: AgreementForm, agreement: Any = None, status: int = 200, *,
          duplicate: int | None = None, plan_warning: list[str] | None = None) -> Any:
    access = acting_access()
    suggestions = ([] if agreement is not None else
                   sharing.suggested_workspaces(current_rbac, access.user_id,
                                                access.workspace_id))
    return render("sharing/form.html", status, form=form, agreement=agreement,
                  resources=shareable(current_rbac.registry), share_field=share_field,
                  cond_field=cond_field, suggestions=suggestions, duplicate=duplicate,
                  plan_warning=plan_warning or [])


def pending_badge() -> int | None:
    """The Sharing tab's badge: agreements waiting for this workspace's answer."""
    access = current_rbac.current_access()
    if access is None:
        return None
    return sharing.pending_count(current_rbac, access.workspace_id) or None


def _plan_warning(form: AgreementForm) -> list[str]:
    """Shared resources the receiving workspace's plan leaves out (nothing if the
    sender confirmed, or if the workspace is unknown: saving then says so)."""
    if request.form.get("confirm_plan") == "1" or not form.validate_on_submit():
        return []
    items = _permission_items(form)
    if not items:
        return []
    try:
        target = sharing.find_workspace(current_rbac, form.workspace.data)
    except ValidationError:
        return []
    return sharing.plan_gaps(current_rbac, target, [i["resource"] for i in items])


def _save(form: AgreementForm, agreement: Any, save: Callable[[list[dict[str, Any]]], Any],
          done: Callable[[Any], str]) -> Any:
    """Validate the posted form, ``save(items)`` and commit, then back to the list
    with ``done(agreement)`` flashed.

    Invalid input shows the form again (400), a refusal too (403), with the
    service's message on the field it names and nothing written.
    """
    valid = form.validate_on_submit()  # first: validating resets the fields' errors
    items = _permission_items(form, agreement)
    if not valid or items is None:
        return _page(form, agreement, status=400)
    outcome = attempt(lambda: save(items), place=lambda exc: _place(form, exc, items))
    if not outcome.ok:
        duplicate = outcome.error.agreement_id if isinstance(
            outcome.error, sharing.OpenAgreementExists) else None
        return _page(form, agreement, status=outcome.status, duplicate=duplicate)
    flash(done(outcome.value), "success")
    return redirect(url_for(".sharing"))


@bp.get("/sharing", endpoint="sharing")
@login_required
@require_permission("settings", "view")
def sharing_list() -> Any:
    """Both tabs: agreements this workspace grants, and those it receives.

    Each open agreement carries the number of records it shares, so that
    revoking, leaving or declining can say what stops.
    """
    rbac = current_rbac
    access = acting_access()
    shared_by = sharing.agreements(rbac, access.workspace_id, "granting")
    shared_with = sharing.agreements(rbac, access.workspace_id, "receiving")
    counts = {a.id: sharing.shared_counts(rbac, a) for a in [*shared_by, *shared_with]
              if a.status in sharing.OPEN}
    return render("sharing/list.html", shared_by=shared_by, shared_with=shared_with,
                  tab="with" if request.args.get("tab") == "with" else "by",
                  can_manage=rbac.can("settings.manage"), confirm=ConfirmForm(),
                  state=sharing.state, describe=lambda p: sharing.describe_permission(rbac, p),
                  now=utcnow(), counts=counts,
                  pending=sum(1 for a in shared_with if a.status == "pending"))


@bp.route("/sharing/new", methods=["GET", "POST"], endpoint="new_agreement")
@login_required
@require_permission("settings", "manage")
def new_agreement() -> Any:
    rbac = current_rbac
    form = agreement_form_class(rbac.registry)()
    if request.method == "GET":
        return _page(form)
    gaps = _plan_warning(form)
    if gaps:
        return _page(form, plan_warning=gaps)
    return _save(form, None, lambda items: sharing.create_agreement(
        rbac, acting_access(), workspace=form.workspace.data, permissions=items,
        notes=form.notes.data, expires_at=form.expires_at.data),
        lambda agreement: f"Agreement offered to {agreement.receiving_workspace.name}; "
                          "it applies once they accept it.")


@bp.route("/sharing/<int:agreement_id>/edit", methods=["GET", "POST"],
          endpoint="edit_agreement")
@login_required
@require_permission("settings", "manage")
def edit_agreement(agreement_id: int) -> Any:
    """Change what an open agreement shares (granting side only)."""
    rbac = current_rbac
    access = acting_access()
    agreement = sharing.agreement_in(rbac, access.workspace_id, agreement_id)
    if agreement is None or agreement.granting_workspace_id != access.workspace_id:
        return not_found()
    cls = agreement_form_class(rbac.registry)
    form = cls(data=_form_data(agreement)) if request.method == "GET" else cls()
    del form.workspace  # the receiving workspace never changes
    if request.method == "GET":
        return _page(form, agreement)
    return _save(form, agreement, lambda items: sharing.update_agreement(
        rbac, access, agreement, permissions=items, notes=form.notes.data,
        expires_at=form.expires_at.data),
        lambda agreement: f"Agreement with {agreement.receiving_workspace.name} saved.")


@bp.post("/sharing/<int:agreement_id>/<any(revoke, accept, decline, leave):verb>",
         endpoint="end_agreement")
@login_required
@require_permission("settings", "manage")
def end_agreement(agreement_id: int, verb: str) -> Any:
    rbac = current_rbac
    access = acting_access()
    agreement = sharing.agreement_in(rbac, access.workspace_id, agreement_id)
    if agreement is None:
        return not_found()
    side = "by" if agreement.granting_workspace_id == access.workspace_id else "with"
    if not ConfirmForm().validate_on_submit():
        flash("The form expired; try again.", "error")
        return redirect(url_for(".sharing", tab=side))
    if not attempt(lambda: sharing.ACTIONS[verb](rbac, access, agreement)).ok:
        return redirect(url_for(".sharing", tab=side)), 303
    done = {"revoke": "revoked", "accept": "accepted", "decline": "declined",
            "leave": "left"}[verb]
    other = (agreement.receiving_workspace if side == "by" else agreement.granting_workspace).name
    flash(f"Agreement with {other} {done}.", "success")
    return redirect(url_for(".sharing", tab=side))
