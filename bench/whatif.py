"""What-if: the figures that fail, re-measured with the proposed plugin patches.

``python -m bench.whatif [--backend sqlite] [--leads 100000] [--passes 3]``

Nothing here changes the plugin's files: each variant swaps, for the
duration of its measurement only, the plugin's ``do_orm_execute`` listener
or ``RBAC.can`` for the patched version below, which is the code of the
proposals in ``bench/proposals/*.patch``. Every variant is measured
``--passes`` times, in rotation, and the median ratio is reported, so that
a burst of load from other work on the machine spoils one pass, not the
answer. Prints one table and writes ``bench/results/whatif-<backend>.json``.

Variants:

* ``current``: the plugin as it is.
* ``A decision memo``: ``rbac.can`` without a record memoises the answer on
  the ``Access`` (resource-level answers depend only on the Access and the
  registry, both immutable), so the reasons and steps text is built once.
* ``B cached options``: the listener keeps its tuple of
  ``with_loader_criteria`` options on the ``Access`` per (action, primary
  model) instead of building five new options on every execution.
* ``C related only``: the listener adds criteria only for the protected
  models the statement names and those reachable from them through
  relationships (so joined eager loads stay filtered), not for every
  registered model; the cost of SQLAlchemy's per-execution cache key grows
  with the size of the criteria it has to walk.
* ``B+C``: both.
* ``E involved memo``: on top of B+C, the listener remembers which
  protected tables a statement touches, and whether it aliases one, by the
  statement's SQL cache key (which SQLAlchemy computes for every execution
  anyway and memoises on the statement) instead of walking the whole
  statement tree twice every time.
* ``D membership TTL``: ``current_access`` keeps the (membership id,
  policy version) row of a (user, workspace) for 2 s instead of reading it
  on every request; a policy change made by another process is then seen
  up to 2 s late (this process's own changes are still seen at once if the
  cache is dropped on ``role_changed``/``member_changed``). A trade-off
  for the maintainers, measured here so they can weigh it.
* ``all``: A + B + C + E + D.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from flask import g  # noqa: E402
from flask_login import current_user  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria  # noqa: E402

from crm_app.extensions import db  # noqa: E402
from crm_app.rbac_setup import rbac  # noqa: E402
from crm_rbac_plugin import RBAC  # noqa: E402
from crm_rbac_plugin.context import SYSTEM  # noqa: E402
from crm_rbac_plugin.errors import PermissionDenied  # noqa: E402
from crm_rbac_plugin.loader import membership_row  # noqa: E402
from crm_rbac_plugin.policy import Access  # noqa: E402
from crm_rbac_plugin.query import referenced_resources  # noqa: E402

try:  # newer plugin versions also filter explicit aliases
    from crm_rbac_plugin.query import aliased_resources  # noqa: E402
except ImportError:  # pragma: no cover
    aliased_resources = None  # type: ignore[assignment]

from bench import figures, world as world_mod  # noqa: E402

_ORIGINAL_CAN = RBAC.can


def _related(registry: Any, involved: list[Any]) -> list[Any]:
    """The involved resources and the protected models reachable by relationships."""
    seen: dict[str, Any] = {}
    todo = list(involved)
    while todo:
        res = todo.pop()
        if res.name in seen or res.model is None:
            continue
        seen[res.name] = res
        for rel in sa.inspect(res.model).relationships:
            target = registry.for_model(rel.mapper.class_)
            if target is not None:
                todo.append(target)
    return list(seen.values())


def patched_listener(cache_options: bool, related_only: bool, memo_involved: bool = False,
                     ) -> Callable[[ORMExecuteState], None]:
    """Return RBAC._on_orm_execute with proposals B, C and/or E applied."""
    self = rbac
    involved_by_key: dict[Any, tuple[list[Any], bool]] = {}

    def listener(state: ORMExecuteState) -> None:
        if state.is_column_load or state.execution_options.get("rbac_bypass"):
            return
        ck = state.statement._generate_cache_key() if memo_involved else None
        if ck is not None and ck.key in involved_by_key:
            involved, has_aliases = involved_by_key[ck.key]
        else:
            involved = referenced_resources(self.registry, state.statement)
            has_aliases = True  # unknown: walk for aliases, as the plugin does
            if ck is not None:
                has_aliases = bool(involved and aliased_resources is not None
                                   and aliased_resources(self.registry, state.statement))
                involved_by_key[ck.key] = (involved, has_aliases)
        if not involved:
            return
        ctx = self.resolve_context()
        if ctx is SYSTEM:
            return
        if hasattr(self, "_refuse_unfilterable"):  # the plugin's own checks, as they are
            self._refuse_unfilterable(state, involved)
        elif not state.is_orm_statement:
            raise PermissionDenied("Core statements on protected tables run only inside "
                                   "rbac.system(); use ORM queries so they can be filtered.")
        access: Access | None = ctx
        primary = state.bind_mapper.class_ if state.bind_mapper is not None else None
        if state.is_update:
            action = "edit"
            self._check_bulk_update(access, state, primary)
        elif state.is_delete:
            action = "delete"
        else:
            action = state.execution_options.get("rbac_action", "view")
        key = ("__options__", action, primary,
               tuple(sorted(r.name for r in involved)) if related_only else None)
        options = access.sql_cache.get(key) if cache_options and access is not None else None
        if options is None:
            targets = (_related(self.registry, involved) if related_only
                       else [r for r in self.registry if r.model is not None])
            options = tuple(
                with_loader_criteria(res.model, self.criteria(
                    access, res, action if res.model is primary else "view"))
                for res in targets)
            if cache_options and access is not None:
                access.sql_cache[key] = options
        extra = []
        if aliased_resources is not None and has_aliases:  # explicit aliases, as the plugin
            for alias, res in aliased_resources(self.registry, state.statement):
                extra.append(with_loader_criteria(
                    alias, self.criteria(access, res, "view", entity=alias)))
        state.statement = state.statement.options(*options, *extra)

    return listener


_MISSING: Any = object()


def memo_can(self: RBAC, action: str, resource: str | None = None, record: Any = None, *,
             access: Any = _MISSING) -> bool:
    """RBAC.can with proposal A: resource-level answers memoised on the Access."""
    if record is None and isinstance(access, Access) and resource is not None:
        key = ("__can__", resource, action)
        allowed = access.sql_cache.get(key)
        if allowed is None:
            allowed = _ORIGINAL_CAN(self, action, resource, access=access)
            access.sql_cache[key] = allowed
        return allowed  # type: ignore[no-any-return]
    if access is _MISSING:
        return _ORIGINAL_CAN(self, action, resource, record)
    return _ORIGINAL_CAN(self, action, resource, record, access=access)


_ORIGINAL_CURRENT_ACCESS = RBAC.current_access
MEMBERSHIP_TTL_S = 2.0


def ttl_current_access(self: RBAC) -> Access | None:
    """RBAC.current_access with proposal D: the membership row kept for 2 s."""
    if "_rbac_access" in g:
        return g._rbac_access  # type: ignore[no-any-return]
    access = None
    ws = self.current_workspace_id()
    if ws is not None:
        rows = self.state.__dict__.setdefault("_membership_rows", {})
        key = (current_user.get_id(), ws)
        now = time.monotonic()
        hit = rows.get(key)
        if hit is not None and now - hit[0] < MEMBERSHIP_TTL_S:
            row = hit[1]
        else:
            row = membership_row(self.db.session, self.models, user_id=key[0],
                                 workspace_id=ws)
            rows[key] = (now, row)
        if row is not None:
            access = self._access_for_row(row)
    g._rbac_access = access
    return access


@contextmanager
def variant(name: str) -> Iterator[None]:
    parts = {"A decision memo": "A", "B cached options": "B", "C related only": "C",
             "B+C": "BC", "E involved memo": "BCE", "D membership TTL": "D",
             "all": "ABCDE"}.get(name, "")
    listener = None
    if "B" in parts or "C" in parts:
        listener = patched_listener(cache_options="B" in parts, related_only="C" in parts,
                                    memo_involved="E" in parts)
        event.remove(db.session, "do_orm_execute", rbac._on_orm_execute)
        event.listen(db.session, "do_orm_execute", listener)
    if "A" in parts:
        RBAC.can = memo_can  # type: ignore[method-assign]
    if "D" in parts:
        RBAC.current_access = ttl_current_access  # type: ignore[method-assign]
    try:
        yield
    finally:
        if listener is not None:
            event.remove(db.session, "do_orm_execute", listener)
            event.listen(db.session, "do_orm_execute", rbac._on_orm_execute)
        RBAC.can = _ORIGINAL_CAN  # type: ignore[method-assign]
        RBAC.current_access = _ORIGINAL_CURRENT_ACCESS  # type: ignore[method-assign]


VARIANTS = ("current", "A decision memo", "B cached options", "C related only", "B+C",
            "E involved memo", "D membership TTL", "all")


def _measure(app: Any, world: Any, crm: list[Any], effort: Any) -> dict[str, Any]:
    row: dict[str, Any] = {}
    with app.app_context():
        app.extensions["rbac"].cache.clear()
        d = figures.decisions(app, world, world.members["own"], effort, workspace_members=crm)
        row["rbac_warm_over_dict"] = d["rbac_warm_over_dict"]
        lists = figures.list_queries(world, effort, explain=False)
        row["list"] = {sc: r["plugin_over_handwritten"] for sc, r in lists.items()}
        row["list_same_rows"] = all(r["same_rows"] for r in lists.values())
        db.session.remove()
    req = figures.guarded_requests(app, world, effort)
    row["request_over_plain"] = {f"{pg}/{sc}": r["plugin_over_plain"]
                                 for sc, pages in req.items() for pg, r in pages.items()}
    row["request_over_hand"] = {f"{pg}/{sc}": r["plugin_over_handwritten"]
                                for sc, pages in req.items() for pg, r in pages.items()}
    return row


def _median_rows(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every ratio over the passes (a burst of load spoils one pass, not three)."""
    out: dict[str, Any] = {"passes": len(rows)}
    out["rbac_warm_over_dict"] = statistics.median(r["rbac_warm_over_dict"] for r in rows)
    out["list_same_rows"] = all(r["list_same_rows"] for r in rows)
    for key in ("list", "request_over_plain", "request_over_hand"):
        out[key] = {k: round(statistics.median(r[key][k] for r in rows), 3) for k in rows[0][key]}
    out["per_pass"] = rows
    return out


