"""Hidden-field sweep: a hidden field's values reach no response the member can get.

For every protected resource of the demo and every field a role may hide
(every column but ``id``, the workspace and the owner), the sweep stores a
unique marker in that field of every record (a string, a number or a date,
whichever the column holds), hides the field from the Admin role (which may
otherwise view, export and administer everything), signs in as the Admin and
requests every page, JSON API and export route of ``app.url_map`` that
needs no other kind of id: the dashboard, lists, details and edit forms of a
real record of each resource, the CSV exports, ``/api/v1/...``, every
Flask-Admin panel with its details, edit and CSV export views, and the
explain and who-could pages about each record. No body may contain a
marker, and hiding a field may not break a page that worked (no 500, no new
403).

A link column (``client_id``) has no value of its own to look for: its
marker is the name of a client created for the sweep, which is visible as a
client, so it is looked for only in responses about the hidden resource
(its pages, API, admin panel) and on the dashboard.

Counts go to the attack battery's summary: fields swept, responses scanned,
leaks.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from crm_app.accounting.models import Invoice
from crm_app.campaigns.models import Campaign
from crm_app.extensions import db
from crm_app.models import Client, Deal
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import roles, workspaces
from tests.rbac_helpers import fast_passwords  # noqa: F401
from tests.security.conftest import body_text, logged_in, rules_of

#: Arguments of GET routes the sweep fills in; a route with any other argument
#: takes an id of something that holds no CRM record field (roles, members ...).
FILLED_ARGUMENTS = frozenset({"id", "resource", "record_id", "export_type"})

#: A date and a timestamp no page shows unless a hidden value leaks, with the
#: texts that any rendering of them contains.
DATE_MARK, DATE_TEXTS = dt.date(2037, 8, 23), ("2037", "Aug 23")
STAMP_MARK, STAMP_TEXTS = dt.datetime(2036, 9, 14, 13, 57), ("2036", "Sep 14")
AMOUNT_MARK, AMOUNT_TEXTS = Decimal("7391046.37"), ("7391046", "7,391,046")


def restrictable_fields(name: str) -> list[str]:
    """The columns of resource ``name`` a field rule may hide (as ``roles`` allows)."""
    res = rbac.registry.get(name)
    protected = {res.workspace_column, res.owner_column, "id"}
    return [c.key for c in sa.inspect(res.model).columns if c.key not in protected]


def crm_resources() -> list[str]:
    return [r.name for r in rbac.registry if r.model is not None]


def seed_markers(w: SimpleNamespace, name: str, field: str, n: int) -> tuple[str, ...]:
    """Store a marker in ``field`` of every record of ``name``; return the texts to look for."""
    res = rbac.registry.get(name)
    table = res.model.__table__
    column = table.c[field]
    if column.foreign_keys:
        tag = f"zqlink{n:02d}"
        target = next(iter(column.foreign_keys)).column.table.name
        with rbac.system():  # a linked record named by the marker (a deal or a client)
            linked: Any = (Deal(workspace_id=w.ws.id, title=tag) if target == "deal"
                           else Client(workspace_id=w.ws.id, name=tag))
            db.session.add(linked)
            db.session.commit()
            value: Any = linked.id
    else:
        python_type = column.type.python_type
        if python_type is dt.datetime:
            value, texts = STAMP_MARK, STAMP_TEXTS
        elif python_type is dt.date:
            value, texts = DATE_MARK, DATE_TEXTS
        elif python_type in (Decimal, int, float):
            value, texts = AMOUNT_MARK, AMOUNT_TEXTS
        else:
            tag = f"zqmark{n:02d}x"
            value = tag
    if column.foreign_keys or python_type is str:
        texts = (tag,)
    with rbac.system():  # Core: no audit event of its own to show the values
        db.session.execute(sa.update(table).where(table.c.workspace_id == w.ws.id)
                           .values({field: value}))
        db.session.commit()
    return texts


def stored_values(name: str, field: str) -> list[tuple[Any, Any]]:
    table = rbac.registry.get(name).model.__table__
    with rbac.system():
        rows = db.session.execute(sa.select(table.c.id, table.c[field])).all()
        db.session.commit()
    return [tuple(row) for row in rows]


def restore(name: str, field: str, rows: list[tuple[Any, Any]]) -> None:
    """Put the field's values back, so that each field's markers are its own."""
    table = rbac.registry.get(name).model.__table__
    with rbac.system():
        for ident, value in rows:
            db.session.execute(sa.update(table).where(table.c.id == ident)
                               .values({field: value}))
        db.session.commit()


def hide(w: SimpleNamespace, name: str, fields: list[str]) -> None:
    rules = {name: dict.fromkeys(fields, "hidden")} if fields else {}
    roles.set_field_rules(rbac, workspaces.role_by_key(rbac, w.ws, "admin"), rules)
    db.session.commit()


def add_campaign(w: SimpleNamespace) -> None:
    """A campaign in ``w.ws`` linked to its leads, so that the campaign pages are swept
    (``build_world`` has no campaign) and hidden lead fields are looked for on them."""
    with rbac.system():
        campaign = Campaign(workspace_id=w.ws.id, name="Sweep campaign",
                            leads=list(w.leads.values()))
        db.session.add(campaign)
        db.session.commit()


def sweep_urls(app: Flask, w: SimpleNamespace) -> list[tuple[str, str | None]]:
    """``(url, resource the response is about or None)`` for every GET route the sweep fills."""
    add_campaign(w)
    names = crm_resources()
    ids = {name: db.session.scalar(sa.select(rbac.registry.get(name).model.id)
                                   .order_by(rbac.registry.get(name).model.id)
                                   .execution_options(rbac_bypass=True)) for name in names}
    adapter = app.url_map.bind("crm.test")
    urls: list[tuple[str, str | None]] = []
    for rule in rules_of(app):
        if "GET" not in (rule.methods or ()) or rule.endpoint.endswith("static"):
            continue
        if set(rule.arguments) - FILLED_ARGUMENTS or rule.endpoint == "auth.login":
            continue
        blueprint, _, view = rule.endpoint.rpartition(".")
        about = blueprint.removeprefix("admin_") if blueprint.removeprefix(
            "admin_") in names else None
        if "resource" in rule.arguments:
            for name in names:
                values = {"resource": name}
                if "record_id" in rule.arguments:
                    values["record_id"] = str(ids[name])
                urls.append((adapter.build(rule.endpoint, values), name))
            continue
        values = {"export_type": "csv"} if "export_type" in rule.arguments else {}
        if "id" in rule.arguments:
            values["id"] = str(ids[blueprint])
        url = adapter.build(rule.endpoint, values)
        urls.append((url, about))
        if view in ("details_view", "edit_view") and about is not None:
            urls.append((f"{url}?id={ids[about]}", about))
    for name in names:
        urls.append((f"/settings/explain?member={w.members['admin'].id}&resource={name}"
                     f"&record={ids[name]}", name))
        urls.append((f"/settings/who-could?resource={name}&record={ids[name]}", name))
    return urls


def scan(client: FlaskClient, urls: list[tuple[str, str | None]], texts: tuple[str, ...],
         only_about: str | None) -> tuple[dict[str, int], list[str]]:
    """Request ``urls`` (those about ``only_about`` and the dashboard, if given);
    return their statuses and the leaks found (url: text)."""
    statuses: dict[str, int] = {}
    leaks: list[str] = []
    for url, about in urls:
        if only_about is not None and about != only_about and url != "/":
            continue
        response = client.get(url)
        statuses[url] = response.status_code
        body = RANDOM_TOKENS.sub("", body_text(response))
        leaks += [f"{url}: {t!r}" for t in texts if appears(t, body)]
    return statuses, leaks


#: Values drawn at random for each response (a form's CSRF token, a CSP nonce): they
#: hold no record data, and a year marker ("2037") turns up inside one by chance
#: (hex digits between letters read as a whole number).
RANDOM_TOKENS = re.compile(r'<input[^>]*name="csrf_token"[^>]*>|<meta[^>]*name="csrf-token"[^>]*>'
                           r'|nonce="[^"]*"')


def appears(text: str, body: str) -> bool:
    """Whether ``text`` is in ``body``; a number only as a whole number.

    A year marker ("2036") also occurs inside unrelated digit runs, such as
    the microseconds of an audit timestamp; as a whole number it is the
    marker, in whatever format the page shows the date.
    """
    if not text.isdigit():
        return text in body
    return re.search(rf"(?<!\d){text}(?!\d)", body) is not None


def rounds(grouped: bool) -> list[tuple[str, list[str]]]:
    """The fields hidden together in each round: one by one, or a resource's all at once."""
    out = []
    for name in crm_resources():
        fields = restrictable_fields(name)
        out += [(name, fields)] if grouped else [(name, [f]) for f in fields]
    return out


