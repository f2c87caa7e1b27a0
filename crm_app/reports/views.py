"""The reports page, the analytics charts and the reports' CSV export.

* ``GET /reports/`` (``reports.view``): every figure as a table, with the
  date, owner and department filters.
* ``GET /reports/charts`` (``analytics.view``): the same figures as SVG charts.
* ``GET /reports/export.csv?figure=<key>`` (``reports.export``): one figure's
  rows as CSV, every cell through :mod:`crm_rbac_plugin.csvsafe`, audited with
  the row count (``rbac.audit_export``, i.e. ``audit.events.record_export``).

The figures come from :mod:`.figures` (filtered SQL aggregates); a bad filter
is a 400 naming the argument, an unknown figure a 404, and a figure hidden
from the member (field rules) or a department filter without ``members.view``
a 403: nothing is computed for them.
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Response, abort, render_template, request
from wtforms import SelectChoice

from crm_rbac_plugin import PermissionDenied, csvsafe, require_permission

from ..extensions import db
from ..models import User
from ..rbac_setup import rbac
from . import charts
from .figures import ACTIVITY, FilterError, Filters, all_figures, figure, member

bp = Blueprint("reports", __name__, url_prefix="/reports")


def owner_choices() -> list[SelectChoice]:
    """People owning a record of the workspace the member sees (the DISTINCT queries are
    filtered), as the figures count: a shared record's owner is not offered.

    Resources whose owner field is hidden from the member add nobody.
    """
    access = member()
    ids: set[int] = set()
    for name, model in ACTIVITY:
        if rbac.can("view", name) and "owner_id" not in rbac.hidden_fields(name):
            ids |= set(db.session.scalars(sa.select(model.owner_id).where(
                model.owner_id.is_not(None),
                model.workspace_id == (access.workspace_id if access else None)).distinct()))
    rows = db.session.execute(sa.select(User.id, User.name).where(User.id.in_(sorted(ids)))
                              .order_by(User.name, User.id)) if ids else []
    return [SelectChoice(str(uid), name) for uid, name in rows]


def may_filter_departments() -> bool:
    """Whether the member may filter by department: its results tell who belongs to one,
    which only ``members.view`` shows."""
    return bool(rbac.can("view", "members"))


def parse_filters() -> Filters:
    """The request's filters (:meth:`Filters.parse`); raise :class:`FilterError`."""
    return Filters.parse(request.args, departments=may_filter_departments())


def department_choices() -> list[SelectChoice]:
    """The current workspace's departments; none without :func:`may_filter_departments`."""
    if not may_filter_departments():
        return []
    access = member()
    D = rbac.models.Department
    rows = db.session.execute(sa.select(D.id, D.name).where(
        D.workspace_id == (access.workspace_id if access else None)).order_by(D.name))
    return [SelectChoice(str(i), name) for i, name in rows]


def page(template: str) -> Any:
    """Render ``template`` with the figures for the request's filters (400 on a bad one)."""
    try:
        filters = parse_filters()
    except FilterError as bad:
        return render_template(template, figures=[], filters=Filters(), error=bad,
                               owners=owner_choices(), departments=department_choices(),
                               chart=charts.chart, args=request.args), bad.status
    return render_template(template, figures=all_figures(filters), filters=filters, error=None,
                           owners=owner_choices(), departments=department_choices(),
                           chart=charts.chart, args=request.args)


@bp.get("/")
@require_permission("reports", "view")
def index() -> Any:
    """The figures as tables."""
    return page("reports/index.html")


@bp.get("/charts")
@require_permission("analytics", "view")
def charts_page() -> Any:
    """The figures as charts."""
    return page("reports/charts.html")


def csv_cell(value: Any) -> Any:
    """A CSV value: dates in ISO form, the rest as they are (csvsafe neutralises text)."""
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else value


@bp.get("/export.csv")
@require_permission("reports", "export")
def export() -> Response:
    """One figure as CSV: 400 for a bad filter, 404 for no such figure, 403 if not shown."""
    try:
        filters = parse_filters()
    except FilterError as bad:
        if bad.status == 403:
            raise PermissionDenied(bad.message, resource="members", action="view",
                                   field=bad.field) from None
        abort(400, description=bad.message)
    key = request.args.get("figure", "")
    fig = figure(key, filters)
    if fig is None:
        abort(404, description="figure: no such report.")
    if not fig.shown:
        raise PermissionDenied(fig.missing, resource=fig.resource, action="view")
    buffer = io.StringIO()
    writer = csvsafe.writer(buffer)
    writer.writerow(fig.columns)
    for row in fig.rows:
        writer.writerow([csv_cell(v) for v in row])
    access = member()
    rbac.audit_export("reports", {getattr(access, "workspace_id", None): len(fig.rows)},
                      target=f"report {fig.key} CSV ({len(fig.rows)} rows)",
                      figure=fig.key, query=request.query_string.decode()[:500])
    db.session.commit()
    name = f"report-{fig.key}-{dt.date.today().isoformat()}.csv"
    return Response(buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
