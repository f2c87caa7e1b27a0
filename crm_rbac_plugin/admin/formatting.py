"""How the admin pages show values: timestamps in one UTC format, members by name.

The plugin stores naive UTC datetimes; the admin lists and detail pages show
them as ``2026-12-05 14:03 UTC`` (the settings pages' format), never as
Python's ``2026-12-05 14:03:27.123456``. Exports keep ISO 8601, which
spreadsheets and scripts parse.

A raw key (``actor_membership_id``) means nothing to a reader and invites
guessing other ids: the panels show the member's name in its place. A record
shared by another workspace is owned by one of that workspace's people, whom
the receiving side is never told of: its user columns show the sharing
workspace's name, as the app's own pages do.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from flask_admin.model import typefmt
from markupsafe import Markup, escape

__all__ = ["DETAIL_FORMATTERS", "LIST_FORMATTERS", "add_person_formatters", "member_name", "person",
           "utc_date", "utc_timestamp"]


def utc_timestamp(view: Any, value: dt.datetime, name: str) -> Markup:
    """A stored (UTC) datetime as ``2026-12-05 14:03 UTC`` in a ``<time>`` element."""
    return Markup('<time datetime="{}">{} UTC</time>').format(
        value.isoformat(), value.strftime("%Y-%m-%d %H:%M"))


def utc_date(view: Any, value: dt.date, name: str) -> str:
    """A date as ``2026-12-05``."""
    return value.isoformat()


LIST_FORMATTERS: dict[Any, Any] = {**typefmt.BASE_FORMATTERS, dt.datetime: utc_timestamp,
                                   dt.date: utc_date}
DETAIL_FORMATTERS: dict[Any, Any] = {**typefmt.DETAIL_FORMATTERS, dt.datetime: utc_timestamp,
                                     dt.date: utc_date}


def member_name(view: Any, context: Any, model: Any, name: str) -> Any:
    """A column formatter showing the membership a ``*_membership_id`` column names."""
    key = getattr(model, name)
    if key is None:
        return ""
    rbac = view.rbac
    membership = rbac.db.session.get(rbac.models.Membership, key)
    if membership is None or membership.workspace_id != getattr(model, "workspace_id", None):
        return Markup('<span class="text-muted">a former member</span>')
    return escape(membership.display_name)


def person(view: Any, context: Any, model: Any, name: str) -> Any:
    """A column formatter for a relation to the user model: the user as text, or, on a
    record shared by another workspace, that workspace's name."""
    via = view.rbac.shared_from(model)
    if via is not None:
        return Markup('<span class="text-muted">{}</span>').format(via.workspace_name)
    value = getattr(model, name)
    return "" if value is None else escape(str(value))


def add_person_formatters(view: Any, model: type, user_model: type) -> None:
    """Show each of ``model``'s relations to the user model with :func:`person`, in
    ``view``'s lists and details (the host's own formatters win)."""
    people = {rel.key: person for rel in sa.inspect(model).relationships
              if rel.mapper.class_ is user_model}
    view.column_formatters = {**people, **(view.column_formatters or {})}
    view.column_formatters_detail = {**people, **(view.column_formatters_detail or {})}
