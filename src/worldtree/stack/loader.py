"""Stack file -> normalized :class:`Stack`, or every problem as a located Diagnostic.

Messages are the reference implementation's (``missing required field: global.domain``,
``targets[0].domains[1] must be under global.domain (example.com), got api.other.org``), so
a user moving from it sees the same words; unlike it, all problems are collected (not only the
first) and each points at ``file:line:col``. The rules its docs promise but its code skips are
checked too: (fqdn, type) unique, ``valueFrom`` naming a target that has resources, exactly one
of ``value``/``valueFrom``.

``--env E`` shallow-merges ``global.environments.E`` into ``global`` before checking (targets are
never overridden); a value that came from the environment is located at the override.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from worldtree.compile.diagnostics import Diagnostic
from worldtree.compile.yaml_source import Positions, YamlSourceError, load_yaml
from worldtree.errors import SpecError
from worldtree.stack.model import Stack, record_fqdn

PathT = tuple[Any, ...]


@dataclass(frozen=True)
class LoadedStack:
    """A checked stack, the env it was loaded for ('' for none) and the file it came from."""

    stack: Stack
    env: str
    file: str


def load_stack(file: str | Path, env: str = "") -> LoadedStack:
    """Read, merge ``env`` and check; raises SpecError carrying every diagnostic."""
    name = str(file)
    try:
        text = Path(file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError([Diagnostic("error", "read", f"cannot read the stack file: {exc}", name)]) from None
    return parse_stack(text, name, env)


def parse_stack(text: str, filename: str, env: str = "") -> LoadedStack:
    """Like :func:`load_stack` for text already in memory (the MCP server's ``config_yaml``)."""
    try:
        data, positions, found = load_yaml(text, filename)
    except YamlSourceError as exc:
        raise SpecError([exc.diagnostic]) from None
    # the parser's own errors (a duplicate key: YAML keeps the last one silently) count as the checker's
    parsed = [d for d in found if d.severity == "error"]
    checker = _Checker(filename, positions)
    stack = checker.check(data, env.strip())
    if parsed or checker.errors or stack is None:
        raise SpecError(sorted([*parsed, *checker.errors], key=lambda d: (d.line or 0, d.col or 0)))
    return LoadedStack(stack, env.strip(), filename)


class _Checker:
    def __init__(self, filename: str, positions: Positions) -> None:
        self.filename = filename
        self.positions = positions
        self.errors: list[Diagnostic] = []
        #: global key -> where its value is written (the env override when one replaced it)
        self.global_at: dict[str, PathT] = {}

    def error(self, code: str, message: str, path: PathT) -> None:
        at = self._at(path)
        self.errors.append(Diagnostic("error", code, message, self.filename, *at))

    def _at(self, path: PathT) -> tuple[int, int]:
        """The value at ``path``, else the nearest enclosing value that exists."""
        for cut in range(len(path), -1, -1):
            found = self.positions.get(path[:cut])
            if found is not None:
                return found
        return 1, 1

    def check(self, data: Any, env: str) -> Stack | None:
        if not isinstance(data, dict):
            self.error("type", "config must be a YAML mapping", ())
            return None
        kind = data.get("kind")
        if kind != "StackFlow":
            shown = kind if isinstance(kind, str) else ("" if kind is None else str(kind))
            self.error("kind", f'kind must be StackFlow, got "{shown}"', ("kind",))
        metadata = data.get("metadata")
        self.string(metadata if isinstance(metadata, dict) else None, "name", ("metadata",), "metadata.name")
        glob = self.merged_global(data, env)
        domain = ""
        if glob is not None:
            domain = self.string(glob, "domain", self.global_parent("domain"), "global.domain") or ""
            for key in ("dns_provider", "cloud"):
                self.string(glob, key, self.global_parent(key), f"global.{key}")
        if "targets" not in data:
            self.error("missing", "missing required field: targets", ())
        elif not isinstance(data["targets"], list):
            self.error("type", "targets must be a list", ("targets",))
        else:
            self.targets(data["targets"], domain)
        if self.errors:
            return None
        doc = dict(data)
        doc["global"] = glob
        doc["targets"] = [_normalized_target(t) for t in data["targets"]]
        try:
            return Stack.model_validate(doc)
        except ValidationError as exc:  # types the hand checks above leave to the model
            for err in exc.errors():
                loc = tuple(err["loc"])
                at = self.global_at.get(str(loc[1]), loc[:2]) + loc[2:] if loc[:1] == ("global",) and len(loc) > 1 \
                    else loc
                self.error("type", f"{_label(loc)}: {err['msg']}", at)
            return None

    def string(self, parent: dict[str, Any] | None, key: str, path: PathT, label: str) -> str | None:
        """upstream ``getStr``: present, a string, not blank."""
        if parent is None or key not in parent:
            self.error("missing", f"missing required field: {label}", path)
            return None
        value = parent[key]
        if not isinstance(value, str) or not value.strip():
            self.error("type", f"{label} must be a non-empty string", (*path, key))
            return None
        return value

    def global_parent(self, key: str) -> PathT:
        """The mapping that wrote global ``key``: ``global``, or the env override."""
        return self.global_at[key][:-1] if key in self.global_at else ("global",)

    def merged_global(self, data: dict[str, Any], env: str) -> dict[str, Any] | None:
        glob = data.get("global")
        if not isinstance(glob, dict):
            self.error("missing", "missing required field: global", ("global",))
            return None
        self.global_at = {key: ("global", key) for key in glob}
        if not env:
            return glob
        envs = glob.get("environments")
        if not isinstance(envs, dict) or env not in envs:
            self.error("env", f"env not found in global.environments: {env}", ("global", "environments"))
            return None
        override = envs[env]
        if not isinstance(override, dict):
            self.error("type", f"global.environments.{env} must be a mapping", ("global", "environments", env))
            return None
        merged = {**glob, **override}
        self.global_at.update({key: ("global", "environments", env, key) for key in override})
        return merged

    def targets(self, targets: list[Any], domain: str) -> None:
        named = [t for t in targets if isinstance(t, dict) and isinstance(t.get("id"), str)]
        with_resources = {t["id"] for t in named if isinstance(t.get("resources"), dict)}
        ids = {t["id"] for t in named}
        seen_ids: dict[str, int] = {}
        seen_records: dict[tuple[str, str], str] = {}
        for i, target in enumerate(targets):
            at: PathT = ("targets", i)
            if not isinstance(target, dict):
                self.error("type", f"targets[{i}] must be a mapping", at)
                continue
            tid = self.string(target, "id", at, f"targets[{i}].id")
            self.string(target, "type", at, f"targets[{i}].type")
            if tid is not None:
                if tid in seen_ids:
                    self.error("duplicate", f"targets[{i}].id {tid} is also targets[{seen_ids[tid]}].id; "
                               "target ids must be unique", (*at, "id"))
                seen_ids.setdefault(tid, i)
            self.domains(target, i, domain)
            for key in ("resources", "deploy", "observe"):
                if key in target and not isinstance(target[key], dict):
                    self.error("type", f"targets[{i}].{key} must be a mapping", (*at, key))
            if "dns" not in target:
                continue
            dns = target["dns"]
            if not isinstance(dns, dict):
                self.error("type", f"targets[{i}].dns must be a mapping", (*at, "dns"))
                continue
            records = dns.get("records")
            if records is None:
                continue
            if not isinstance(records, list):
                self.error("type", f"targets[{i}].dns.records must be a list", (*at, "dns", "records"))
                continue
            for k, record in enumerate(records):
                rat = (*at, "dns", "records", k)
                label = f"targets[{i}].dns.records[{k}]"
                if not isinstance(record, dict):
                    self.error("type", f"{label} must be a mapping", rat)
                    continue
                problem = _record_problem(record)
                if problem is not None:
                    field, message = problem
                    self.error("record", f"{label}: {message}", rat + ((field,) if field else ()))
                    continue
                fqdn = record_fqdn(record["name"], domain)
                rtype = record["type"].strip().upper()
                first = seen_records.setdefault((fqdn, rtype), label)
                if first != label:
                    self.error("duplicate", f"{label}: {fqdn} {rtype} is already defined by {first}; "
                               "each (fqdn, type) may appear once", (*rat, "name"))
                if "valueFrom" in record and isinstance(target.get("id"), str):
                    self.value_from(record["valueFrom"], target["id"], ids, with_resources, label, rat)

    def domains(self, target: dict[str, Any], i: int, domain: str) -> None:
        doms = target.get("domains")
        if not isinstance(doms, list) or not doms:
            self.error("type", f"targets[{i}].domains must be a non-empty list",
                       ("targets", i) + (("domains",) if "domains" in target else ()))
            return
        for j, fqdn in enumerate(doms):
            at = ("targets", i, "domains", j)
            if not isinstance(fqdn, str) or not fqdn.strip():
                self.error("type", f"targets[{i}].domains[{j}] must be a non-empty string", at)
            elif domain and not (fqdn == domain or fqdn.endswith("." + domain)):
                self.error("domain", f"targets[{i}].domains[{j}] must be under global.domain ({domain}), got {fqdn}",
                           at)

    def value_from(self, ref: str, own: str, ids: set[str], with_resources: set[str], label: str,
                   at: PathT) -> None:
        """``endpoints.X`` is this target's IaC output; ``<target>.endpoints.X`` another's."""
        head, _, rest = ref.partition(".")
        owner = own if head == "endpoints" else head
        if head != "endpoints" and (owner not in ids or not rest.startswith("endpoints.")):
            self.error("value-from", f"{label}: valueFrom {ref} refers to nothing; write endpoints.<output> "
                       "(this target's resources) or <target-id>.endpoints.<output>", (*at, "valueFrom"))
        elif owner not in with_resources:
            self.error("value-from", f"{label}: valueFrom {ref} needs target {owner} to have resources "
                       "(its IaC module fills endpoints.*); add resources or use value", (*at, "valueFrom"))


def _record_problem(rec: dict[str, Any]) -> tuple[str, str] | None:
    """upstream ``normalizeRecord``'s checks, plus: value and valueFrom together are an error."""
    if "name" not in rec or "type" not in rec:
        return "", "dns.records entries require name and type"
    for key in ("name", "type"):
        if not isinstance(rec[key], str) or not rec[key].strip():
            return key, f"dns.records[].{key} must be a non-empty string"
    if "value" in rec and "valueFrom" in rec:
        return "valueFrom", "dns.records entries take either value or valueFrom, not both"
    if "valueFrom" not in rec and "value" not in rec:
        return "", "dns.records entries require either value or valueFrom"
    key = "valueFrom" if "valueFrom" in rec else "value"
    if not isinstance(rec[key], str) or not rec[key].strip():
        return key, f"dns.records[].{key} must be a non-empty string"
    ttl = rec.get("ttl")
    if "ttl" in rec and (type(ttl) is not int or ttl <= 0):
        return "ttl", "dns.records[].ttl must be a positive int"
    if "proxied" in rec and not isinstance(rec["proxied"], bool):
        return "proxied", "dns.records[].proxied must be boolean"
    return None


def _label(loc: tuple[Any, ...]) -> str:
    """``("targets", 0, "dns")`` -> ``targets[0].dns``, as the reference writes paths."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _normalized_target(target: dict[str, Any]) -> dict[str, Any]:
    out = dict(target)
    dns = target.get("dns") or {}
    records = [dict(r, type=r["type"].strip().upper()) for r in (dns.get("records") or [])]
    out["dns"] = {"records": records}
    return out
