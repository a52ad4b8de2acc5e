#!/usr/bin/env bash
# The test command: set up .venv, bring up what tests need, lint, type-check, run pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k engine).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test,bench
eval "$(scripts/ensure-services.sh)"
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check src tests bench
echo "== mypy"; mypy
echo "== pytest"
set +e
# Test files run side by side (tests of one file stay on one worker, in order: module fixtures
# and the per-file servers keep their meaning); every store test has its own SQLite file or
# PostgreSQL database and every server its own ports. WORLDTREE_TEST_WORKERS=0 runs them serially.
workers=${WORLDTREE_TEST_WORKERS:-3}
if [ "$workers" = 0 ]; then parallel=(); else parallel=(-n "$workers" --dist loadfile); fi
python -m pytest -q -rs "${parallel[@]}" "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "no tests ran" >&2; exit 1; fi
exit "$rc"
