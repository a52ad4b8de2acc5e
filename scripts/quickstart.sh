#!/usr/bin/env bash
# Quick start: install worldtree into .venv and run the example pipeline on the embedded default
# (SQLite store under .worldtree/, host backend): once in this process, then once through
# `worldtree server` (on a free loopback port, stopped at the end) with `worldtree client run`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
pipeline="${1:-examples/hello.yaml}"
.venv/bin/worldtree run "$pipeline"
echo
log="$(mktemp)"
.venv/bin/worldtree server --port 0 >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$log"' EXIT
url=""
for _ in $(seq 1 150); do
  url="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" | head -n 1 || true)"
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "worldtree server did not start:" >&2; cat "$log" >&2; exit 1; }
echo "== the same pipeline through worldtree server at $url"
.venv/bin/worldtree client run "$pipeline" --server "$url"
echo
.venv/bin/worldtree runs --limit 3
