"""worldtree's own configuration file (not a pipeline): runner sizes, language images, engine knobs.

Where it is read from, first match wins:

1. the ``path`` argument (``--config`` on the command line),
2. ``$WORLDTREE_CONFIG``,
3. ``./worldtree.yaml`` when it exists.

No file at all is fine: :data:`DEFAULTS` apply. A file only states what it changes; it is
merged over the defaults key by key (mappings merge, everything else replaces), so a file
with ``runners: {xl: {cpu: "8", memory: 32Gi}}`` adds a size and keeps ``small``/``large``.

Example ``worldtree.yaml``::

    runners:                      # seed 002 "Admin Config": runner alias -> resources
      large: {cpu: "4", memory: 16Gi}
    languages:                    # seed 003 §6: `language: {name, version}` -> image + command
      ruby: {image: "ruby:{version}", file: main.rb, command: [ruby, "{script}"]}
    docker:
      init: true                  # run an init as PID 1 so SIGTERM reaches the step
      default_image: null         # image for `engine: docker` steps that name none

``cpu`` and ``memory`` use Kubernetes quantities (``500m``, ``2``, ``512Mi``, ``16Gi``) so the
same map serves containers here and pod resources on Argo.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

from worldtree.errors import UsageError

__all__ = ["DEFAULTS", "ENV_VAR", "load_config", "merge_config"]

ENV_VAR = "WORLDTREE_CONFIG"

DEFAULTS: dict[str, Any] = {
    "runners": {
        "small": {"cpu": "1", "memory": "2Gi"},
        "medium": {"cpu": "2", "memory": "4Gi"},
        "large": {"cpu": "4", "memory": "16Gi"},
    },
    # {version} is the step's `language.version`; {script} the in-container path of its script.
    "languages": {
        "node": {"image": "node:{version}", "file": "script.js", "command": ["node", "{script}"]},
        "python": {"image": "python:{version}", "file": "script.py", "command": ["python", "{script}"]},
        "go": {"image": "golang:{version}", "file": "main.go", "command": ["go", "run", "{script}"]},
        "bash": {"image": "bash:{version}", "file": "script.sh", "command": ["bash", "-e", "{script}"]},
        "deno": {"image": "denoland/deno:{version}", "file": "script.ts",
                 "command": ["deno", "run", "-A", "{script}"]},
    },
    "docker": {
        "init": True,
        "default_image": None,
    },
}


def merge_config(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` over ``base``: nested mappings merge, other values replace. Inputs stay untouched."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_config(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | None = None) -> dict[str, Any]:
    """The effective config: :data:`DEFAULTS` merged with the first config file found (see module doc).

    Raises :class:`~worldtree.errors.UsageError` when a file named explicitly (argument or
    ``$WORLDTREE_CONFIG``) is missing, or any config file is not a YAML mapping.
    """
    explicit = path or os.environ.get(ENV_VAR) or None
    candidate = Path(explicit) if explicit else Path("worldtree.yaml")
    if not candidate.is_file():
        if explicit:
            raise UsageError(f"config file {explicit} does not exist (from --config or ${ENV_VAR})")
        return copy.deepcopy(DEFAULTS)
    import yaml  # only with a config file: most runs have none, and start-up counts

    try:
        data = yaml.safe_load(candidate.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{candidate}: cannot read worldtree config: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UsageError(f"{candidate}: worldtree config must be a mapping (runners:, languages:, docker:)")
    return merge_config(DEFAULTS, data)
