#!/usr/bin/env bash
# Run the test suite: bash scripts/test.sh [pytest args...]
# Creates .venv if needed, installs the project with dev extras, checks the
# import contracts and ruff's rules, runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q -e '.[dev]'

# Structure and lint first (about a second): the import contracts in
# pyproject.toml [tool.importlinter], then ruff's rules in [tool.ruff].
echo "scripts/test.sh: lint-imports (import contracts)"
contracts=$(.venv/bin/lint-imports --no-cache --no-logo 2>&1) || {
  printf '%s\n' "$contracts" >&2
  echo "scripts/test.sh: an import contract is broken (above; pyproject.toml [tool.importlinter])" >&2
  exit 1
}
echo "scripts/test.sh: ruff check"
.venv/bin/ruff check --quiet crm_rbac_plugin crm_app tests bench examples || {
  echo "scripts/test.sh: ruff check failed (above; pyproject.toml [tool.ruff])" >&2
  exit 1
}

# Default pytest args come from [tool.pytest.ini_options] in pyproject.toml.
# One worker per CPU (pytest-xdist), a test file per worker at a time: the
# files share costly module fixtures. RBAC_TEST_WORKERS=0 runs in one process.
workers=${RBAC_TEST_WORKERS:-auto}
xdist=()
[ "$workers" = 0 ] || xdist=(-n "$workers" --dist loadfile)
# The 30 slowest tests are listed at the end: where the suite's time goes.
rc=0
.venv/bin/python -m pytest "${xdist[@]}" --durations=30 "$@" || rc=$?
if [ "$rc" -eq 5 ]; then
  echo "scripts/test.sh: pytest collected no tests -- treating as failure" >&2
  rc=1
fi
exit "$rc"
