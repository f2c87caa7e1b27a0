#!/usr/bin/env bash
# Start the demo CRM app on http://127.0.0.1:${PORT:-5000}
# Creates .venv if needed, installs the project, migrates and seeds the DB.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -e .

export FLASK_APP=wsgi.py
.venv/bin/flask db upgrade      # apply migrations
.venv/bin/flask demo seed       # idempotent demo data
echo
echo "Demo CRM: http://127.0.0.1:${PORT:-5000}/  (log in with one of the accounts above)"
exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}"
