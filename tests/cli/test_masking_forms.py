"""Secrets are masked in the forms tools print them: wrapped base64, inside a larger base64 string,
URL-encoded, JSON-escaped, shell-quoted by ``set -x``, and inside a step name. Each test greps
everything a user can see (and the store) for the raw value and each derived form."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from urllib.parse import quote, quote_plus

from tests.cli.conftest import Cli

# 62 bytes with a quote, a space, slashes, &, =, a backslash and a double quote.
SECRET = "p@ss w'rd/x&y=\"z\"\\q-" + "S3cr3t" * 7


def _everything(cli: Cli, proc: subprocess.CompletedProcess[str], run_id: object) -> str:
    texts = [proc.stdout, proc.stderr, cli("logs", str(run_id)).stdout, cli("logs", str(run_id), "--json").stdout,
             cli("runs", "show", str(run_id)).stdout, cli("runs", "show", str(run_id), "--json").stdout]
    db = Path(cli.store.removeprefix("sqlite:///"))
    texts += [p.read_bytes().decode("latin-1") for p in db.parent.glob(db.name + "*")]
    return "\n".join(texts)


def test_derived_forms_of_a_secret_are_masked(sqlite_cli: Cli) -> None:
    (sqlite_cli.cwd / "secrets.env").write_text("TOKEN='" + SECRET.replace("'", "\\'") + "'\n")
    sqlite_cli.write("p.yaml", r"""
jobs:
  leak:
    secrets: [TOKEN]
    steps:
      - name: wrapped
        run: printf '%s' "$TOKEN" | base64
      - name: basic
        run: for u in u us usr admin; do printf '%s:%s' "$u" "$TOKEN" | base64 -w0; echo; done
      - name: encoded
        shell: python3
        run: |
          import json, os, urllib.parse
          t = os.environ["TOKEN"]
          print(urllib.parse.quote(t, safe=""), urllib.parse.quote_plus(t), json.dumps({"t": t}))
      - name: xtrace-bash
        shell: bash
        run: set -x; true "$TOKEN"
      - name: xtrace-sh
        run: set -x; true "$TOKEN"
""")
    proc = sqlite_cli("run", "p.yaml", "--secrets-file", "secrets.env", "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_id = json.loads(proc.stdout.splitlines()[0])["run_id"]
    blob = _everything(sqlite_cli, proc, run_id)
    assert blob.count("***") >= 10
    wrapped = subprocess.run(["base64"], input=SECRET.encode(), capture_output=True, check=True).stdout.decode()
    assert len(wrapped.splitlines()) == 2  # 62 bytes: the form `base64` wraps
    needles = [SECRET, wrapped.splitlines()[0], quote(SECRET, safe=""), quote_plus(SECRET),
               json.dumps(SECRET)[1:-1], SECRET.replace("'", "'\\''"), "S3cr3tS3cr3t"]
    needles += [base64.b64encode(f"{u}:{SECRET}".encode()).decode()[12:40] for u in ("u", "us", "usr", "admin")]
    for needle in needles:
        assert needle not in blob, needle


def test_a_step_name_holding_the_value_is_refused_and_never_shown(sqlite_cli: Cli) -> None:
    """Node ids are stored, and ``runs show``/``logs`` (which load no secrets) print them: a name
    holding a secret value is refused before anything is stored, the value masked in the error."""
    value = "deploy-Token-4711"
    (sqlite_cli.cwd / "secrets.env").write_text(f"TOKEN={value}\n")
    sqlite_cli.write("p.yaml", f"jobs:\n  j:\n    secrets: [TOKEN]\n    steps:\n"
                               f"      - {{name: 'use {value}', run: echo hi}}\n")
    plain = sqlite_cli("run", "p.yaml", "--secrets-file", "secrets.env")
    assert plain.returncode == 2 and "'j/use ***' contains a secret value" in plain.stderr
    as_json = sqlite_cli("run", "p.yaml", "--secrets-file", "secrets.env", "--json")
    assert value not in plain.stdout + plain.stderr + as_json.stdout + as_json.stderr
    assert sqlite_cli("runs", "--json").stdout.strip() in ("", "[]")


def test_plan_masks_a_literal_credential_in_every_form(sqlite_cli: Cli) -> None:
    password = 'Lit"eral\\Pw-42'
    sqlite_cli.write("p.yaml", f"""
jobs:
  j:
    image_registry: registry.example
    image_registry_username: me
    image_registry_password: '{password}'
    steps: [{{run: echo hi, engine: host}}]
""")
    texts = sqlite_cli("plan", "p.yaml", "--json").stdout + sqlite_cli("plan", "p.yaml").stdout
    assert '"image_registry_password": "***"' in texts
    for needle in (password, json.dumps(password)[1:-1], "Pw-42"):
        assert needle not in texts, needle
