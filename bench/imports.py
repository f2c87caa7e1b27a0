"""``python -m bench.imports``: CSV import speed against a plain bulk insert of the same rows.

One member (the Admin role, which holds ``import`` and ``manage``) imports a
generated leads file through ``crm_rbac_plugin.imports``: parse, check every
row (:func:`~crm_rbac_plugin.imports.prepare`), then write all of them in one
transaction, chunk by chunk through the flush guard
(:func:`~crm_rbac_plugin.imports.commit`). The same rows are then inserted
with one plain ``INSERT`` executemany in the system context (no checks, no
ORM objects), in the same run, on the same database. Printed: rows per
second of the check, of the whole import and of the plain insert, and the
ratio of the import's time to the plain insert's::

    python -m bench.imports                           # 100,000 rows, SQLite in memory
    python -m bench.imports --rows 1000 --url postgresql://...  # an empty database
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.imports",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file")
    parser.add_argument("--url", default="sqlite://", help="database URL (default: SQLite "
                                                           "in memory); its tables are created")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    return parser.parse_args(argv)


def csv_bytes(rows: int) -> bytes:
    """A leads file of ``rows`` rows: name, company, email, status, source."""
    lines = ["Name,Company,Email,Status,Source"]
    statuses = ("new", "contacted", "qualified", "lost")
    for i in range(rows):
        lines.append(f"Lead {i},Company {i % 997},lead{i}@bench.test,"
                     f"{statuses[i % 4]},import")
    return ("\n".join(lines) + "\n").encode("utf-8")


def _setup(url: str, rows: int) -> tuple[Any, Any]:
    """The demo app on ``url``: one workspace and an Admin; rows up to ``rows`` allowed."""
    from crm_app import create_app
    from crm_app.extensions import db
    from crm_app.models import User
    from crm_app.rbac_setup import rbac
    from crm_rbac_plugin import workspaces

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench",
                      "WTF_CSRF_ENABLED": False, "RBAC_REGISTER_BLUEPRINTS": False,
                      "RBAC_IMPORT_MAX_ROWS": max(rows, 1)})
    ctx = app.app_context()
    ctx.push()
    db.create_all()
    owner, admin = User(email="owner@bench.test", name="Owner"), User(
        email="admin@bench.test", name="Admin")
    db.session.add_all([owner, admin])
    db.session.flush()
    ws = workspaces.create_workspace(rbac, "Bench", owner=owner, slug="bench")
    membership = workspaces.add_member(rbac, ws, admin, ["admin"])
    db.session.commit()
    return app, rbac.access_for(membership)


def measure(url: str, rows: int) -> dict[str, Any]:
    """Import ``rows`` leads as the Admin, then bulk-insert the same rows; return the figures."""
    import sqlalchemy as sa

    from crm_app.extensions import db
    from crm_app.imports.fields import FIELDS
    from crm_app.models import Lead
    from crm_app.rbac_setup import rbac
    from crm_rbac_plugin import imports

    _app, access = _setup(url, rows)
    data = csv_bytes(rows)
    with rbac.as_member(access):
        start = time.perf_counter()
        header, parsed = imports.read_csv(data, max_rows=rows, max_columns=100)
        plan = imports.prepare(rbac, "leads", FIELDS["leads"], parsed,
                               imports.guess_mapping(header, FIELDS["leads"]), owners={})
        checked = time.perf_counter()
        assert plan.ok, plan.errors[:3]
        imports.commit(rbac, plan)
        done = time.perf_counter()
    values = [dict(v) for v in plan.rows]
    with rbac.system():
        plain_start = time.perf_counter()
        db.session.execute(sa.insert(Lead), values)
        db.session.commit()
        plain_done = time.perf_counter()
        stored = db.session.scalar(sa.select(sa.func.count()).select_from(Lead))
    assert stored == 2 * rows, stored
    import_s, plain_s = done - start, plain_done - plain_start
    return {"url": url.split("@")[-1], "rows": rows,
            "check_rows_per_s": round(rows / (checked - start)),
            "import_rows_per_s": round(rows / import_s),
            "plain_rows_per_s": round(rows / plain_s),
            "import_s": round(import_s, 3), "plain_s": round(plain_s, 3),
            "ratio": round(import_s / plain_s, 2)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = measure(args.url, args.rows)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"CSV import of {result['rows']:,} leads on {result['url']}:")
    print(f"  check only      {result['check_rows_per_s']:>10,} rows/s")
    print(f"  import (checked, through the guard)  {result['import_rows_per_s']:>10,} rows/s"
          f"  ({result['import_s']} s)")
    print(f"  plain bulk INSERT                    {result['plain_rows_per_s']:>10,} rows/s"
          f"  ({result['plain_s']} s)")
    print(f"  ratio import / plain: {result['ratio']}x the time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
