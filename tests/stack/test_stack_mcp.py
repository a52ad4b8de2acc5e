"""worldtree mcp: the official SDK's own client over stdio lists the tools, validates, plans, is refused apply."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parents[1] / "examples" / "stack"
pytestmark = pytest.mark.slow


def _params(tmp_path: Path, *extra: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_APPLY_APPROVED"}
    return StdioServerParameters(command=sys.executable, args=["-m", "worldtree.cli.main", "mcp", *extra],
                                 env=env, cwd=str(tmp_path))


def _structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    data = result.structured_content
    assert isinstance(data, dict)
    return data.get("result", data) if set(data) == {"result"} else data


async def test_tools_validate_and_plan_over_stdio(tmp_path: Path) -> None:
    yaml_text = (EXAMPLES / "svc-plus.yaml").read_text()
    async with Client(_params(tmp_path)) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert {"stackflow.validate", "stackflow.plan.dns", "stackflow.plan.iac", "stackflow.plan.deploy",
                "stackflow.plan.observe", "stackflow.apply.dns", "stackflow.apply.all"} <= names

        valid = _structured(await client.call_tool("stackflow.validate", {"config_yaml": yaml_text, "env": "dev"}))
        golden = json.loads((HERE / "golden" / "svc-plus.dev" / "stackflow.validate.json").read_text())
        assert valid == golden

        plan = _structured(await client.call_tool("stackflow.plan.dns", {"config_yaml": yaml_text}))
        assert plan == json.loads((HERE / "golden" / "svc-plus" / "stackflow.dns-plan.json").read_text())

        bad = await client.call_tool("stackflow.validate", {"config_yaml": yaml_text.replace(
            "domains: [api.svc.plus]", "domains: [api.other.org]")})
        assert bad.is_error
        text = " ".join(getattr(c, "text", "") for c in bad.content)
        assert "config.yaml:35:15: error: targets[1].domains[0] must be under global.domain (svc.plus), " \
               "got api.other.org" in text

        wrong_args = await client.call_tool("stackflow.validate", {"yaml": yaml_text})
        assert wrong_args.is_error

        refused = await client.call_tool("stackflow.apply.dns", {"config_yaml": yaml_text, "plan_dir": "p"})
        assert refused.is_error
        assert "--dangerously-allow-apply" in " ".join(getattr(c, "text", "") for c in refused.content)
        assert not (tmp_path / "p").exists()

        # still serving after errors
        again = _structured(await client.call_tool("stackflow.validate", {"config_yaml": yaml_text}))
        assert again["ok"] is True


PLUGIN = '''#!{python}
import json, sys
if sys.argv[1] == "info":
    print(json.dumps({{"name": "fake"}}))
    sys.exit(0)
req = json.load(sys.stdin)
print(json.dumps({{"apiVersion": "stackflow.plugin/v1", "kind": "Response", "ok": True,
                  "changes": [{{"resource": r["name"], "action": "create"}} for r in req["plan"]["records"]]}}))
'''


async def test_apply_when_allowed_runs_the_plugin_and_is_audited(tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    plugin = plugins / "stackflow-plugin-dns-cloudflare"
    plugin.write_text(PLUGIN.format(python=sys.executable))
    plugin.chmod(0o755)
    yaml_text = (EXAMPLES / "vercel-www.yaml").read_text()
    stack = tmp_path / "s.yaml"
    stack.write_text(yaml_text)
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "stack", "plan", "dns", str(stack),
                           "--out", "p"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    log = tmp_path / "server.log"
    with log.open("w") as errlog:
        async with Client(stdio_client(_params(tmp_path, "--dangerously-allow-apply"), errlog=errlog)) as client:
            result = _structured(await client.call_tool("stackflow.apply.dns",
                                                        {"config_yaml": yaml_text, "plan_dir": "p"}))
    assert result["dns"]["ok"] is True
    assert [c["resource"] for c in result["dns"]["changes"]] == ["www"]
    audit = [json.loads(line) for line in log.read_text().splitlines() if line.startswith('{"audit"')]
    assert audit == [{"audit": "stackflow.apply.dns", "stack": "svc-plus", "env": "", "plan_dir": "p",
                      "allowed": True}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_http_needs_the_bearer_token(tmp_path: Path) -> None:
    token = "mcp-token-0123456789abcdef"
    port = _free_port()
    env = {**os.environ, "WORLDTREE_MCP_TOKEN": token}
    server = subprocess.Popen([sys.executable, "-m", "worldtree.cli.main", "mcp", "--http", f"127.0.0.1:{port}"],
                              cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(200):
            try:
                anonymous = httpx.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                time.sleep(0.1)
        else:
            pytest.fail("MCP HTTP server did not come up in 20 s")
        assert anonymous.status_code == 401
        wrong = httpx.post(url, headers={"Authorization": "Bearer nope"}, json={}, timeout=5)
        assert wrong.status_code == 401

        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers) as http_client, \
                Client(streamable_http_client(url, http_client=http_client)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert "stackflow.plan.iac" in names
            yaml_text = (EXAMPLES / "svc-plus.yaml").read_text()
            plan = _structured(await client.call_tool("stackflow.plan.iac", {"config_yaml": yaml_text}))
            assert plan["modules"][0]["target"] == "vhost-api"
    finally:
        server.kill()
        server.wait()


def test_http_without_a_token_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WORLDTREE_MCP_TOKEN"}
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "mcp", "--http", "127.0.0.1:1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "needs a bearer token" in proc.stderr


async def test_resources_are_skills_and_artifacts_and_an_apply_is_a_recorded_run(tmp_path: Path) -> None:
    (tmp_path / "skills" / "dns").mkdir(parents=True)
    (tmp_path / "skills" / "dns" / "SKILL.md").write_text("# DNS\nLower TTLs before a move.\n")
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    plugin = plugins / "stackflow-plugin-dns-cloudflare"
    plugin.write_text(PLUGIN.format(python=sys.executable))
    plugin.chmod(0o755)
    yaml_text = (EXAMPLES / "vercel-www.yaml").read_text()
    (tmp_path / "s.yaml").write_text(yaml_text)
    proc = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "stack", "plan", "dns", "s.yaml", "--out", "p"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    with (tmp_path / "server.log").open("w") as errlog:
        async with Client(stdio_client(_params(tmp_path, "--dangerously-allow-apply", "--artifacts", "p"),
                                       errlog=errlog)) as client:
            templates = {t.uri_template for t in (await client.list_resource_templates()).resource_templates}
            assert {"skill://{name}", "stackflow://artifacts/{name}"} <= templates
            statics = {str(r.uri) for r in (await client.list_resources()).resources}
            assert {"skill://index", "stackflow://artifacts"} <= statics

            def text(result: Any) -> str:
                return "".join(getattr(c, "text", "") for c in result.contents)

            index = json.loads(text(await client.read_resource("skill://index")))
            assert [(s["name"], s["source"]) for s in index] == [("dns", "repo")]
            assert text(await client.read_resource("skill://dns")) == "# DNS\nLower TTLs before a move.\n"
            assert "stackflow.dns-plan.json" in json.loads(text(await client.read_resource("stackflow://artifacts")))
            plan = json.loads(text(await client.read_resource("stackflow://artifacts/stackflow.dns-plan.json")))
            assert plan["records"][0]["name"] == "www"
            for bad in ("stackflow://artifacts/..%2F..%2Fetc%2Fpasswd", "skill://nope"):
                with pytest.raises(MCPError):
                    await client.read_resource(bad)

            # a plan through MCP digests against the same store state as the CLI's plan
            mcp_plan = _structured(await client.call_tool("stackflow.plan.dns", {"config_yaml": yaml_text}))
            assert mcp_plan["digest"] == plan["digest"]
            result = _structured(await client.call_tool("stackflow.apply.dns",
                                                        {"config_yaml": yaml_text, "plan_dir": "p"}))
            assert result["dns"]["ok"] is True
            after = _structured(await client.call_tool("stackflow.plan.dns", {"config_yaml": yaml_text}))
            assert after["digest"] != plan["digest"]  # the applied state is in the store now
    runs = subprocess.run([sys.executable, "-m", "worldtree.cli.main", "runs"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert "stack svc-plus apply dns" in runs.stdout and "succeeded" in runs.stdout