def _stop(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: stop PostgreSQL


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.whatif")
    parser.add_argument("--backend", default="sqlite", choices=("sqlite", "postgresql"))
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--passes", type=int, default=3,
                        help="measure every variant this many times, in rotation, and "
                             "report the median ratio")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    from bench.run import database

    sizes = world_mod.Sizes(role_counts=(1000,), role_members=1000, canonical_roles=1000)
    effort = figures.Effort(repeat=15, warmup=3, budget_s=10.0, requests_repeat=30)
    pg = None
    out: dict[str, Any] = {"backend": args.backend, "leads": args.leads, "variants": {},
                           "load_average_start": os.getloadavg()[0]}
    try:
        if args.backend == "postgresql":
            from tests.pgserver import PostgresServer

            pg = PostgresServer().start()
        with database(args.backend, pg) as url:
            app = world_mod.make_app(url)
            with app.app_context():
                world = world_mod.seed(sizes)
                world_mod.load_leads(world, sizes, args.leads)
                crm = [world.members[k] for k in ("owner", "own", "department", "all")]
            passes: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
            for n in range(args.passes):
                order = VARIANTS[n % len(VARIANTS):] + VARIANTS[:n % len(VARIANTS)]
                for name in order:
                    with variant(name):
                        passes[name].append(_measure(app, world, crm, effort))
                print(f"pass {n + 1}/{args.passes} done", flush=True)
            for name in VARIANTS:
                row = out["variants"][name] = _median_rows(passes[name])
                print(f"{name:18} can/dict {row['rbac_warm_over_dict']:5.1f}x  list "
                      + " ".join(f"{k}={v:.2f}x" for k, v in row["list"].items())
                      + "  request/off " + " ".join(
                          f"{k}={v:.2f}x" for k, v in row["request_over_plain"].items()),
                      flush=True)
            with app.app_context():
                db.session.remove()
                db.engine.dispose()
    finally:
        if pg is not None:
            pg.stop()
    out["load_average_end"] = os.getloadavg()[0]
    path = ROOT / "bench" / "results" / f"whatif-{args.backend}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
