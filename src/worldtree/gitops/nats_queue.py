"""Deliveries over NATS JetStream (``worldtree server --events nats://host:4222``).

The store still records every delivery (replays are still refused by its unique index, and it
remains the truth about what was handled); JetStream carries the *work*: the gateway publishes
the delivery's row id on ``<stream>.deliveries`` (``Nats-Msg-Id`` = provider and delivery id, so
JetStream deduplicates too), and every replica pulls from one durable consumer, so each message
goes to one replica at a time. A message is acked after the run is created (or the delivery is
settled: skipped, failed); a consumer that dies before acking gets it redelivered after
``ack_wait``, and the store's claim keeps a redelivery from making a second run. A publish that
fails is not lost: the store's slow sweep picks the delivery up.

``?stream=NAME`` in the URL names the stream (default ``WORLDTREE_GITOPS``): tests and several
installations share one NATS. nats-py is asyncio; it runs on its own loop in its own thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from worldtree.errors import UsageError

log = logging.getLogger("worldtree.gitops")

DEFAULT_STREAM = "WORLDTREE_GITOPS"
#: How long a replica may work on a delivery before JetStream hands it to another.
ACK_WAIT_SECONDS = 300.0


def parse_url(url: str) -> tuple[str, str]:
    """(server URL, stream name) from ``nats://host:port[?stream=NAME]``."""
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise UsageError(f"--events {url!r}: expected nats://HOST:PORT (JetStream enabled)")
    stream = parse_qs(parts.query).get("stream", [DEFAULT_STREAM])[0]
    if not stream.replace("_", "").replace("-", "").isalnum():
        raise UsageError(f"--events: stream name {stream!r} may hold letters, digits, - and _ only")
    return urlunsplit((parts.scheme, parts.netloc, "", "", "")), stream


def check_reachable(url: str, seconds: float = 5.0) -> None:
    """UsageError unless a NATS server with JetStream answers at ``url`` (checked before a server starts)."""
    import nats

    server, _ = parse_url(url)

    async def probe() -> None:
        parts = urlsplit(server)
        _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 4222), seconds)
        writer.close()
        nc = await asyncio.wait_for(nats.connect(server, connect_timeout=seconds, allow_reconnect=False,
                                                 max_reconnect_attempts=0, error_cb=_silent), seconds)
        try:
            await asyncio.wait_for(nc.jetstream().account_info(), seconds)
        finally:
            await nc.close()

    try:
        asyncio.run(probe())
    except Exception as exc:
        reason = str(exc) or type(exc).__name__
        raise UsageError(f"--events {server}: cannot use NATS JetStream ({reason}); start NATS with -js "
                         "or drop --events to queue deliveries in the store") from None


async def _silent(exc: Exception) -> None:
    pass


class NatsQueue:
    """A JetStream publisher and durable pull consumer on a private event loop thread."""

    def __init__(self, url: str) -> None:
        self.server, self.stream = parse_url(url)
        self.subject = f"{self.stream.lower()}.deliveries"
        self.durable = f"{self.stream}-generator"
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._js: Any = None

    def start(self, handle: Callable[[str], bool], stop: threading.Event) -> threading.Thread:
        """Connect (raising when NATS is unreachable) and consume on a thread; ``handle(row_id)`` → ack?"""
        thread = threading.Thread(target=self._run, args=(handle, stop), name="gitops-nats", daemon=True)
        thread.start()
        self._ready.wait(15)
        if self._error is not None:
            raise UsageError(f"--events {self.server}: cannot use NATS JetStream: {self._error}")
        if not self._ready.is_set():
            raise UsageError(f"--events {self.server}: NATS did not answer within 15 s")
        return thread

    def publish(self, row_id: str, msg_id: str) -> None:
        """Put a delivery on the stream (bounded wait); failures are logged: the store sweep covers them."""
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._publish(row_id, msg_id), self.loop)
        try:
            future.result(timeout=5)
        except Exception as exc:  # the delivery is in the store: the sweep handles it
            log.warning("gitops: could not publish delivery %s to NATS (%s); the store sweep will handle it",
                        row_id, type(exc).__name__)

    async def _publish(self, row_id: str, msg_id: str) -> None:
        if self._js is None:
            raise ConnectionError("not connected to NATS")
        await self._js.publish(self.subject, row_id.encode(), headers={"Nats-Msg-Id": msg_id})

    def _run(self, handle: Callable[[str], bool], stop: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main(handle, stop))
        finally:
            self.loop.close()

    async def _main(self, handle: Callable[[str], bool], stop: threading.Event) -> None:
        import nats
        from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig
        from nats.js.errors import BadRequestError

        async def quiet(exc: Exception) -> None:  # nats-py prints tracebacks by default
            log.warning("gitops: NATS %s: %s", type(exc).__name__, exc)

        try:
            # the first connection must succeed at once (a wrong URL is an error, not nats-py's two-minute
            # retry loop); after that nats-py reconnects for as long as the server runs
            parts = urlsplit(self.server)
            _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 4222), 3)
            writer.close()
            nc = await asyncio.wait_for(nats.connect(self.server, connect_timeout=3, max_reconnect_attempts=-1,
                                                     error_cb=quiet), 10)
            js = nc.jetstream()
            try:
                await js.add_stream(StreamConfig(name=self.stream, subjects=[self.subject]))
            except BadRequestError:  # exists already (another replica made it)
                pass
            sub = await js.pull_subscribe(self.subject, durable=self.durable, stream=self.stream,
                                          config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                                                ack_wait=ACK_WAIT_SECONDS, max_deliver=-1))
        except Exception as exc:
            self._error = exc
            self._ready.set()
            return
        self._js = js
        self._ready.set()
        try:
            while not stop.is_set():
                try:
                    messages = await sub.fetch(1, timeout=1)
                except (TimeoutError, nats.errors.TimeoutError):
                    continue
                except Exception as exc:  # the connection is down: nats-py reconnects; try again shortly
                    log.warning("gitops: NATS fetch failed (%s)", type(exc).__name__)
                    await asyncio.sleep(1)
                    continue
                for message in messages:
                    row_id = message.data.decode()
                    settled = await self.loop.run_in_executor(None, handle, row_id)
                    if settled:
                        await message.ack()
                    else:  # another replica holds its claim (or the store is away): later
                        await message.nak(delay=5)
        finally:
            with contextlib.suppress(Exception):  # not drain(): it waits for the pull subscription's timeout
                await asyncio.wait_for(nc.close(), 2)
