#!/usr/bin/env bash
# Regenerate the Python gRPC stubs for api/**/*.proto into src/worldtree/api (checked in).
# Usage: scripts/gen-protos.sh [OUT_DIR]   (OUT_DIR defaults to src/worldtree; the test
# tests/agents/test_protos.py regenerates into a temp dir and compares with the checked-in files).
# protoc writes `from api.job.v1 import ...` for imports between our protos; they are rewritten to
# `from worldtree.api....` so the stubs live inside the worldtree package.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/src/worldtree}"
python="${PYTHON:-$root/.venv/bin/python}"
[ -x "$python" ] || python=python3
cd "$root"
protos=(api/agent/v1/agent.proto api/job/v1/job.proto api/job/v1/stream.proto)
mkdir -p "$out"
"$python" -m grpc_tools.protoc -I . --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" "${protos[@]}"
for dir in api api/agent api/agent/v1 api/job api/job/v1; do
  init="$out/$dir/__init__.py"
  [ -f "$init" ] || printf '"""Generated gRPC stubs (scripts/gen-protos.sh); do not edit."""\n' > "$init"
done
find "$out/api" -name '*.py' -o -name '*.pyi' | while read -r f; do
  sed -i -E 's/^from api\.(agent|job)\.v1 import/from worldtree.api.\1.v1 import/' "$f"
done
