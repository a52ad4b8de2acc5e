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
python -m pytest -q -rs "$@"
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "no tests ran" >&2; exit 1; fi
exit "$rc"
