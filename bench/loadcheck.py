"""What a member may see at a given moment of the load run, and how each answer is judged.

The load client knows every member's rights, and when each change was
made: ``sent`` is when its request left the admin client, ``committed``
when its answer came back (the view commits before it answers, so the
change is committed by then). An answer is judged against the rights a
correct server may apply to it:

* the old rights if the request ended before the change was sent;
* the new rights if it *started* after the change was committed;
* either, if it overlapped the change (its transaction may have begun
  before the commit).

An answer no admissible rights allow is **stale** when it started after a
change's commit and the rights before that change allow it (the server
still used the old rights), and **wrong** otherwise (it is counted with the
errors).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from .loadapp import LoadMember, LoadWorld

#: A lead as the client checks it: (id, workspace_id, owner_id).
Row = tuple[int, int, int | None]


@dataclass
class Change:
    """One permission change made during the run (``role`` or ``agreement``)."""

    kind: str
    sent: float = math.inf
    committed: float = math.inf
    status: int | None = None

    def when(self, started: float, ended: float) -> str:
        """``old``, ``new`` or ``either``: which side of the change a request is on."""
        if ended < self.sent:
            return "old"
        if started > self.committed:
            return "new"
        return "either"


@dataclass(frozen=True)
class Rights:
    scope: str
    shared: bool


@dataclass
class Verdicts:
    """The counts the report gives for the checks."""

    checked: int = 0
    wrong: int = 0
    stale: dict[str, int] = field(default_factory=lambda: {"role": 0, "agreement": 0})
    #: Detail requests started after a change's commit whose right answer (200 or 404)
    #: differs from the one before the change: each would have shown a stale right.
    exercised: dict[str, int] = field(default_factory=lambda: {"role": 0, "agreement": 0})
    #: List and export pages of affected members started after a change's commit (a
    #: stale one would show a row the change hid, unless the page holds none of them).
    pages_after: dict[str, int] = field(default_factory=lambda: {"role": 0, "agreement": 0})
    #: Seconds from a change's commit to the start of the first such probe or page.
    first_after_s: dict[str, float | None] = field(
        default_factory=lambda: {"role": None, "agreement": None})

    def after(self, kind: str, seconds: float) -> None:
        first = self.first_after_s[kind]
        self.first_after_s[kind] = seconds if first is None else min(first, seconds)


class Judge:
    """Judge the answers of one run against the world and its changes."""

    def __init__(self, world: LoadWorld, changes: dict[str, Change]) -> None:
        self.world = world
        self.changes = changes
        self.verdicts = Verdicts()

    # -- rights -------------------------------------------------------------------
    def _scopes(self, index: int, side: str) -> list[str]:
        member = self.world.members[index]
        if index != self.world.role_probe:
            return [member.scope]
        return {"old": ["all"], "new": ["own"], "either": ["all", "own"]}[side]

    def rights(self, index: int, started: float, ended: float,
               ignore: str | None = None) -> list[Rights]:
        """The rights a correct server may apply; ``ignore``: as if that change never happened."""
        role = "old" if ignore == "role" else self.changes["role"].when(started, ended)
        share = "old" if ignore == "agreement" else self.changes["agreement"].when(started, ended)
        shared = {"old": [True], "new": [False], "either": [True, False]}[share]
        return [Rights(s, sh) for s, sh in itertools.product(self._scopes(index, role), shared)]

    def current_scope(self, index: int, now: float) -> str:
        """The scope the hand pages are told to apply for a request starting ``now``."""
        return self._scopes(index, self.changes["role"].when(now, now))[0]

    def visible(self, member: LoadMember, row: Row, rights: Rights) -> bool:
        _, ws, owner = row
        if ws == self.world.crm_ws:
            in_ws = True
        elif ws == self.world.other_ws:
            in_ws = rights.shared
        else:
            in_ws = False
        if not in_ws or rights.scope == "all":
            return in_ws
        if owner is None or owner == member.user_id:
            return True
        return (rights.scope == "department"
                and self.world.departments.get(owner) == member.department_id)

    def _affected(self, index: int, kind: str) -> bool:
        return kind == "agreement" or index == self.world.role_probe

    # -- answers ------------------------------------------------------------------
    def rows(self, index: int, rows: list[Row], started: float, ended: float) -> bool:
        """Judge a list or export page; False if it is wrong or stale."""
        member = self.world.members[index]
        ok = self._judge(index, started, ended,
                         lambda r: all(self.visible(member, row, r) for row in rows))
        for kind, change in self.changes.items():
            if started > change.committed and self._affected(index, kind):
                self.verdicts.pages_after[kind] += 1
                self.verdicts.after(kind, started - change.committed)
        return ok

    def detail(self, index: int, target: Row, status: int, row: Row | None, started: float,
               ended: float) -> bool:
        """Judge a detail answer: 200 with the row if visible, 404 (or 403) if not."""
        member = self.world.members[index]
        if status == 200:
            seen = row if row is not None else target
            ok = self._judge(index, started, ended, lambda r: self.visible(member, seen, r))
        else:
            ok = self._judge(index, started, ended,
                             lambda r: not self.visible(member, target, r))
        for kind, change in self.changes.items():
            if started > change.committed:
                new = self.rights(index, started, ended)
                old = self.rights(index, started, ended, ignore=kind)
                if any(self.visible(member, target, r) for r in old) != any(
                        self.visible(member, target, r) for r in new):
                    self.verdicts.exercised[kind] += 1
                    self.verdicts.after(kind, started - change.committed)
        return ok

    def _judge(self, index: int, started: float, ended: float, allowed: Any) -> bool:
        self.verdicts.checked += 1
        if any(allowed(r) for r in self.rights(index, started, ended)):
            return True
        for kind, change in self.changes.items():
            if started > change.committed and any(
                    allowed(r) for r in self.rights(index, started, ended, ignore=kind)):
                self.verdicts.stale[kind] += 1
                return False
        self.verdicts.wrong += 1
        return False
