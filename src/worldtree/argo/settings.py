"""What an export needs besides the graph: image for host jobs, secret name, workspace, schedule knobs.

Read from the ``argo:`` section of ``worldtree.yaml`` (merged over :data:`DEFAULTS`), then
overridden by command-line flags. Runner sizes come from the same ``runners:`` map the
container backend reads, so one file sizes local containers and Argo pods alike::

    runners:
      large: {cpu: "4", memory: 16Gi}
    argo:
      default_image: debian:bookworm-slim   # for jobs without an image (host jobs locally)
      secret_name: worldtree-secrets        # the Kubernetes Secret that holds `secrets:` keys
      service_account: null
      timezone: null                        # CronWorkflow timezone, e.g. Europe/Berlin
      concurrency_policy: Forbid            # Allow | Forbid | Replace
      workspace: {size: 1Gi, access_mode: ReadWriteOnce, storage_class: null, mount_path: /workspace}
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from worldtree.errors import UsageError
from worldtree.ops.config import DEFAULTS as CONFIG_DEFAULTS

__all__ = ["DEFAULTS", "ArgoSettings"]

DEFAULTS: dict[str, Any] = {
    "default_image": "debian:bookworm-slim",
    "secret_name": "worldtree-secrets",
    "service_account": None,
    "timezone": None,
    "concurrency_policy": "Forbid",
    "workspace": {"size": "1Gi", "access_mode": "ReadWriteOnce", "storage_class": None,
                  "mount_path": "/workspace"},
}
CONCURRENCY_POLICIES = ("Allow", "Forbid", "Replace")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class ArgoSettings:
    default_image: str = DEFAULTS["default_image"]
    secret_name: str = DEFAULTS["secret_name"]
    service_account: str | None = None
    namespace: str | None = None
    name: str | None = None
    timezone: str | None = None
    concurrency_policy: str = DEFAULTS["concurrency_policy"]
    workspace_size: str = "1Gi"
    workspace_access_mode: str = "ReadWriteOnce"
    workspace_storage_class: str | None = None
    workspace_mount: str = "/workspace"
    #: runner alias -> {cpu, memory} (Kubernetes quantities), from ``runners:``
    runners: dict[str, dict[str, str]] = field(
        default_factory=lambda: {k: dict(v) for k, v in CONFIG_DEFAULTS["runners"].items()})
    #: ``languages:`` (name -> image, file, command) for ``language:`` steps, as the docker backend reads it
    languages: dict[str, Any] = field(default_factory=lambda: dict(CONFIG_DEFAULTS["languages"]))

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: str | None) -> ArgoSettings:
        """Settings from a loaded ``worldtree.yaml`` (``ops.config.load_config``) and flags (None = not given)."""
        section = config.get("argo") or {}
        if not isinstance(section, dict):
            raise UsageError("worldtree config: `argo:` must be a mapping (default_image:, secret_name:, …)")
        workspace = {**DEFAULTS["workspace"], **(section.get("workspace") or {})}
        values: dict[str, Any] = {
            "default_image": section.get("default_image") or DEFAULTS["default_image"],
            "secret_name": section.get("secret_name") or DEFAULTS["secret_name"],
            "service_account": section.get("service_account"),
            "namespace": section.get("namespace"),
            "timezone": section.get("timezone"),
            "concurrency_policy": section.get("concurrency_policy") or DEFAULTS["concurrency_policy"],
            "workspace_size": str(workspace["size"]),
            "workspace_access_mode": str(workspace["access_mode"]),
            "workspace_storage_class": workspace.get("storage_class"),
            "workspace_mount": str(workspace["mount_path"]),
            "runners": {str(k): {str(a): str(b) for a, b in (v or {}).items()}
                        for k, v in (config.get("runners") or {}).items()},
            "languages": dict(config.get("languages") or {}),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuse values the cluster would reject later, with the flag or key to fix."""
        if self.concurrency_policy not in CONCURRENCY_POLICIES:
            raise UsageError(f"argo concurrency policy {self.concurrency_policy!r} is not one of "
                             f"{', '.join(CONCURRENCY_POLICIES)}; fix --concurrency-policy or argo.concurrency_policy")
        for what, value, pattern in (("namespace", self.namespace, _DNS_LABEL), ("name", self.name, _DNS_SUBDOMAIN),
                                     ("secret name", self.secret_name, _DNS_SUBDOMAIN)):
            if value is not None and (len(value) > 253 or not pattern.match(value)):
                raise UsageError(f"argo {what} {value!r} is not a Kubernetes name (lower-case letters, digits "
                                 "and '-', starting and ending with a letter or digit)")
        if self.timezone is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise UsageError(f"argo timezone {self.timezone!r} is not an IANA time zone (e.g. Europe/Berlin, "
                                 "UTC); fix --timezone or argo.timezone") from None
        if not self.workspace_mount.startswith("/"):
            raise UsageError(f"argo workspace mount_path {self.workspace_mount!r} must be an absolute path")
