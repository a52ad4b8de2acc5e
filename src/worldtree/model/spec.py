"""Pydantic models of the pipeline document, in both shapes worldtree reads.

* the seed 003 shape: ``stages[].jobs[].steps[]`` with ``command`` (the Pipeline runner's
  public implementation, field for field), and
* the seed 002 shape: a ``jobs:`` map with ``needs``, ``runner``, ``image``, ``steps[].run``,
  ``secrets`` and ``on`` triggers.

Both load into :class:`PipelineSpec`. Models allow unknown keys on purpose: the loader turns
them into warnings with a did-you-mean (errors under ``--strict``), because files written
for the seed's tool carry keys it ignores (``type``, ``mode``, ``title``).

The seed 003 tool serializes every field, zero values included (``timeout: 0``, ``run_mode: ""``,
``image_registry_password: ""``, ``plugin: null``, ``environment: {}``), plus the ``state:`` it
recorded. As in that tool, a zero value means "unset" (``timeout: 0`` inherits), so such a
document runs exactly like the same document without them; its keys are known, not warned about.
"""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from worldtree.model.artifacts import ArtifactRule
from worldtree.model.durations import parse_duration
from worldtree.model.labels import LabelSelector

When = Literal["on_success", "on_failure", "always"]
RunMode = Literal["serial", "parallel"]
OnFailure = Literal["stop", "continue", "rollback"]


class SpecModel(BaseModel):
    """Base of every document model: unknown keys are kept for the linter to report."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=False)

    @model_validator(mode="before")
    @classmethod
    def _zero_is_unset(cls, value: Any) -> Any:
        """Drop known fields holding ``null`` or ``""``, which the seed 003 tool treats as unset
        (its ``{}`` maps equal our defaults); unknown keys stay, for the linter to report."""
        if not isinstance(value, dict):
            return value
        known = _field_keys(cls)
        return {k: v for k, v in value.items() if not (k in known and (v is None or v == ""))}


@functools.cache
def _field_keys(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(key for name, f in model.model_fields.items() for key in (name, f.alias) if key)


def _duration(value: Any) -> float | None:
    """``None`` and zero mean "inherit" (seed 003: ``timeout: 0`` is unset)."""
    seconds = None if value is None else parse_duration(value)
    return seconds or None


def _env(value: Any) -> dict[str, str]:
    """Environment maps take scalars; YAML's ``true``/``1`` become the strings a shell sees."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("environment must be a mapping of NAME: value")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, dict | list):
            raise ValueError(f"environment value of {key!r} must be a string, number or boolean")
        if item is None:
            out[str(key)] = ""
        elif isinstance(item, bool):
            out[str(key)] = "true" if item else "false"
        else:
            out[str(key)] = str(item)
    return out


class RetrySpec(SpecModel):
    """``retry: 2`` or ``retry: {max: 2, backoff: 5s}``; waits grow as backoff x 2^(try-1), at most 5 min."""

    max: int = Field(default=0, ge=0, le=100)
    backoff: float = 1.0

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return {"max": value}
        return value

    @field_validator("backoff", mode="before")
    @classmethod
    def _backoff(cls, value: Any) -> float:
        return parse_duration(value)


class PluginSpec(SpecModel):
    """Seed 003 §5: a container image whose entrypoint receives ``settings`` as env vars."""

    image: str
    settings: dict[str, Any] = Field(default_factory=dict)
    entrypoint: str | None = None
    #: the plugin image's registry and login; they win over the step's inherited ones
    image_registry: str | None = None
    image_registry_username: str | None = None
    image_registry_password: str | None = None


class LanguageSpec(SpecModel):
    """Seed 003 §6: run ``command`` as a script of this language in a matching image."""

    name: str
    version: str = "latest"

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> str:
        return str(value)


class ServiceSpec(SpecModel):
    """Seed 003 §7: services brought up for the run (or kept, with ``keep: true``)."""

    type: Literal["docker-compose", "docker-swarm", "kubernetes"] = "docker-compose"
    name: str
    version: str = "latest"
    config: str | dict[str, Any]
    keep: bool = False

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> str:
        return str(value)


