"""Container steps: worldtree vs plain `podman run --rm` (issue 3's benchmark).

50 steps of `true` in busybox at concurrency 2, run by `worldtree run -j 2` (a jobs map of 50
independent one-step jobs), against the same 50 containers as `podman run --rm` driven by
`xargs -P2`. Both run in this process's session, alternating, ``--rounds`` times; the best
of each is compared (the machine is shared, so the minimum is the least noisy estimate).
Target: ratio <= 1.2 (worldtree adds orchestration, not overhead).

    python bench/containers/bench_containers.py [--steps 50] [--concurrency 2] [--rounds 3]

Needs the engine from scripts/container-engine.sh (started here if DOCKER_HOST does not answer).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "docker.io/library/busybox:latest"


def engine() -> None:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "container-engine.sh"), "--image", IMAGE],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    os.environ["DOCKER_HOST"] = out.split("=", 1)[1]


def pipeline(steps: int) -> str:
    jobs = "".join(f"  s{i:03d}:\n    steps:\n      - run: \"true\"\n" for i in range(steps))
    return f"name: bench-containers\nimage: {IMAGE}\njobs:\n{jobs}"


def time_worldtree(path: Path, concurrency: int, workdir: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_RUN_ID"}
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "run", str(path), "-j", str(concurrency),
                           "--workdir", str(workdir)], capture_output=True, text=True, env=env)
    elapsed = time.monotonic() - began
    if proc.returncode != 0:
        sys.exit(f"worldtree run failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def time_podman(steps: int, concurrency: int) -> float:
    began = time.monotonic()
    subprocess.run(f"seq {steps} | xargs -P{concurrency} -I{{}} podman run --rm {IMAGE} true",
                   shell=True, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("podman"):
        sys.exit("podman is needed for the baseline (scripts/container-engine.sh installs it)")
    engine()
    with tempfile.TemporaryDirectory(prefix="wt-bench-") as tmp:
        path = Path(tmp) / "pipeline.yaml"
        path.write_text(pipeline(args.steps))
        ours, theirs = [], []
        time_podman(2, 2)  # warm the image and storage caches for both sides
        for _ in range(args.rounds):
            ours.append(time_worldtree(path, args.concurrency, Path(tmp)))
            theirs.append(time_podman(args.steps, args.concurrency))
    best_ours, best_theirs = min(ours), min(theirs)
    print(f"{args.steps} container steps of `true`, concurrency {args.concurrency}, {args.rounds} rounds")
    print(f"worldtree run -j{args.concurrency}:        best {best_ours:6.2f}s  all "
          + " ".join(f"{t:.2f}" for t in ours))
    print(f"xargs -P{args.concurrency} podman run --rm: best {best_theirs:6.2f}s  all "
          + " ".join(f"{t:.2f}" for t in theirs))
    ratio = best_ours / best_theirs
    print(f"ratio worldtree/podman: {ratio:.2f} (target <= 1.2) {'OK' if ratio <= 1.2 else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
