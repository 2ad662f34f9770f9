#!/usr/bin/env bash
# Runs a Python test of `toy serve` (tests/server/*.py) in a virtual environment
# outside the repository that holds tests/server/requirements.txt (the official
# `openai` client from PyPI). Usage: run_python_tests.sh TOY_BINARY SCRIPT [ARGS...]
# Exits 77 (ctest: skipped) with a message when PyPI cannot be reached to set it up.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export TOY_BIN="$(realpath "$1")"
shift
venv="${TOY_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/toy-venv}"
requirements="$here/requirements.txt"
stamp="$venv/.toy-requirements-$(sha256sum "$requirements" | cut -c1-16)"
mkdir -p "$(dirname "$venv")"
(
  # Tests run in parallel under ctest: one of them sets the environment up.
  flock 9
  if [ ! -f "$stamp" ]; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    if ! "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements" \
        >"$venv/.pip.log" 2>&1; then
      if ! "$venv/bin/python" - <<'PY' 2>/dev/null
import urllib.request
urllib.request.urlopen("https://pypi.org/simple/openai/", timeout=10)
PY
      then
        echo "SKIPPED: PyPI is unreachable, cannot install tests/server/requirements.txt" >&2
        exit 77
      fi
      cat "$venv/.pip.log" >&2
      exit 1
    fi
    touch "$stamp"
  fi
) 9>"$venv.lock"
exec "$venv/bin/python" "$@"
