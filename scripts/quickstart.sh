#!/usr/bin/env bash
# Quick start: install worldtree into .venv and run the example pipeline on this machine
# (embedded default: SQLite store under .worldtree/, host backend).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/worldtree run "${1:-examples/hello.yaml}"
echo
.venv/bin/worldtree runs --limit 3
