#!/usr/bin/env bash
# Check the distribution adopters install: bash scripts/check_wheel.sh
#
# Builds the wheel from a clean copy of the sources (the files git knows, so
# no stale build/ leaks in), checks it holds only crm_rbac_plugin/ and its dist-info, then
# installs it into two clean venvs: one at the oldest supported versions
# (ci/oldest.txt) and one at the newest the bounds allow. In each it runs
# ci/smoke_wheel.py from outside the repository, first with the core
# dependencies only, then with crm-rbac[admin,mail,migrations].
# Needs python3 with venv and pip's usual index configuration.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/crm-rbac-wheel.XXXXXX")
trap 'rm -rf "$work"' EXIT
started=$SECONDS

say() { echo "check_wheel: $*"; }

# --- build ---------------------------------------------------------------------
mkdir -p "$work/src"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard |
    tar --null --files-from=- -cf - | tar -xf - -C "$work/src"
else
  tar --exclude=./.venv --exclude=./build --exclude='*.egg-info' -cf - . | tar -xf - -C "$work/src"
fi
python3 -m venv "$work/build"
"$work/build/bin/python" -m pip wheel -q --no-deps "$work/src" -w "$work/dist"
wheel=$(echo "$work"/dist/crm_rbac-*.whl)
say "built $(basename "$wheel")"

"$work/build/bin/python" - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
stray = [n for n in names if (top := n.split("/")[0]) != "crm_rbac_plugin"
         and not (top.startswith("crm_rbac-") and top.endswith(".dist-info"))]
if stray:
    sys.exit(f"check_wheel: the wheel holds files outside crm_rbac_plugin/: {stray}")
for needed in ("crm_rbac_plugin/py.typed", "crm_rbac_plugin/templates/rbac/403.html",
               "crm_rbac_plugin/static/rbac/rbac.css"):
    if needed not in names:
        sys.exit(f"check_wheel: the wheel lacks {needed}")
print(f"check_wheel: the wheel holds {len(names)} files, all under crm_rbac_plugin/ or dist-info")
EOF

# --- install and smoke-test ------------------------------------------------------
# smoke NAME [pip install args...]: a fresh venv, the wheel without then with extras.
smoke() {
  local name=$1; shift
  local venv="$work/$name"
  python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q "$@" "$wheel"
  say "$name: $("$venv/bin/python" -m pip list --format=freeze 2>/dev/null |
    grep -iE '^(flask|flask-sqlalchemy|sqlalchemy|flask-login|flask-wtf|wtforms|werkzeug|blinker)==' |
    tr '\n' ' ')"
  # From an empty directory: the repository's crm_app and crm_rbac_plugin are not on the path.
  (cd "$work" && "$venv/bin/python" "$root/ci/smoke_wheel.py" --extras none)
  "$venv/bin/python" -m pip install -q "$@" "${wheel}[admin,mail,migrations]"
  say "$name + extras: $("$venv/bin/python" -m pip list --format=freeze 2>/dev/null |
    grep -iE '^(flask-admin|flask-mail|flask-migrate)==' | tr '\n' ' ')"
  (cd "$work" && "$venv/bin/python" "$root/ci/smoke_wheel.py" --extras all)
}

smoke oldest -c "$root/ci/oldest.txt"
smoke newest
say "passed in $((SECONDS - started)) s"
