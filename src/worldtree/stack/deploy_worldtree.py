"""``stackflow-plugin-deploy-worldtree``: the reference deploy plugin, through worldtree's playbooks.

A vhost target's deploy action (``mode: playbook``, ``payload: {playbook, inventory}``) becomes
``worldtree apply PLAYBOOK [-i INVENTORY] --detailed-exitcode`` (``--check`` for ``plan``), run in
the directory worldtree was started from, so paths are the repository's. Exit 3 means it changed
(or would change) something, 0 nothing; the plugin reports one change per action that did, so a
second apply reports none (the playbook's operations are idempotent). Any other exit fails the
action with the last lines of its output. SSH hosts come from the inventory, as for
``worldtree apply``; the plugin reads no credentials of its own.

A target picks this plugin with ``deploy: {plugin: worldtree, …}`` (otherwise the deploy plugin is
named after the target's type).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from worldtree.plugins.protocol import API_VERSION

TIMEOUT = 3600.0


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_action(action: dict[str, Any], check: bool) -> dict[str, Any] | None:
    payload = action.get("payload") or {}
    playbook = payload.get("playbook")
    if action.get("mode") != "playbook" or not isinstance(playbook, str):
        raise RuntimeError(f"target {action.get('target')}: needs mode playbook with payload.playbook")
    argv = [sys.executable, "-m", "worldtree.cli.main", "apply", playbook, "--detailed-exitcode"]
    if isinstance(payload.get("inventory"), str):
        argv += ["-i", payload["inventory"]]
    if check:
        argv.append("--check")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    for line in (proc.stdout + proc.stderr).splitlines():
        _log(f"{action['target']}: {line}")
    if proc.returncode not in (0, 3):
        tail = " / ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"target {action['target']}: worldtree apply {playbook} exited {proc.returncode}: {tail}")
    if proc.returncode == 0:
        return None
    summary = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(("Apply:", "Plan:"))), "")
    return {"resource": f"{action['target']} {playbook}", "action": "deploy", "before": None, "after": summary}


def main() -> None:
    subcommand = sys.argv[1] if len(sys.argv) > 1 else ""
    if subcommand == "info":
        print(json.dumps({"name": "worldtree", "version": "1", "phases": ["deploy"], "plan": True,
                          "credentials": []}))
        return
    if subcommand not in ("plan", "apply"):
        _log("usage: stackflow-plugin-deploy-worldtree info|plan|apply (request JSON on stdin)")
        sys.exit(2)
    try:
        request = json.load(sys.stdin)
        changes = [c for a in request["plan"]["actions"] if (c := _run_action(a, subcommand == "plan"))]
    except (RuntimeError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
        _log(f"error: {exc}")
        sys.exit(1)
    print(json.dumps({"apiVersion": API_VERSION, "kind": "Response", "ok": True, "changes": changes,
                      "artifacts": [], "links": []}))


if __name__ == "__main__":
    main()
