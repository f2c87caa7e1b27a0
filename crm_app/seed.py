"""Demo data and the ``flask demo seed`` command.

:func:`seed_demo` builds two workspaces through the plugin's own functions
(:mod:`crm_rbac_plugin.workspaces`), so the demo's roles are exactly the
built-in ones a real workspace starts with, then bulk-inserts a few thousand
records spread over owners, clients, stages and dates. Everything is drawn
from ``random.Random(42)``: two seeds of the same scale hold the same data
(dates are relative to today so the demo always looks current).

Bulk ``insert()`` statements bypass the ORM flush, hence the flush guard;
that is why the records are inserted inside ``rbac.system()``, the trusted
context, with the workspace and owner set explicitly.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import click
import sqlalchemy as sa
from flask.cli import with_appcontext

from crm_rbac_plugin import workspaces
from crm_rbac_plugin.audit import RETENTION
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.security.passwords import require_password, user_inputs_of
from crm_rbac_plugin.security.policy import password_rules_for_user
from crm_rbac_plugin.security.sessions import revoke_all

from .accounting import seed as accounting_seed
from .campaigns.seed import seed_campaigns
from .extensions import db
from .models import (
    DEAL_STAGES,
    LEAD_SOURCES,
    LEAD_STATUSES,
    REGIONS,
    Client,
    Deal,
    Lead,
    Note,
    Task,
    User,
)
from .rbac_setup import rbac

PASSWORD = "demo1234"
SEED = 42


@dataclass(frozen=True)
class DemoMember:
    """A demo login: its workspace memberships as (slug, role key, department)."""

    email: str
    name: str
    memberships: tuple[tuple[str, str, str | None], ...]


@dataclass(frozen=True)
class DemoWorkspace:
    slug: str
    name: str
    plan: str
    departments: tuple[str, ...]
    #: (resource, number of records at scale 1)
    volumes: tuple[tuple[str, int], ...]
    #: Who owns records, with weights; None is "unowned".
    owners: tuple[tuple[str | None, int], ...]
    #: (manager email, emails of the members assigned to them)
    teams: tuple[tuple[str, tuple[str, ...]], ...] = ()


WORKSPACES: tuple[DemoWorkspace, ...] = (
    DemoWorkspace(
        slug="acme", name="Acme Sales", plan="enterprise",
        departments=("Sales", "Support", "Finance"),
        volumes=(("clients", 400), ("leads", 1500), ("deals", 800), ("tasks", 1200),
                 ("notes", 600)),
        owners=(("member@acme.test", 26), ("member2@acme.test", 24), ("junior@acme.test", 14),
                ("manager@acme.test", 12), ("success@acme.test", 10), ("admin@acme.test", 4),
                (None, 10)),
        teams=(("manager@acme.test", ("member@acme.test", "member2@acme.test",
                                      "junior@acme.test")),)),
    DemoWorkspace(
        slug="beta", name="Beta Education", plan="free",
        departments=("Admissions", "Teaching"),
        volumes=(("clients", 60), ("leads", 0), ("deals", 0), ("tasks", 150), ("notes", 80)),
        owners=(("dual@example.test", 40), ("teacher@beta.test", 45), (None, 15))),
)

MEMBERS: tuple[DemoMember, ...] = (
    DemoMember("owner@acme.test", "Olivia Owens", (("acme", "owner", None),)),
    DemoMember("admin@acme.test", "Adam Ashford", (("acme", "admin", None),)),
    DemoMember("manager@acme.test", "Maya Morgan", (("acme", "manager", "Sales"),)),
    DemoMember("member@acme.test", "Marco Mendes", (("acme", "member", "Sales"),)),
    DemoMember("member2@acme.test", "Mina Park", (("acme", "member", "Sales"),)),
    DemoMember("viewer@acme.test", "Victor Vance", (("acme", "viewer", "Support"),)),
    DemoMember("finance@acme.test", "Fiona Fischer", (("acme", "finance", "Finance"),)),
    DemoMember("junior@acme.test", "Jamie Jones", (("acme", "junior_rep", "Sales"),)),
    DemoMember("success@acme.test", "Sam Sato", (("acme", "client_success", "Support"),)),
    DemoMember("dual@example.test", "Dana Duval",
               (("beta", "owner", "Admissions"), ("acme", "viewer", None))),
    DemoMember("teacher@beta.test", "Tara Quinn", (("beta", "member", "Teaching"),)),
)

FIRST = ("Ana", "Ben", "Chloe", "David", "Elena", "Felix", "Grace", "Hugo", "Iris", "Jonas",
         "Kira", "Liam", "Mara", "Noah", "Olga", "Pablo", "Rosa", "Sven", "Tess", "Uma",
         "Viktor", "Wen", "Yara", "Zane")
LAST = ("Alvarez", "Becker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Haas", "Ito",
        "Jansen", "Kowalski", "Larsen", "Moreau", "Novak", "Okafor", "Patel", "Rossi",
        "Silva", "Tanaka", "Usman", "Varga", "Weber", "Young", "Zhang")
COMPANY_A = ("North", "Blue", "Bright", "Cedar", "Delta", "Ever", "Granite", "Harbor",
             "Iron", "Lumen", "Maple", "Nova", "Orbit", "Pine", "Quartz", "River", "Summit",
             "Terra", "Vertex", "Willow")
COMPANY_B = ("wind", "stone", "field", "path", "bridge", "light", "works", "gate", "peak",
             "line", "wave", "forge")
COMPANY_C = ("Logistics", "Health", "Foods", "Labs", "Energy", "Media", "Retail", "Finance",
             "Robotics", "Travel", "Education", "Systems")
PRODUCTS = ("Platform licence", "Annual renewal", "Pilot", "Expansion", "Onboarding package",
            "Support plan", "Enterprise upgrade", "Training")
TASK_VERBS = ("Call", "Email", "Send proposal to", "Book demo with", "Follow up with",
              "Prepare contract for", "Review account of", "Schedule QBR with")
NOTE_LINES = ("Asked for a revised quote with volume pricing.",
              "Decision maker is the COO; procurement joins next call.",
              "Happy with onboarding, wants training for two new hires.",
              "Budget approved for Q3, waiting on legal review.",
              "Prefers email; do not call before 10am.",
              "Competitor offered a discount, we should stress support quality.",
              "Renewal risk: usage dropped last month.",
              "Introduced us to their sister company.")

LEAD_STATUS_WEIGHTS = (40, 30, 20, 10)  # in the order of LEAD_STATUSES
STAGE_WEIGHTS = (22, 20, 16, 12, 18, 12)  # in the order of DEAL_STAGES


@dataclass
class SeedReport:
    """What :func:`seed_demo` did, for the CLI to print."""

    created: bool
    counts: dict[str, int] = field(default_factory=dict)
    logins: list[tuple[str, str]] = field(default_factory=list)


def scaled(n: int, scale: float) -> int:
    return 0 if n == 0 else max(1, round(n * scale))


def demo_logins() -> list[tuple[str, str]]:
    """(email, "Role in workspace, ...") for every demo user."""
    names = {ws.slug: ws.name for ws in WORKSPACES}
    return [(m.email, ", ".join(f"{role.replace('_', ' ').title()} in {names[slug]}"
                                for slug, role, _ in m.memberships)) for m in MEMBERS] + [
        (accounting_seed.BOOKKEEPER_EMAIL, f"Bookkeeper in {names['acme']}")]


def demo_present() -> bool:
    W = rbac.models.Workspace
    return db.session.scalar(sa.select(W.id).where(W.slug == WORKSPACES[0].slug)) is not None


def delete_all_data() -> None:
    """Empty every table of the app (children first), keeping the schema.

    The whole database rather than just the demo workspaces: a demo database
    holds nothing else, and this stays correct whatever tables the plugin
    adds. Core deletes, so they run inside ``rbac.system()``; the audit's
    ``RETENTION`` option lets them empty the audit trail too.
    """
    with rbac.system():
        for table in reversed(db.metadata.sorted_tables):
            db.session.execute(table.delete(), execution_options=RETENTION)
    db.session.flush()
    db.session.expunge_all()


def create_users() -> dict[str, User]:
    """Create the demo users, or reset the password of those that already exist."""
    existing = {u.email: u for u in db.session.scalars(
        sa.select(User).where(User.email.in_([m.email for m in MEMBERS])))}
    users = {}
    for member in MEMBERS:
        user = existing.get(member.email) or User(email=member.email, name=member.name)
        user.is_active_user = True
        # The demo's shared password is weaker than the password rules
        # (crm_rbac_plugin.security): seeding sets it directly, bypassing them
        # on purpose, so that a fresh checkout signs in with one known word.
        user.set_password(PASSWORD)
        users[member.email] = user
    db.session.add_all(users.values())
    db.session.flush()
    return users


def create_workspaces(users: dict[str, User]) -> dict[str, Any]:
    """Create the workspaces, departments, memberships and manager assignments."""
    m = rbac.models
    result = {}
    for spec in WORKSPACES:
        ws = workspaces.create_workspace(rbac, spec.name, slug=spec.slug, plan=spec.plan)
        departments = {name: m.Department(workspace=ws, name=name) for name in spec.departments}
        db.session.add_all(departments.values())
        db.session.flush()
        memberships = {}
        for member in MEMBERS:
            for slug, role, dept in member.memberships:
                if slug == spec.slug:
                    memberships[member.email] = workspaces.add_member(
                        rbac, ws, users[member.email], [role],
                        department=departments[dept] if dept else None)
        for manager, team in spec.teams:
            db.session.add_all(m.ManagerAssignment(manager_id=memberships[manager].id,
                                                   member_id=memberships[e].id) for e in team)
        db.session.flush()
        result[spec.slug] = ws
    return result


class RecordFactory:
    """Draws realistic-looking records for one workspace from one seeded RNG."""

    def __init__(self, rng: random.Random, workspace_id: int, owner_ids: Sequence[int | None],
                 owner_weights: Sequence[int]) -> None:
        self.rng = rng
        self.ws = workspace_id
        self.owner_ids = owner_ids
        self.owner_weights = owner_weights
        self.now = utcnow().replace(microsecond=0)
        self.today = self.now.date()

    def owner(self) -> int | None:
        return self.rng.choices(self.owner_ids, self.owner_weights)[0]

    def created(self, max_days: int = 365) -> dt.datetime:
        return self.now - dt.timedelta(minutes=self.rng.randrange(max_days * 24 * 60))

    def person(self) -> tuple[str, str]:
        return self.rng.choice(FIRST), self.rng.choice(LAST)

    def company(self) -> str:
        r = self.rng
        return f"{r.choice(COMPANY_A)}{r.choice(COMPANY_B)} {r.choice(COMPANY_C)}"

    @staticmethod
    def domain(company: str) -> str:
        return company.split()[0].lower() + ".example"

    def base(self) -> dict[str, Any]:
        return {"workspace_id": self.ws, "owner_id": self.owner(), "created_at": self.created()}

    def client(self) -> dict[str, Any]:
        name = self.company()
        return {**self.base(), "name": name, "email": f"hello@{self.domain(name)}",
                "phone": f"+1 555 {self.rng.randrange(10000):04d}",
                "region": self.rng.choice(REGIONS)}

    def lead(self) -> dict[str, Any]:
        first, last = self.person()
        company = self.company()
        return {**self.base(), "name": f"{first} {last}", "company": company,
                "email": f"{first}.{last}@{self.domain(company)}".lower(),
                "status": self.rng.choices(LEAD_STATUSES, LEAD_STATUS_WEIGHTS)[0],
                "source": self.rng.choice(LEAD_SOURCES)}

    def deal(self, clients: Sequence[tuple[int, str]]) -> dict[str, Any]:
        r = self.rng
        client = r.choice(clients) if clients and r.random() < 0.85 else None
        stage = r.choices(DEAL_STAGES, STAGE_WEIGHTS)[0]
        closed = stage in ("won", "lost")
        offset = -r.randrange(1, 180) if closed else r.randrange(3, 120)
        return {**self.base(), "client_id": client[0] if client else None,
                "title": f"{client[1] if client else self.company()} · {r.choice(PRODUCTS)}",
                "stage": stage, "amount": Decimal(r.randrange(1_000, 150_000, 250)),
                "close_date": self.today + dt.timedelta(days=offset)}

    def task(self, clients: Sequence[tuple[int, str]]) -> dict[str, Any]:
        r = self.rng
        client = r.choice(clients) if clients and r.random() < 0.75 else None
        who = client[1] if client else " ".join(self.person())
        return {**self.base(), "client_id": client[0] if client else None,
                "title": f"{r.choice(TASK_VERBS)} {who}",
                "status": "done" if r.random() < 0.35 else "open",
                "due_date": self.today + dt.timedelta(days=r.randrange(-20, 45))}

    def note(self, clients: Sequence[tuple[int, str]]) -> dict[str, Any]:
        r = self.rng
        client = r.choice(clients) if clients and r.random() < 0.85 else None
        return {**self.base(), "client_id": client[0] if client else None,
                "body": " ".join(r.sample(NOTE_LINES, r.randrange(1, 4)))}


def insert_rows(model: type, rows: Iterable[dict[str, Any]], batch: int = 1000) -> int:
    """Bulk-insert ``rows`` in batches (executemany; no flush, no per-object overhead)."""
    count = 0
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == batch:
            db.session.execute(sa.insert(model), chunk)
            count += len(chunk)
            chunk = []
    if chunk:
        db.session.execute(sa.insert(model), chunk)
        count += len(chunk)
    return count


def create_records(spec: DemoWorkspace, ws: Any, users: dict[str, User], rng: random.Random,
                   scale: float) -> dict[str, int]:
    """Insert one workspace's records (clients first: the others point at them)."""
    owner_ids = [users[email].id if email else None for email, _ in spec.owners]
    make = RecordFactory(rng, ws.id, owner_ids, [w for _, w in spec.owners])
    n = {name: scaled(v, scale) for name, v in spec.volumes}
    counts = {"clients": insert_rows(Client, (make.client() for _ in range(n["clients"])))}
    clients = [(cid, name) for cid, name in db.session.execute(
        sa.select(Client.id, Client.name).where(Client.workspace_id == ws.id).order_by(Client.id))]
    counts["leads"] = insert_rows(Lead, (make.lead() for _ in range(n["leads"])))
    counts["deals"] = insert_rows(Deal, (make.deal(clients) for _ in range(n["deals"])))
    counts["tasks"] = insert_rows(Task, (make.task(clients) for _ in range(n["tasks"])))
    counts["notes"] = insert_rows(Note, (make.note(clients) for _ in range(n["notes"])))
    return counts


