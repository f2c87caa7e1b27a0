#!/usr/bin/env bash
# Start the demo CRM app on http://127.0.0.1:${PORT:-5000}
# Creates .venv if needed, installs the plugin with the demo extra, migrates and seeds the DB.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -e '.[demo]'  # crm_app runs from this directory

# A random secret key, kept in instance/ (git-ignored, readable by this user only),
# so sessions survive restarts; create_app refuses to start without a real key.
mkdir -p instance
if [ ! -s instance/secret_key ]; then
  (umask 077 && .venv/bin/python -c 'import secrets; print(secrets.token_hex(32))' > instance/secret_key)
fi
chmod 600 instance/secret_key

export FLASK_APP=wsgi.py
# The demo is served over plain HTTP on 127.0.0.1: cookies without the Secure flag and
# no redirect to HTTPS. Never set this on a deployment reached over a network.
export FLASK_CRM_HTTPS=false
.venv/bin/flask db upgrade      # apply migrations
.venv/bin/flask demo seed       # idempotent demo data
echo
echo "Demo CRM: http://127.0.0.1:${PORT:-5000}/  (log in with one of the accounts above)"
exec .venv/bin/flask run --host 127.0.0.1 --port "${PORT:-5000}"
