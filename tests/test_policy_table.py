"""The built-in roles as tables: resource level, and record by record.

The expected tables are written out by hand from ``crm_rbac_plugin/defaults.py``
and the semantics at the top of ``policy.py``; they are not computed from the
code under test. Every record-level cell is checked twice, by the pure policy
(``rbac.can(..., access=...)``) and by the query filter (a filtered select),
through :func:`tests.rbac_helpers.record_table`.

One test per role (and backend) rather than per cell, and one for the whole
resource-level table: each test needs a fresh world, and the suite must stay
fast on PostgreSQL too. A failure shows the dict diff, which names the cells.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from crm_app.rbac_setup import rbac
from tests.rbac_helpers import access_of, fast_passwords, record_table, world_records  # noqa: F401

#: Letters of the resource-level table, in column order.
ACTIONS: dict[str, str] = {"view": "V", "create": "C", "edit": "E", "delete": "D",
                           "export": "X", "manage": "M"}
RESOURCES = ("leads", "deals", "clients", "tasks", "notes")
ALL = "VCEDXM"


def row(leads: str, deals: str, clients: str, tasks: str, notes: str) -> dict[str, str]:
    return {"leads": leads, "deals": deals, "clients": clients, "tasks": tasks, "notes": notes}


#: Resource level: "may this member do the action on at least some records?"
#: Non-owners need ``view`` as well as the action itself (policy rule 6).
RESOURCE_TABLE: dict[str, dict[str, str]] = {
    #                       leads    deals    clients  tasks    notes
    "owner":          row(ALL,     ALL,     ALL,     ALL,     ALL),
    "admin":          row(ALL,     ALL,     ALL,     ALL,     ALL),
    "manager":        row("VCEDX", "VCEDX", "VCEDX", "VCEDX", "VCEDX"),
    "member":         row("VCED",  "VCED",  "VCED",  "VCED",  "VCED"),
    "viewer":         row("V",     "V",     "V",     "V",     "V"),
    "finance":        row("",      "VX",    "",      "",      ""),
    "junior_rep":     row("VCE",   "",      "",      "",      ""),
    "client_success": row("",      "",      "V",     "VCE",   "VCE"),
    "dual":           row("V",     "V",     "V",     "V",     "V"),  # Viewer in w.ws
}

#: The role names each world member holds in ``w.ws`` (a sanity check of the world).
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "owner": ("Owner",), "admin": ("Admin",), "manager": ("Manager",), "member": ("Member",),
    "member2": ("Member",), "viewer": ("Viewer",), "finance": ("Finance",),
    "junior_rep": ("Junior Rep",), "client_success": ("Client Success",),
    "dual": ("Viewer",),
}

#: Every record tag of the world (see ``build_world``); ``ws2`` is in the other workspace.
TAGS: dict[str, tuple[str, ...]] = {
    "leads": ("member", "member2", "manager", "junior_rep", "unowned", "ws2"),
    "clients": ("member", "member2", "manager", "junior_rep", "unowned", "ws2"),
    "deals": ("member-new", "member-won", "member2-new", "member2-won", "manager-new",
              "manager-won", "junior_rep-new", "junior_rep-won", "unowned-new", "unowned-won"),
    "tasks": ("on-member", "on-member2", "on-manager", "on-junior_rep", "on-unowned",
              "loose-member", "loose-member2"),
    "notes": ("on-member", "on-member2", "on-manager", "on-junior_rep", "on-unowned"),
}


def every_record_in_ws(letters: str) -> dict[str, dict[str, str]]:
    """The same letters on every record of ``w.ws``; nothing in the other workspace."""
    return {res: {tag: "" if tag == "ws2" else letters for tag in tags}
            for res, tags in TAGS.items()}


def only(**cells: dict[str, str]) -> dict[str, dict[str, str]]:
    """The given cells; every other record of the world gets nothing."""
    table = {res: dict.fromkeys(tags, "") for res, tags in TAGS.items()}
    for res, tag_letters in cells.items():
        unknown = set(tag_letters) - set(TAGS[res])
        assert not unknown, f"unknown {res} tags in the expected table: {unknown}"
        table[res].update(tag_letters)
    return table


# Record level: V = view, E = edit, D = delete.
#
# * Unowned records are visible (only visible) to whoever may view the resource.
# * Tasks and notes are in scope when their client is visible (policy rule 5),
#   for every action the role grants on them: a Member may therefore edit
#   member2's task on the Member's own client. A client visible only for
#   having no owner lends its tasks and notes its own reach: view only.
# * The Manager's team scope covers the assigned ``member`` but not ``member2``.
RECORD_TABLE: dict[str, dict[str, dict[str, str]]] = {
    "owner": every_record_in_ws("VED"),
    "admin": every_record_in_ws("VED"),
    "viewer": every_record_in_ws("V"),
    "dual": every_record_in_ws("V"),  # Owner of ws2, but acting in w.ws as Viewer
    "manager": only(
        leads={"member": "VED", "manager": "VED", "unowned": "V"},
        clients={"member": "VED", "manager": "VED", "unowned": "V"},
        deals={"member-new": "VED", "member-won": "VED", "manager-new": "VED",
               "manager-won": "VED", "unowned-new": "V", "unowned-won": "V"},
        tasks={"on-member": "VED", "on-manager": "VED", "on-unowned": "V",
               "loose-member": "VED"},
        notes={"on-member": "VED", "on-manager": "VED", "on-unowned": "V"},
    ),
    "member": only(
        leads={"member": "VED", "unowned": "V"},
        clients={"member": "VED", "unowned": "V"},
        deals={"member-new": "VED", "member-won": "VED", "unowned-new": "V",
               "unowned-won": "V"},
        tasks={"on-member": "VED", "on-unowned": "V", "loose-member": "VED"},
        notes={"on-member": "VED", "on-unowned": "V"},
    ),
    "member2": only(  # owns every task and note on a client, sees only some clients
        leads={"member2": "VED", "unowned": "V"},
        clients={"member2": "VED", "unowned": "V"},
        deals={"member2-new": "VED", "member2-won": "VED", "unowned-new": "V",
               "unowned-won": "V"},
        tasks={"on-member": "VED", "on-member2": "VED", "on-manager": "VED",
               "on-junior_rep": "VED", "on-unowned": "VED", "loose-member2": "VED"},
        notes={"on-member": "VED", "on-member2": "VED", "on-manager": "VED",
               "on-junior_rep": "VED", "on-unowned": "VED"},
    ),
    "finance": only(  # closed deals only, unowned ones included, never edited
        deals={"member-won": "V", "member2-won": "V", "manager-won": "V",
               "junior_rep-won": "V", "unowned-won": "V"},
    ),
    "junior_rep": only(
        leads={"junior_rep": "VE", "unowned": "V"},
    ),
    "client_success": only(
        clients={"member": "V", "member2": "V", "manager": "V", "junior_rep": "V",
                 "unowned": "V"},
        tasks={"on-member": "VE", "on-member2": "VE", "on-manager": "VE",
               "on-junior_rep": "VE", "on-unowned": "VE"},
        notes={"on-member": "VE", "on-member2": "VE", "on-manager": "VE",
               "on-junior_rep": "VE", "on-unowned": "VE"},
    ),
}


def test_tables_cover_every_member_and_record(world: SimpleNamespace) -> None:
    assert set(RECORD_TABLE) == set(ROLE_NAMES) == set(RESOURCE_TABLE) | {"member2"}
    records = world_records(world)
    assert {res: tuple(recs) for res, recs in records.items()} == TAGS


def test_resource_level(world: SimpleNamespace) -> None:
    """The whole resource-level table in one world (these decisions need no records)."""
    actual: dict[str, dict[str, str]] = {}
    for member in RESOURCE_TABLE:
        access = access_of(world.members[member])
        assert access.roles == ROLE_NAMES[member]
        actual[member] = {res: "".join(letter for action, letter in ACTIONS.items()
                                       if rbac.can(action, res, access=access))
                          for res in RESOURCES}
    assert actual == RESOURCE_TABLE


@pytest.mark.parametrize("member", sorted(RECORD_TABLE))
def test_record_level_policy_and_filter(world: SimpleNamespace, member: str) -> None:
    actual = record_table(world.members[member], world_records(world))
    assert actual == RECORD_TABLE[member]
