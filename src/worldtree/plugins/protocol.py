"""Plugin spec v1 envelopes.

Request (stdin of ``plan`` and ``apply``)::

    {"apiVersion": "stackflow.plugin/v1", "kind": "Request", "phase": "dns-apply", "env": "prod",
     "stack": {...normalized stack...}, "plan": {...phase plan...}, "state": {...}}

Response (stdout)::

    {"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": true,
     "changes": [{"resource", "action", "before", "after", "dangerous"?}], "artifacts": [], "links": [],
     "outputs": {...}?}

``info`` takes no input and prints ``{"name", "version", "phases"?, "credentials": [VAR...],
"plan": bool}``: ``credentials`` are the only variables (beyond a base allowlist) the plugin
gets, and their values are masked in everything it returns; ``env`` lists plain settings (an API
URL) passed through as they are. ``outputs`` (optional, worldtree's
addition) maps ``<target>`` to values such as ``{"endpoints.public_ipv4": "…"}`` that later
phases read through ``valueFrom``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

API_VERSION = "stackflow.plugin/v1"


class PluginInfo(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str = ""
    version: str = ""
    credentials: list[str] = []
    #: Plain settings (an API URL) passed through unmasked; never put a secret here.
    env: list[str] = []
    plan: bool = False


class Change(BaseModel):
    model_config = ConfigDict(extra="allow")

    resource: str
    action: str
    before: Any = None
    after: Any = None
    dangerous: bool = False


class PluginResponse(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)

    api_version: str = Field(alias="apiVersion")
    kind: str
    ok: bool
    changes: list[Change] = []
    artifacts: list[Any] = []
    links: list[Any] = []
    outputs: dict[str, dict[str, Any]] = {}

    def result(self) -> dict[str, Any]:
        """``{ok, changes[], links[], artifacts[]}``, the apply output shape."""
        return {"ok": self.ok, "changes": [c.model_dump(exclude_defaults=False) for c in self.changes],
                "links": self.links, "artifacts": self.artifacts}


def request(phase: str, env: str, stack: dict[str, Any], plan: dict[str, Any],
            state: dict[str, Any] | None = None) -> dict[str, Any]:
    """The envelope sent on stdin; ``phase`` is ``<phase>-plan`` or ``<phase>-apply``."""
    return {"apiVersion": API_VERSION, "kind": "Request", "phase": phase, "env": env, "stack": stack,
            "plan": plan, "state": state or {}}