def seed_demo(*, scale: float = 1.0, reset: bool = False) -> SeedReport:
    """Create the demo workspaces, users and records, unless they already exist.

    With ``reset`` every table is emptied first (see :func:`delete_all_data`).
    Commits.
    """
    if demo_present() and not reset:
        return SeedReport(created=False, logins=demo_logins())
    rng = random.Random(SEED)
    report = SeedReport(created=True, logins=demo_logins())
    with rbac.system():
        if reset:
            delete_all_data()
        users = create_users()
        created = create_workspaces(users)
        for spec in WORKSPACES:
            counts = create_records(spec, created[spec.slug], users, rng, scale)
            for name, value in counts.items():
                report.counts[name] = report.counts.get(name, 0) + value
        create_sharing(created)
        report.counts["campaigns"] = seed_campaigns(created)
        accounting_seed.seed_accounting(created["acme"], PASSWORD, rng)
    db.session.commit()
    return report


def create_sharing(created: dict[str, Any]) -> Any:
    """Acme shares its clients of one region with Beta (view only), accepted by Beta.

    Beta's members then see those clients marked "Shared by Acme Sales", as far
    as their own role allows (see the README's "Sharing agreements").
    """
    m = rbac.models
    agreement = m.SharingAgreement(
        granting_workspace_id=created["acme"].id, receiving_workspace_id=created["beta"].id,
        status="active", notes=f"Beta's team follows up Acme's {REGIONS[0]} accounts.",
        decided_at=utcnow())
    agreement.permissions.append(m.SharingPermission(
        resource="clients", action="view",
        condition=[{"field": "region", "op": "eq", "value": REGIONS[0]}]))
    db.session.add(agreement)
    return agreement


