"""validate: the reference implementation's messages at the right line, the documented JSON, the schema."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
import yaml

from worldtree.errors import SpecError
from worldtree.stack import load_stack, stack_json_schema
from worldtree.stack.loader import parse_stack

Cli = Callable[..., subprocess.CompletedProcess[str]]
HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples" / "stack"
INVALID = sorted((HERE / "cases" / "invalid").glob("*.yaml"))


def _header(path: Path, key: str) -> list[str]:
    prefix = f"# {key}: "
    return [line[len(prefix):] for line in path.read_text().splitlines() if line.startswith(prefix)]


@pytest.mark.parametrize("case", INVALID, ids=lambda p: p.stem)
def test_invalid_stack_gives_the_documented_messages_at_their_lines(case: Path) -> None:
    env = (_header(case, "env") or [""])[0]
    with pytest.raises(SpecError) as info:
        load_stack(case, env)
    got = sorted(f"{d.line}:{d.col}: {d.message}" for d in info.value.diagnostics)
    assert got == sorted(_header(case, "expect"))
    assert all(d.file == str(case) for d in info.value.diagnostics)


def test_cli_validate_error_is_located_exit_2_and_recorded(cli: Cli, tmp_path: Path) -> None:
    case = HERE / "cases" / "invalid" / "domains.yaml"
    proc = cli("validate", str(case), "--out", "out")
    assert proc.returncode == 2
    assert (f"{case}:12:55: error: targets[0].domains[1] must be under global.domain (example.com), "
            "got api.other.org") in proc.stderr.splitlines()
    assert "Traceback" not in proc.stderr
    written = json.loads((tmp_path / "out" / "stackflow.validate.json").read_text())
    assert written["ok"] is False
    assert {(e["line"], e["col"]) for e in written["errors"]} == {(12, 55), (15, 14), (16, 5), (17, 28)}


@pytest.mark.parametrize("name", ["svc-plus", "svc-plus.dev", "vercel-www"])
def test_cli_validate_writes_the_documented_json(cli: Cli, tmp_path: Path, name: str) -> None:
    example, _, env = name.partition(".")
    proc = cli("validate", str(EXAMPLES / f"{example}.yaml"), *(["--env", env] if env else []), "--out", "o")
    assert proc.returncode == 0, proc.stderr
    want = json.loads((HERE / "golden" / name / "stackflow.validate.json").read_text())
    assert json.loads((tmp_path / "o" / "stackflow.validate.json").read_text()) == want
    assert json.loads(proc.stdout) == want
    assert list(want) == ["ok", "stack", "domain", "dns_provider", "cloud", "targets", "env"]


def test_env_shallow_merges_global_but_never_targets() -> None:
    base = load_stack(EXAMPLES / "svc-plus.yaml").stack
    dev = load_stack(EXAMPLES / "svc-plus.yaml", "dev").stack
    assert (base.global_.dns_provider, dev.global_.dns_provider) == ("cloudflare", "powerdns")
    assert (base.global_.gcp_project, dev.global_.gcp_project) == ("svc-plus-prod", "svc-plus-dev")
    assert dev.global_.domain == base.global_.domain
    assert dev.targets == base.targets


def test_record_type_is_upper_cased_and_value_from_is_kept() -> None:
    stack = load_stack(EXAMPLES / "svc-plus.yaml").stack
    records = {r.name: r for t in stack.targets for r in t.dns.records}
    assert records["www"].type == "CNAME"
    assert records["api"].value_from == "endpoints.public_ipv4" and records["api"].value is None


def test_value_from_another_targets_outputs_is_accepted() -> None:
    text = (EXAMPLES / "svc-plus.yaml").read_text().replace(
        "value: ghs.googlehosted.com.", "valueFrom: vhost-api.endpoints.public_ipv4")
    loaded = parse_stack(text, "s.yaml")
    assert loaded.stack.targets[2].dns.records[0].value_from == "vhost-api.endpoints.public_ipv4"


def test_yaml_syntax_error_is_located() -> None:
    with pytest.raises(SpecError) as info:
        parse_stack("kind: StackFlow\nglobal: [a,\n", "bad.yaml")
    (diag,) = info.value.diagnostics
    assert diag.file == "bad.yaml" and diag.line >= 2 and "malformed YAML" in diag.message


def test_published_schema_accepts_the_examples_and_rejects_a_bad_ttl(cli: Cli) -> None:
    proc = cli("schema")
    assert proc.returncode == 0
    schema = json.loads(proc.stdout)
    assert schema == json.loads(json.dumps(stack_json_schema()))
    # the spelling, `worldtree schema --stack`, prints the same document
    top = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "schema", "--stack"], capture_output=True,
                         text=True, timeout=60, check=True)
    assert json.loads(top.stdout) == schema
    for example in EXAMPLES.glob("*.yaml"):
        jsonschema.validate(yaml.safe_load(example.read_text()), schema)
    doc = yaml.safe_load((EXAMPLES / "vercel-www.yaml").read_text())
    doc["targets"][0]["dns"]["records"][0]["ttl"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


def test_odd_values_anywhere_are_located_errors_never_crashes() -> None:
    """Each value of the example replaced by values of the wrong type: SpecError or plans, nothing else."""
    import copy
    import random

    from worldtree.stack.service import make_plans

    base = yaml.safe_load((EXAMPLES / "svc-plus.yaml").read_text())
    odd: list[object] = [None, 0, -1, True, "", "x", [], ["a"], {}, {"a": 1}, [{"x": 1}], 1.5]

    def paths(node: object, at: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
        return [at] + [p for k, v in items for p in paths(v, (*at, k))]

    every = [p for p in paths(base) if p]
    rng = random.Random(7)
    failures = 0
    for _ in range(400):
        doc = copy.deepcopy(base)
        for path in rng.sample(every, 2):
            parent = doc
            try:
                for key in path[:-1]:
                    parent = parent[key]
                parent[path[-1]] = rng.choice(odd)
            except (KeyError, IndexError, TypeError):
                continue
        for env in ("", "dev"):
            try:
                make_plans(parse_stack(yaml.safe_dump(doc), "f.yaml", env), "all", {})
            except SpecError as exc:
                failures += 1
                assert all(d.line >= 1 and d.col >= 1 and d.message for d in exc.diagnostics)
    assert failures > 100  # the mutations did reach the checks
