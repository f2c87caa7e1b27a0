"""The members list: search, facets, sorting, paging, CSV export and bulk changes.

The list is sorted and paged on the server (:data:`PER_PAGE` a page); an
unknown sort key, direction or page answers 400 with the list in its
default order, never a 500. The CSV export (``members.export``) writes the
rows the current filters select, every cell through :mod:`..csvsafe`, and
is itself audited.

A bulk change runs :func:`..team.bulk_change`: every selected member passes
the single change's rules or nobody is changed, and the refusal names each
member refused and why. A selected id of another workspace answers 404.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from flask import Response, flash, redirect, request, url_for
from werkzeug.datastructures import MultiDict

from .. import csvsafe, gate, queries, team
from ..approvals import ExportFile
from ..decorators import require_permission
from ..errors import ValidationError
from ..inputs import is_digits
from ..models import utcnow
from ..pages import ConfirmForm, acting_access, can, not_found
from ..proxies import current_rbac
from ..security.stepup import require_recent_mfa
from .blueprint import attempt, bp, render
from .forms import choices
from .member_forms import BulkForm, FilterForm

PER_PAGE = 25
#: The query arguments that select and order the list (kept by paging, sorting and bulk changes).
LIST_ARGS = ("q", "status", "role", "department", "sort", "dir")


@dataclass
class ListRequest:
    """The list the query string asks for, and what was wrong with it."""

    form: FilterForm
    flt: team.MemberFilter = field(default_factory=team.MemberFilter)
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @property
    def args(self) -> dict[str, str]:
        """The query arguments that reproduce this list (the valid ones only), for links."""
        out = {k: v for k in ("q", "status", "role", "department")
               if (v := request.args.get(k, ""))} if self.form.errors == {} else {}
        if self.flt.sort != "name":
            out["sort"] = self.flt.sort
        if self.flt.direction != "asc":
            out["dir"] = self.flt.direction
        return out


def _read_list_request(args: MultiDict[str, str] | None = None) -> ListRequest:
    """Read the list from ``args`` (the request's query arguments by default)."""
    args = request.args if args is None else args
    rbac, ws = current_rbac, acting_access().workspace_id
    form = FilterForm(formdata=args)
    form.role.choices = choices([("", "any role")] + [
        (r.id, r.name) for r in queries.workspace_roles(rbac, ws)])
    form.department.choices = choices([("", "any department")] + [
        (d.id, d.name) for d in team.workspace_departments(rbac, ws)])
    out = ListRequest(form)
    sort, direction = args.get("sort", "name"), args.get("dir", "asc")
    if sort not in team.SORT_KEYS or direction not in ("asc", "desc"):
        out.errors.append(f"Sort by one of {', '.join(team.SORT_KEYS)}, ascending or descending.")
        sort, direction = "name", "asc"
    page = args.get("page", "1")
    if not is_digits(page) or int(page) < 1:
        out.errors.append("The page must be a number from 1.")
    else:
        out.page = int(page)
    if not form.validate():
        out.errors.append("Check the filters.")
        out.flt = team.MemberFilter(sort=sort, direction=direction)
    else:
        out.flt = team.MemberFilter(status=form.status.data or "", role_id=form.role.data,
                                    department_id=form.department.data, q=form.q.data or "",
                                    sort=sort, direction=direction)
    return out


def _bulk_form() -> BulkForm:
    rbac, ws = current_rbac, acting_access().workspace_id
    form = BulkForm()
    form.role_id.choices = choices([("", "— role —")] + [
        (r.id, r.name) for r in queries.workspace_roles(rbac, ws)])
    form.department_id.choices = choices([("", "— no department —")] + [
        (d.id, d.name) for d in team.workspace_departments(rbac, ws)])
    return form


def render_members(status: int = 200, page_errors: list[str] | None = None,
                   bulk: BulkForm | None = None) -> Any:
    """The members page answered with ``status`` and ``page_errors`` (a refusal's reason)."""
    rbac, ws = current_rbac, acting_access().workspace_id
    wanted = _read_list_request()
    total = team.count_members(rbac, ws, wanted.flt)
    pages = max(1, -(-total // PER_PAGE))
    page = min(wanted.page, pages)
    memberships = team.list_members(rbac, ws, wanted.flt, offset=(page - 1) * PER_PAGE,
                                    limit=PER_PAGE)
    if wanted.errors and status == 200:
        status = 400
    return render("team/members.html", status, form=wanted.form, memberships=memberships,
                  invitations=team.open_invitations(rbac, ws) if can("members.create") else [],
                  status_of=queries.assignment_status, can_invite=can("members.create"),
                  can_edit=can("members.edit"), can_export=can("members.export"),
                  confirm=ConfirmForm(), bulk=bulk or _bulk_form(), page=page, pages=pages,
                  total=total, args=wanted.args, sort=wanted.flt.sort,
                  direction=wanted.flt.direction,
                  pictures=team.picture_urls(rbac, acting_access(), memberships),
                  page_errors=[*wanted.errors, *(page_errors or [])])


@bp.get("/members", endpoint="members")
@require_permission("members", "view")
def members_page() -> Any:
    """Members with roles, department, status and last activity: search, filter, sort, page."""
    return render_members()


@bp.get("/members.csv")
@require_permission("members", "export")
def members_csv() -> Any:
    """The members the current filters select, with their roles, as CSV (audited).

    An export like any other: the rows are counted first and over the
    workspace's approval threshold the request waits (``via="members"``;
    :func:`produce_approved_members` makes the file when it is approved).
    """
    rbac, ws = current_rbac, acting_access().workspace_id
    wanted = _read_list_request()
    if wanted.errors:
        return render_members(400)
    count = team.count_members(rbac, ws, wanted.flt)
    gate.require(rbac, acting_access(), "export",
                 {"resource": "members", "via": "members",
                  "query": request.query_string.decode()[:500]},
                 count=count, summary=f"Export {count} members as CSV")
    produced = _members_file(wanted.flt)
    rbac.db.session.commit()
    return Response(produced.content, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename={produced.filename}"})


def _members_file(flt: team.MemberFilter) -> ExportFile:
    """The CSV of the members ``flt`` selects, with their roles; audits the export."""
    rbac, ws = current_rbac, acting_access().workspace_id
    now = utcnow()
    buffer = io.StringIO()
    out = csvsafe.writer(buffer)
    out.writerow(["Name", "Email", "Status", "Department", "Roles", "Last activity"])
    rows = team.list_members(rbac, ws, flt)
    for m in rows:
        held = sorted(mr.role.name for mr in m.member_roles if mr.active_at(now))
        out.writerow([m.display_name, m.user.email, m.status,
                      m.department.name if m.department else "", ", ".join(held),
                      m.last_seen_at.strftime("%Y-%m-%d %H:%M") if m.last_seen_at else ""])
    rbac.audit("export", workspace_id=ws, resource="members", target=f"members ({len(rows)} rows)",
               rows=len(rows))
    return ExportFile("members.csv", buffer.getvalue().encode("utf-8"))


def produce_approved_members(payload: Mapping[str, Any]) -> ExportFile:
    """The members CSV of an approved request, produced as the requester at approval.

    The filters are the request's query string; the rows are what the
    requester's workspace holds at that moment.
    """
    args = MultiDict(parse_qsl(str(payload.get("query", "")), keep_blank_values=True))
    wanted = _read_list_request(args)
    if wanted.errors:
        raise ValidationError(" ".join(wanted.errors), field="query")
    return _members_file(wanted.flt)


def _bulk_target(form: BulkForm) -> tuple[Any, bool]:
    """The role or department the change names, and whether an id named none of them."""
    rbac, ws = current_rbac, acting_access().workspace_id
    if form.action.data in ("add_role", "remove_role"):
        role = queries.role_in(rbac, ws, form.role_id.data)
        return role, form.role_id.data is not None and role is None
    if form.action.data == "department" and form.department_id.data is not None:
        dept = next((d for d in team.workspace_departments(rbac, ws)
                     if d.id == form.department_id.data), None)
        return dept, dept is None
    return None, False


_DONE = {"add_role": "now hold {target}", "remove_role": "no longer hold {target}",
         "department": "moved to {target}", "deactivate": "deactivated",
         "reactivate": "reactivated"}


@bp.post("/members/bulk")
@require_permission("members", "edit")
@require_recent_mfa
def bulk_members() -> Any:
    """Change the role, department or status of the selected members, all or none."""
    rbac, access = current_rbac, acting_access()
    form = _bulk_form()
    if not form.validate_on_submit():
        errors = [e for f in form for e in f.errors]
        return render_members(400, [f"Nothing changed: {' '.join(map(str, errors))}"], form)
    selected = [queries.membership_in(rbac, access.workspace_id, mid)
                for mid in dict.fromkeys(form.members.data or [])]
    target, unknown = _bulk_target(form)
    if unknown or any(m is None for m in selected):
        return not_found()
    page_errors: list[str] = []
    outcome = attempt(lambda: team.bulk_change(rbac, access, selected, form.action.data or "",
                                               target), errors=page_errors)
    if not outcome.ok:
        return render_members(outcome.status, page_errors, form)
    name = getattr(target, "name", "no department")
    flash(f"{outcome.value} of {len(selected)} selected member(s) "
          f"{_DONE[form.action.data or ''].format(target=name)}.", "success")
    return redirect(url_for(".members", **_kept_args()))


def _kept_args() -> dict[str, str]:
    return {k: v for k in (*LIST_ARGS, "page") if (v := request.args.get(k, ""))}