class SelectorFields(SpecModel):
    """Which agents may run a job: ``label_selector`` or its shorthand ``labels`` (exact matches).

    Set on a pipeline, stage or job; the nearest level that sets one wins, whole (no merging):
    see docs/labels.md.
    """

    label_selector: LabelSelector | None = None
    labels: dict[str, str] | None = None

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: Any) -> Any:
        return None if value is None else LabelSelector.check_labels(value)

    @model_validator(mode="after")
    def _one_selector(self) -> SelectorFields:
        if self.label_selector is not None and self.labels is not None:
            raise ValueError("give `label_selector` or its shorthand `labels`, not both; move the pairs of "
                             "`labels` into `label_selector.match_labels`")
        if self.labels is not None:
            self.label_selector = LabelSelector.from_labels(self.labels)
        return self

    @property
    def selector(self) -> LabelSelector | None:
        return self.label_selector


class InheritedFields(SpecModel):
    """Fields that inherit Pipeline -> Stage -> Job -> Step (seed 003 §10.2, §11.1, §12.1)."""

    environment: dict[str, str] = Field(default_factory=dict)
    workdir: str | None = None
    image: str | None = None
    image_registry: str | None = None
    image_registry_username: str | None = None
    image_registry_password: str | None = None
    timeout: float | None = None
    shell: str | None = None
    engine: str | None = None
    #: the record the seed 003 tool writes into a document after running it (id, status, times,
    #: error): that run's output, not input, so it is accepted and ignored
    state: dict[str, Any] | None = Field(default=None, exclude=True)

    @field_validator("environment", mode="before")
    @classmethod
    def _environment(cls, value: Any) -> dict[str, str]:
        return _env(value)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, value: Any) -> float | None:
        return _duration(value)


class StepSpec(InheritedFields):
    """One command (or plugin, language script, service) on one target."""

    name: str | None = None
    command: str | None = None
    run: str | None = None  # the seed 002 spelling of command
    plugin: PluginSpec | None = None
    language: LanguageSpec | None = None
    service: ServiceSpec | None = None
    #: an operation of ``worldtree.ops`` (``file.template``) with its arguments: precheck, plan, run,
    #: rollback on the host target (docs/ops.md "Operations in pipelines")
    op: str | None = None
    with_: dict[str, Any] | None = Field(default=None, alias="with")
    precheck: str | None = None
    rollback: str | None = None
    retry: RetrySpec | None = None
    allow_failure: bool | None = None
    when: When | None = None
    if_: str | None = Field(default=None, alias="if")
    #: seed 003's host directory mounted into the step's container; not supported (the loader warns)
    data_dir_inner: str | None = None
    data_dir_outer: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `- echo hi` is a step whose command is the string, as in GitLab's `script:` lists.
        if isinstance(value, str):
            return {"command": value}
        return value

    @model_validator(mode="after")
    def _one_action(self) -> StepSpec:
        if self.command is not None and self.run is not None:
            raise ValueError("a step takes `command` or `run`, not both")
        if self.language is not None and self.plugin is not None:
            raise ValueError("a step takes `language` or `plugin`, not both (a language step runs in its own "
                             "image); split it into two steps")
        actions = [self.script is not None and self.language is None, self.plugin is not None,
                   self.service is not None, self.op is not None]
        if sum(actions) > 1:
            raise ValueError("a step does one thing: `command`, `plugin`, `service` or `op`")
        if not any(actions) and self.language is None:
            raise ValueError("a step needs something to do: `command` (or `run`), `plugin`, `service` or `op`")
        if self.with_ is not None and self.op is None:
            raise ValueError("`with` gives the arguments of an `op`; add `op: <operation>` or remove `with`")
        if self.language is not None and self.script is None:
            raise ValueError("a `language` step needs its script in `command`")
        return self

    @property
    def script(self) -> str | None:
        return self.command if self.command is not None else self.run


