"""Benchmark ``worldtree argo export`` on a 5,000-node graph, and Argo JSON Schema validation.

The graph: a seed-002 ``jobs:`` map of 5,000 one-step jobs in 100 layers of 50, each job needing
two jobs of the layer before (9,900 edges); every 10th job has a runner, every 25th a secret,
every 50th ``when: always`` (a ``depends`` expression over its dependencies), every 100th a retry.

Measured, best of ``--repeat`` runs each:

- ``compile``   load + compile the file to an ExecutionGraph (``app.runs.prepare``, cache off);
- ``export``    graph -> manifest dict (task planning, conditions, Hera models, dump);
- ``render``    the dict as YAML (what the CLI prints) and its size; the JSON size too;
- ``validate``  strict validation against Argo's schema (``tests/argo/data/schema.json``);
- ``cli``       ``worldtree argo export FILE > /dev/null`` end to end, one process.

Usage: ``python bench/argo/bench_argo.py [--nodes 5000] [--repeat 3] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "argo"))


def pipeline_yaml(nodes: int, width: int = 50) -> str:
    lines = ["name: argo-bench", "jobs:"]
    for i in range(nodes):
        layer, pos = divmod(i, width)
        lines.append(f"  j{i:05d}:")
        if layer:
            before = (layer - 1) * width
            needs = sorted({before + pos, before + (pos + 1) % width})
            lines.append(f"    needs: [{', '.join(f'j{n:05d}' for n in needs)}]")
        if i % 10 == 0:
            lines.append("    runner: medium")
        if i % 25 == 0:
            lines.append("    secrets: [API_TOKEN]")
        if i % 50 == 0 and layer:
            lines.append("    when: always")
        if i % 100 == 0:
            lines.append("    retry: {max: 2, backoff: 5s}")
        lines.append(f"    steps: [{{run: echo job {i}}}]")
    return "\n".join(lines) + "\n"


def best(repeat: int, fn: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from argo_schema import schema_errors

    from worldtree.app.runs import RunOptions, prepare
    from worldtree.argo.manifest import export_manifest
    from worldtree.argo.settings import ArgoSettings
    from worldtree.cli.argo import render
    from worldtree.ops.config import load_config

    os.environ["WORLDTREE_NO_GRAPH_CACHE"] = "1"  # measure the compiler, not the cache
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "argo-bench.yaml"
        path.write_text(pipeline_yaml(args.nodes))
        settings = ArgoSettings.from_config(load_config(None))
        t_compile, prepared = best(args.repeat, lambda: prepare(str(path), RunOptions()))
        graph = prepared.graph
        t_export, result = best(args.repeat, lambda: export_manifest(graph, settings))
        manifest = result.manifest
        t_render, text = best(args.repeat, lambda: render(manifest, as_json=False))
        schema_errors(manifest)  # build the validator once; validation time below excludes it
        t_validate, errors = best(args.repeat, lambda: schema_errors(manifest))
        started = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "argo", "export", str(path)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
        t_cli = time.perf_counter() - started
    tasks = next(t for t in manifest["spec"]["templates"] if "dag" in t)["dag"]["tasks"]
    out = {
        "nodes": len(graph.nodes), "tasks": len(tasks), "edges": sum(len(n.needs) for n in graph.nodes),
        "compile_s": round(t_compile, 3), "export_s": round(t_export, 3), "render_yaml_s": round(t_render, 3),
        "validate_s": round(t_validate, 3), "cli_export_s": round(t_cli, 3), "cli_exit": cli.returncode,
        "yaml_bytes": len(text.encode()), "json_bytes": len(json.dumps(manifest, separators=(",", ":")).encode()),
        "schema_errors": len(errors),
    }
    if args.json:
        print(json.dumps(out))
    else:
        for key, value in out.items():
            print(f"{key:>16}: {value}")
    return 0 if not errors and cli.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
