"""Small builders shared by the SSH tests: nodes, requests, run contexts, output capture."""

from __future__ import annotations

from sshd_farm import Farm, Server

from worldtree.backends.base import RunContext, StepRequest, Stream
from worldtree.model.graph import ExecutionGraph, Node, Target


def key_url(farm: Farm, server: Server) -> str:
    """``ssh://user@127.0.0.1:port`` (the key comes from the config in ``ctx_for``)."""
    return f"ssh://{farm.user}@127.0.0.1:{server.port}"


def node(command: str, *, engine: str | None = None, host: str | None = None, node_id: str = "job/step",
         workdir: str | None = None, shell: str = "sh") -> Node:
    return Node(id=node_id, path=node_id, name=node_id.rsplit("/", 1)[-1], job="job", command=command,
                shell=shell, workdir=workdir, target=Target(kind="ssh", engine=engine, host=host))


def ctx_for(farm: Farm, *, nodes: list[Node] | None = None, **config: object) -> RunContext:
    graph = ExecutionGraph(name="t", nodes=nodes or [])
    base: dict[str, object] = {"ssh_known_hosts": str(farm.known_hosts)}
    base.update(config)
    return RunContext(run_id="r1", attempt=1, workdir="/nonexistent-run-dir", graph=graph,
                      grace_seconds=1.0, config=base)


def request(n: Node, env: dict[str, str] | None = None, workdir: str = "/nonexistent-run-dir") -> StepRequest:
    return StepRequest(node=n, command=n.command, env=env or {}, workdir=workdir)


class Lines:
    """An OutputSink that keeps what it was given."""

    def __init__(self) -> None:
        self.lines: list[tuple[Stream, str]] = []

    def __call__(self, stream: Stream, line: str) -> None:
        self.lines.append((stream, line))

    def out(self) -> list[str]:
        return [line for stream, line in self.lines if stream == "stdout"]

    def err(self) -> list[str]:
        return [line for stream, line in self.lines if stream == "stderr"]
