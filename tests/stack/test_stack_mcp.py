"""worldtree mcp: the official SDK's own client over stdio lists the tools, validates, plans, is refused apply."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

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