# -- CLI --------------------------------------------------------------------------

@click.group("demo", help="Demo data for the CRM.")
def demo_group() -> None:
    pass


class _Scale(click.FloatRange):
    """A finite factor from 0.001 to 20: click's range lets NaN through (no comparison
    with NaN is false), which would then reach ``round``."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


@demo_group.command("seed")
@click.option("--reset", is_flag=True,
              help="Empty the whole database first, then seed again.")
@click.option("--yes", is_flag=True, help="Do not ask before --reset empties the database.")
@click.option("--scale", type=_Scale(0.001, 20), default=1.0, show_default=True,
              help="Multiply the number of records (e.g. 0.05 for a quick seed).")
@with_appcontext
def seed_command(reset: bool, yes: bool, scale: float) -> None:
    """Seed two demo workspaces with users for every built-in role (idempotent)."""
    if not sa.inspect(db.engine).has_table(rbac.models.Workspace.__tablename__):
        raise click.ClickException("The database has no tables yet: run `flask db upgrade`.")
    if reset and not yes:
        click.confirm(f"Empty every table of {db.engine.url.render_as_string()} and seed again?",
                      abort=True)
    report = seed_demo(scale=scale, reset=reset)
    if report.created:
        made = ", ".join(f"{n} {name}" for name, n in report.counts.items())
        click.echo(f"Seeded workspaces {', '.join(w.name for w in WORKSPACES)}: {made}.")
    else:
        click.echo(f"Demo data already present (workspace {WORKSPACES[0].slug!r}); "
                   "nothing to do. Use --reset to recreate it.")
    width = max(len(email) for email, _ in report.logins)
    click.echo(f"\nDemo logins (password for all: {PASSWORD})")
    click.echo(f"  {'email':{width}}  roles")
    for email, roles in report.logins:
        click.echo(f"  {email:{width}}  {roles}")
    click.echo("\nStart the app with `FLASK_CRM_HTTPS=false flask --app wsgi run` (plain HTTP) and open http://127.0.0.1:5000/")


@demo_group.command("set-password")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="The new password (asked for, twice and hidden, when left out).")
@with_appcontext
def set_password_command(email: str, password: str) -> None:
    """Set an account's password, under the password rules of its workspaces.

    A typed password meets the strictest rules of the account's workspaces
    (length and strength, ``crm_rbac_plugin.security.passwords``), as on the
    profile page and at invitation acceptance; a refusal prints the reasons
    and writes nothing. Only ``demo seed`` sets a password below the rules:
    the demo's one fixed, documented word. Setting the password signs every
    session of the account out.
    """
    user = db.session.scalar(sa.select(User).where(
        sa.func.lower(User.email) == email.strip().lower()))
    if user is None:
        raise click.BadParameter(f"no account has the address {email!r}", param_hint="EMAIL")
    try:
        require_password(password, field="password", user_inputs=user_inputs_of(user),
                         policy=password_rules_for_user(rbac, user.id))
    except ValidationError as exc:
        raise click.BadParameter(str(exc), param_hint="'--password'") from None
    user.set_password(password)
    user.rotate_session_token()  # no browser asked: every cookie ends
    revoke_all(rbac, user.id, except_current=False, by=None, reason="password_changed")
    db.session.commit()
    click.echo(f"Password set for {user.email}; every session of the account is signed out.")