def test_hidden_field_sweep(app: Flask, backend: str, world: SimpleNamespace,
                            probe_stats: Counter[str]) -> None:
    """Every field of every resource hidden: its markers appear in no response.

    On SQLite each field is hidden alone; on PostgreSQL (slower per request)
    each resource's fields are hidden together, one round per resource.
    """
    w = world
    with rbac.system():  # the world has no invoice: one for the Accounting pages
        db.session.add(Invoice(workspace_id=w.ws.id, owner_id=w.users["member"].id,
                               number="Sweep invoice", client_id=w.clients["member"].id))
        db.session.commit()
    urls = sweep_urls(app, w)
    client = logged_in(app, w.users["admin"], w.ws)
    baseline, _ = scan(client, urls, (), None)
    assert baseline["/"] == 200 and baseline["/api/v1/records/leads"] == 200
    failures: list[str] = []
    n = 0
    for name, fields in rounds(grouped=backend == "postgresql"):
        originals = {f: stored_values(name, f) for f in fields}
        texts: dict[str, tuple[str, ...]] = {}
        for field in fields:
            n += 1
            texts[field] = seed_markers(w, name, field, n)
        hide(w, name, fields)
        table = rbac.registry.get(name).model.__table__
        links = [f for f in fields if table.c[f].foreign_keys]
        plain = [f for f in fields if f not in links]
        for group, about in ((plain, None), (links, name)):  # links: see the module doc
            if not group:
                continue
            statuses, leaks = scan(client, urls, sum((texts[f] for f in group), ()), about)
            probe_stats["hidden_responses"] += len(statuses)
            probe_stats["hidden_leaks"] += len(leaks)
            failures += [f"{name}.{group} hidden: leak at {leak}" for leak in leaks]
            failures += [f"{name}.{group} hidden: broke {url}: {baseline[url]} -> {status}"
                         for url, status in statuses.items()
                         if status != baseline[url] and (status >= 500 or status == 403)]
        probe_stats["hidden_fields_swept"] += len(fields)
        for field in fields:
            restore(name, field, originals[field])
    hide(w, "leads", [])
    assert n >= 20, f"only {n} fields swept"
    assert not failures, f"{len(failures)} problems:\n" + "\n".join(failures[:60])
