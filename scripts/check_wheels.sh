#!/usr/bin/env bash
# Fail unless every locked requirement installs from a wheel: nothing may compile at install time
# (native builds differ per CPU). Resolves each lock with --only-binary=:all: and --dry-run, so it
# downloads metadata only and installs nothing. Uses the venv's pip when there is one.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP="${PIP:-.venv/bin/pip}"
[ -x "$PIP" ] || PIP="python3 -m pip"
check() {
  local label="$1"; shift
  if ! out=$($PIP install --dry-run --ignore-installed --only-binary=:all: -q "$@" 2>&1); then
    echo "check-wheels: $label does not install from wheels alone:" >&2
    echo "$out" | grep -v "WARNING: Location" >&2
    exit 1
  fi
  echo "check-wheels: $label: every requirement has a wheel"
}
check requirements.txt -r requirements.txt
check requirements-dev.txt -r requirements-dev.txt
check requirements-nodeps.txt --no-deps -r requirements-nodeps.txt
