"""MCP artifact resources read in-process: only regular files of the served directory, bounded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError

from worldtree.mcp import resources
from worldtree.mcp.resources import register


async def test_artifacts_that_are_links_or_huge_are_not_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``stackflow.leak.json -> ~/.ssh/id_rsa`` in the served directory was listed and served to the
    assistant; one linking to /dev/zero never finished. A regular artifact still is served."""
    served = tmp_path / "served"
    served.mkdir()
    (tmp_path / "id_rsa").write_text("PRIVATE KEY s3cr3t\n")
    (served / "stackflow.leak.json").symlink_to(tmp_path / "id_rsa")
    (served / "stackflow.zero.json").symlink_to("/dev/zero")
    os.mkfifo(served / "stackflow.fifo.json")
    (served / "stackflow.dns-plan.json").write_text('{"records": []}')
    (served / "stackflow.big.json").write_text("x" * 2000)
    monkeypatch.setattr(resources, "MAX_ARTIFACT", 1000)
    server = MCPServer("t")
    register(server, lambda: None, served)

    (index,) = await server.read_resource("stackflow://artifacts")
    assert index.content == '["stackflow.big.json", "stackflow.dns-plan.json"]'
    (plan,) = await server.read_resource("stackflow://artifacts/stackflow.dns-plan.json")
    assert plan.content == '{"records": []}'
    for name, words in (("leak", "no stackflow.leak.json"), ("zero", "no stackflow.zero.json"),
                        ("fifo", "no stackflow.fifo.json"), ("big", "larger than")):
        with pytest.raises(ResourceError, match=words) as info:
            await server.read_resource(f"stackflow://artifacts/stackflow.{name}.json")
        assert "s3cr3t" not in str(info.value)
