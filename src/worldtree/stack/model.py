"""The normalized StackFlow v1alpha1 stack: what every plan builder and plugin receives.

The loader checks the document by hand (to give the reference implementation's messages at the
right line) and then builds these models; they are the normalized form sent to plugins as the
request's ``stack`` and hashed into a plan's digest. ``resources``, ``deploy`` and ``observe``
have no field schema upstream, so they stay free-form mappings here too; unknown keys are kept
(v1alpha1 only ever adds fields).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["dns", "iac", "deploy", "observe"]
#: Apply order: records first, then the machines they may point at, then what runs on them.
PHASES: tuple[Phase, ...] = ("dns", "iac", "deploy", "observe")


class Record(BaseModel):
    """One DNS record intent; ``type`` is upper-cased, exactly one of value/valueFrom is set."""

    model_config = ConfigDict(populate_by_name=True)

    name: str
    type: str
    value: str | None = None
    value_from: str | None = Field(default=None, alias="valueFrom")
    ttl: int | None = Field(default=None, gt=0)
    proxied: bool | None = None

    def fqdn(self, domain: str) -> str:
        return record_fqdn(self.name, domain)


def record_fqdn(name: str, domain: str) -> str:
    """The name a record answers for: ``@`` is the apex, relative names sit under ``domain``."""
    name = name.strip().rstrip(".").lower()
    domain = domain.lower()
    if name in ("@", ""):
        return domain
    if name == domain or name.endswith("." + domain):
        return name
    return f"{name}.{domain}"


class Dns(BaseModel):
    records: list[Record] = []


class Target(BaseModel):
    """A deployable thing: a Vercel project, a vhost, a Cloud Run service, ..."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: str
    domains: list[str] = Field(min_length=1)
    dns: Dns = Dns()
    resources: dict[str, Any] | None = None
    deploy: dict[str, Any] | None = None
    observe: dict[str, Any] | None = None


class GlobalSpec(BaseModel):
    """``global``: after ``--env E`` it already holds ``environments.E`` merged in (shallow)."""

    model_config = ConfigDict(extra="allow")

    domain: str
    dns_provider: str
    cloud: str
    gcp_project: str | None = None
    gitops: str | None = None
    playbooks: str | None = None
    iac_modules: str | None = None
    environments: dict[str, dict[str, Any]] = {}


class Metadata(BaseModel):
    model_config = ConfigDict(extra="allow")

    name: str


class Stack(BaseModel):
    """A whole StackFlow document (``apiVersion`` is not checked, as upstream)."""

    model_config = ConfigDict(populate_by_name=True, extra="allow")

    api_version: str = Field(default="gitops.svc.plus/v1alpha1", alias="apiVersion")
    kind: Literal["StackFlow"]
    metadata: Metadata
    global_: GlobalSpec = Field(alias="global")
    targets: list[Target]

    @property
    def name(self) -> str:
        return self.metadata.name

    def normalized(self) -> dict[str, Any]:
        """Plain JSON data: what plugins receive and what the digest hashes."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def stack_json_schema() -> dict[str, Any]:
    """JSON Schema of the stack document (for editors and CI)."""
    schema = Stack.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "StackFlow v1alpha1 stack"
    return schema