class JobSpec(InheritedFields, SelectorFields):
    """Steps run in order; jobs run as their stage and ``needs`` allow."""

    name: str | None = None
    steps: list[StepSpec] = Field(default_factory=list)
    needs: list[str] = Field(default_factory=list)
    runner: str | None = None
    secrets: list[str] = Field(default_factory=list)
    retry: RetrySpec | None = None
    allow_failure: bool = False
    when: When = "on_success"
    if_: str | None = Field(default=None, alias="if")
    run: str | None = None  # seed 002 §2 maps `job.run` too: a one-step job
    #: inventory host or group names: the job runs once per host over SSH (fan-out)
    hosts: list[str] = Field(default_factory=list)
    #: files collected from the workspace when the job ends (docs/artifacts.md)
    artifacts: ArtifactRule | None = None

    @field_validator("needs", "secrets", "hosts", mode="before")
    @classmethod
    def _names(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _has_steps(self) -> JobSpec:
        if self.run is not None:
            if self.steps:
                raise ValueError("a job takes `run` or `steps`, not both")
            self.steps = [StepSpec(name="run", command=self.run)]
        if not self.steps:
            raise ValueError("a job needs at least one step in `steps`")
        return self


class StageSpec(InheritedFields, SelectorFields):
    """Jobs of a stage run in parallel (the default) or serially; stages run in order."""

    name: str
    run_mode: RunMode = "parallel"
    jobs: list[JobSpec]

    @model_validator(mode="after")
    def _has_jobs(self) -> StageSpec:
        if not self.jobs:
            raise ValueError("a stage needs at least one job in `jobs`")
        return self


class ScheduleTrigger(SpecModel):
    cron: str
    #: an IANA zone the cron is read in (default UTC); ``worldtree server`` fires it there
    timezone: str | None = None


class TriggerSpec(SpecModel):
    """Seed 002 ``on:``: which events start the pipeline on a server (stored, not acted on locally)."""

    push: Any = None
    pull_request: Any = None
    tag: Any = None
    schedule: list[ScheduleTrigger] = Field(default_factory=list)


class ConcurrencySpec(SpecModel):
    """``concurrency: {group, cancel_in_progress}``: at most one run of ``group`` at a time on a server
    (GitHub Actions' semantics: a newer run waits behind the older ones, or cancels them)."""

    group: str = Field(min_length=1, max_length=200)
    cancel_in_progress: bool = False


class PipelineSpec(InheritedFields, SelectorFields):
    """The whole document: ``stages`` (seed 003) or a ``jobs`` map (seed 002)."""

    name: str = "pipeline"
    pre: str | None = None
    post: str | None = None
    stages: list[StageSpec] | None = None
    jobs: dict[str, JobSpec] | None = None
    on: TriggerSpec | None = None
    on_failure: OnFailure = "stop"
    secrets: list[str] = Field(default_factory=list)
    #: an inventory file (hosts and groups) for jobs with ``hosts:``; relative to this file
    inventory: str | None = None
    #: server runs only (docs/server-streams.md); ``concurrency: NAME`` is the shorthand for ``{group: NAME}``
    concurrency: ConcurrencySpec | None = None

    @field_validator("concurrency", mode="before")
    @classmethod
    def _concurrency(cls, value: Any) -> Any:
        return {"group": value} if isinstance(value, str) else value

    @field_validator("on", mode="before")
    @classmethod
    def _on(cls, value: Any) -> Any:
        # `on: push` and `on: [push, pull_request]` are GitHub-style shorthands.
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return {v: {} for v in value}
        return value

    @model_validator(mode="after")
    def _one_shape(self) -> PipelineSpec:
        if self.stages is not None and self.jobs is not None:
            raise ValueError("a pipeline takes `stages` (seed 003 shape) or a `jobs` map, not both")
        if self.stages is None and self.jobs is None:
            raise ValueError("a pipeline needs `stages` or a `jobs` map")
        if self.stages is not None and not self.stages:
            raise ValueError("`stages` is empty; add at least one stage")
        if self.jobs is not None and not self.jobs:
            raise ValueError("`jobs` is empty; add at least one job")
        return self


def pipeline_json_schema() -> dict[str, Any]:
    """The JSON Schema editors use for pipeline.yaml (``worldtree schema``)."""
    schema = PipelineSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "worldtree pipeline"
    return schema
