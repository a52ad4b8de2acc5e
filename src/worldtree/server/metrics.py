"""``/metrics`` in the Prometheus text format, with seed 001's series.

* ``worldtree_tasks_pending_total`` / ``worldtree_queue_size`` (gauges, read from the store at
  scrape time, so every replica reports the shared queue): runs waiting for an executor.
* ``worldtree_tasks_total{status}``, ``worldtree_task_duration_seconds``,
  ``worldtree_step_executions_total{status}``: attempts this process's executors finished (a
  counter per replica, summed by Prometheus), and their steps' final states.
* ``http_request_duration_seconds{method, route, status}``: every API request, by route template.

Each application has its own registry (tests start several in one process).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worldtree.app.runs import RunResult
from worldtree.store.api import RunStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Queue(Collector):
    """Queued runs, counted in the store when scraped."""

    def __init__(self, store: Callable[[], RunStore | None]) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        store = self.store()
        if store is None:
            return
        _, pending = store.page_runs(limit=1, state="pending")
        yield GaugeMetricFamily("worldtree_tasks_pending_total", "Runs queued, waiting for an executor.",
                                value=pending)
        yield GaugeMetricFamily("worldtree_queue_size", "Runs in the queue (queued, not yet claimed).", value=pending)


class Metrics:
    def __init__(self, store: Callable[[], RunStore | None]) -> None:
        self.registry = CollectorRegistry()
        self.tasks = Counter("worldtree_tasks_total", "Run attempts finished by this server's executors.",
                             ["status"], registry=self.registry)
        self.duration = Histogram("worldtree_task_duration_seconds", "Run attempt duration, claim to end.",
                                  registry=self.registry, buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400))
        self.steps = Counter("worldtree_step_executions_total", "Steps ended in attempts this server ran.",
                             ["status"], registry=self.registry)
        self.http = Histogram("http_request_duration_seconds", "API request duration.",
                              ["method", "route", "status"], registry=self.registry)
        self.registry.register(_Queue(store))

    def run_finished(self, result: RunResult, seconds: float) -> None:
        self.tasks.labels(status=str(result.state)).inc()
        self.duration.observe(seconds)
        for state in result.nodes.values():
            self.steps.labels(status=str(state)).inc()

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE)

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """``app`` timed per request (pure ASGI: streamed responses such as SSE pass through untouched)."""

        async def timed(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = [500]

            async def sending(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status[0] = int(message["status"])
                await send(message)

            try:
                await app(scope, receive, sending)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                self.http.labels(method=scope.get("method", ""), route=template, status=str(status[0])).observe(
                    time.perf_counter() - started)

        return timed
