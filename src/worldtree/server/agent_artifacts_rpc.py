"""AgentService.UploadArtifact and DownloadArtifacts: protobuf chunks to and from
:mod:`worldtree.app.agent_artifacts` (a stale lease token is FAILED_PRECONDITION, as for reports)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import grpc

from worldtree.api.agent.v1 import agent_pb2 as apb
from worldtree.app import agent_artifacts
from worldtree.app.artifacts import Artifact, open_artifact
from worldtree.store.api import RunStore

#: bytes per DownloadArtifactsResponse (well under gRPC's 4 MiB message limit)
CHUNK_BYTES = 1 << 20

Guard = Callable[[grpc.ServicerContext, Callable[[], Any]], Any]


class _ChunkReader(io.RawIOBase):
    """The ``data`` of a stream of chunks as a binary file; remembers the header fields."""

    def __init__(self, first: apb.UploadArtifactRequest, rest: Iterator[apb.UploadArtifactRequest]) -> None:
        self.head = first
        self.sha256 = first.sha256
        self._rest = rest
        self._pending = bytes(first.data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._rest, None)
            if chunk is None:
                return 0
            if chunk.path != self.head.path or chunk.job_id != self.head.job_id:
                raise agent_artifacts.ArtifactError("an UploadArtifact call carries one file: every chunk names the "
                                                    "same job and path")
            self.sha256 = chunk.sha256 or self.sha256
            self._pending = bytes(chunk.data)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _stale(context: grpc.ServicerContext, body: Callable[[], Any], guard: Guard) -> Any:
    try:
        return guard(context, body)
    except agent_artifacts.StaleLease as exc:  # _guard lets it through: a refused report, as ReportJobStatus's
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, str(exc))


def upload(store: RunStore, chunks: Iterator[apb.UploadArtifactRequest], context: grpc.ServicerContext,
           guard: Guard) -> apb.UploadArtifactResponse:
    got = next(chunks, None)
    if got is None:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "UploadArtifact without a chunk")
        raise AssertionError("unreachable")  # context.abort raises
    first = got
    reader = _ChunkReader(first, chunks)

    def body() -> Artifact:
        # the announced sha256 is read after the whole file was (it may come on the last chunk only)
        src: BinaryIO = io.BufferedReader(reader)
        return agent_artifacts.upload(store, first.agent_id, first.job_id, first.lease_token, first.path, src,
                                      lambda: reader.sha256)

    made: Artifact = _stale(context, body, guard)
    return apb.UploadArtifactResponse(artifact_id=made.id, sha256=made.sha256, size=made.size)


def download(store: RunStore, request: apb.DownloadArtifactsRequest, context: grpc.ServicerContext,
             guard: Guard) -> Iterator[apb.DownloadArtifactsResponse]:
    found: list[Artifact] = _stale(context, lambda: agent_artifacts.needed(
        store, request.agent_id, request.job_id, request.lease_token), guard)
    for artifact in found:
        _, src = open_artifact(store, artifact.id)
        with src:
            data = src.read(CHUNK_BYTES)
            while True:
                following = src.read(CHUNK_BYTES)
                yield apb.DownloadArtifactsResponse(job_id=request.job_id, path=artifact.path,
                                                    sha256=artifact.sha256, data=data, last=not following)
                if not following:
                    break
                data = following
