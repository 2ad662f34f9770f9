#!/usr/bin/env bash
# Fails when any C++ file under src/ tests/ bench/ fuzz/ differs from .clang-format's style.
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files -co --exclude-standard 'src/*' 'tests/*' 'bench/*' 'fuzz/*' | grep -E '\.(h|cpp)$' || true)
bad=()
for f in $files; do
  [ -f "$f" ] || continue
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -gt 0 ]; then
  echo "check-format: not formatted (run: clang-format -i FILE):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format: ok"
