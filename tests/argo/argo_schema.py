"""Validate manifests against Argo's JSON Schema (``data/schema.json``, Apache-2.0, see
``data/LICENSE.argo-workflows``), strictly: every object that lists its properties rejects
others, as ``kubectl apply`` with strict field validation does, so a misspelt field fails."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

DATA = Path(__file__).parent / "data"
SCHEMA = DATA / "schema.json"
PREFIX = "io.argoproj.workflow.v1alpha1."


@functools.cache
def _definitions() -> dict[str, Any]:
    definitions: dict[str, Any] = copy.deepcopy(json.loads(SCHEMA.read_text(encoding="utf-8"))["definitions"])
    for definition in definitions.values():
        if "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    return definitions


@functools.cache
def validator(kind: str) -> Draft202012Validator:
    root = {"$schema": "https://json-schema.org/draft/2020-12/schema", "definitions": _definitions(),
            "$ref": f"#/definitions/{PREFIX}{kind}"}
    return Draft202012Validator(root)


def schema_errors(manifest: dict[str, Any]) -> list[str]:
    """Every violation as ``path: message``; empty when the manifest is valid for its ``kind``."""
    kind = manifest.get("kind")
    if kind not in ("Workflow", "CronWorkflow", "WorkflowTemplate", "ClusterWorkflowTemplate"):
        return [f"kind: {kind!r} is not an Argo workflow kind"]
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator(str(kind)).iter_errors(manifest)]
