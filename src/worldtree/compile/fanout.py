"""Fan-out: a job with ``hosts:`` becomes one chain of nodes per inventory host.

A node ``deploy/restart`` of a job whose ``hosts: [web]`` resolves to ``web1, web2`` becomes
``deploy@web1/restart`` and ``deploy@web2/restart`` (ids deterministic, host order as the
inventory resolves it). Edges are rewired so that

* each host's chain keeps the job's step order, and chains of different hosts are parallel;
* whatever needed a node of the job (a downstream job, ``post``) now needs that node on
  *every* host — a job is done when it is done everywhere;
* a fanned job that needs another fanned job waits for all of that job's hosts.

Each copy gets ``target.host`` (``target.hosts`` cleared), ``target.engine`` set to the
host's ``ssh://`` URL (address, port, user, key file, host-key settings; a password only as
its ``${SECRET}`` reference), so the graph runs without the inventory file (retry, agents),
and ``WORLDTREE_HOST`` in its env. Pure: the input graph is not modified.
"""

from __future__ import annotations

from typing import Protocol

from worldtree.compile.diagnostics import Diagnostic
from worldtree.compile.op_steps import OP_ENGINE_ENV, OP_STEP_ENV
from worldtree.errors import SpecError
from worldtree.model.graph import ExecutionGraph, Node

__all__ = ["HOST_ENV", "HostSource", "expand_hosts", "host_node_id"]

HOST_ENV = "WORLDTREE_HOST"


class HostSource(Protocol):
    """What fan-out needs of an inventory (``worldtree.ops.inventory.Inventory`` is one). A
    protocol, so the compiler does not import the ops layer above it."""

    source: str

    def resolve(self, names: list[str]) -> list[str]:
        """Host and group names -> host names in order; KeyError/ValueError with a message."""
        ...

    def engine_url(self, name: str) -> str:
        """The ``ssh://`` URL of one host, without secrets."""
        ...


def host_node_id(node_id: str, host: str) -> str:
    """``stage/job/step`` on ``web1`` -> ``stage/job@web1/step``."""
    head, sep, step = node_id.rpartition("/")
    return f"{head}@{host}/{step}" if sep else f"{node_id}@{host}"


def expand_hosts(graph: ExecutionGraph, inventory: HostSource | None) -> ExecutionGraph:
    """One node per (node, host) for every node with ``target.hosts``; see the module docstring.

    Raises SpecError when a job names hosts but there is no inventory, or names an unknown
    host or group.
    """
    fanned = [n for n in graph.nodes if n.target.hosts]
    if not fanned:
        return graph
    source = graph.source or "<pipeline>"
    if inventory is None:
        jobs = sorted({n.job for n in fanned})
        raise SpecError([Diagnostic(
            "error", "inventory", f"job {jobs[0]!r} lists `hosts:` but no inventory is given; set "
            "`inventory: FILE` in the pipeline (or pass --inventory)", source)])
    hosts_of: dict[str, list[str]] = {}
    diags: list[Diagnostic] = []
    for node in fanned:
        try:
            hosts_of[node.id] = inventory.resolve(list(node.target.hosts or []))
        except (KeyError, ValueError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            diags.append(Diagnostic("error", "inventory", f"job {node.job!r}: {message}", source))
    if diags:
        raise SpecError(list(dict.fromkeys(diags)))

    # id of an original node -> ids of its copies (unchanged nodes map to themselves)
    copies: dict[str, list[str]] = {n.id: [n.id] for n in graph.nodes}
    for node_id, hosts in hosts_of.items():
        copies[node_id] = [host_node_id(node_id, h) for h in hosts]

    by_id = graph.by_id()
    urls = {h: inventory.engine_url(h) for hosts in hosts_of.values() for h in hosts}
    out: list[Node] = []
    for node in graph.nodes:
        if node.id not in hosts_of:
            flat = [c for dep in node.needs for c in copies[dep]]
            out.append(node.model_copy(update={"needs": list(dict.fromkeys(flat))}))
            continue
        for host in hosts_of[node.id]:
            needs: list[str] = []
            for dep in node.needs:
                if dep in hosts_of and _same_job(by_id[dep], node):
                    needs.append(host_node_id(dep, host))  # this host's previous step
                else:
                    needs.extend(copies[dep])
            # shallow copies with every mutable field replaced: deep copies cost ~0.3 ms a node
            op_step = OP_STEP_ENV in node.env  # runs here, the operation connects to the host itself
            out.append(node.model_copy(update={
                "id": host_node_id(node.id, host),
                "secrets": list(node.secrets),
                "scopes": list(node.scopes),
                "path": _host_path(node, host),
                "needs": list(dict.fromkeys(needs)),
                "env": {**node.env, HOST_ENV: host, **({OP_ENGINE_ENV: urls[host]} if op_step else {})},
                "target": node.target.model_copy(update={"kind": node.target.kind if op_step else "ssh",
                                                         "hosts": None, "host": host,
                                                         "engine": None if op_step else urls[host]}),
            }))
    return graph.model_copy(update={"nodes": out})


def _same_job(dep: Node, node: Node) -> bool:
    return dep.job == node.job and dep.stage == node.stage


def _host_path(node: Node, host: str) -> str:
    suffix = "/" + node.name
    if node.path.endswith(suffix):
        return f"{node.path[: -len(suffix)]}@{host}{suffix}"
    return f"{node.path}@{host}"
