"""Liveness and readiness over HTTP for the services without a web server of their own.

``GET /healthz`` answers 200 while the service's consume loop keeps up and 503 once it has
stalled: records wait for it (consumer lag above zero) and it has not moved for
``FIML_CONSUMER_STALL_SECONDS`` (:class:`Progress`), so Kubernetes restarts a stuck worker;
an idle loop with nothing to read is alive. ``GET /metrics`` answers the process's
Prometheus metrics (:mod:`runtime.metrics`). ``GET /readyz`` answers 200 once the service's
readiness check passes and 503 while it does not: for ingest, Kafka acknowledges what it
sends (503 with the reason while the broker is away); for arbitration, the Faust worker is
connected to the broker, has joined its consumer group, received an assignment and is not
in the middle of a rebalance (``arbitration/health.py``; the gateway has the same endpoints,
see ``gateway/routes/monitoring.py``). The server listens on ``FIML_HEALTH_HOST:FIML_HEALTH_PORT``
and is off while ``FIML_HEALTH_PORT`` is 0, the default for a service run alone; ``fiml up``
gives ingest, arbitration and the alerts worker ports of their own
(``FIML_UP_INGEST_HEALTH_PORT``, ``FIML_UP_ARBITRATION_HEALTH_PORT``,
``FIML_UP_ALERTS_HEALTH_PORT``). ``python -m fiml.health URL`` probes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Hashable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError

from runtime.metrics import CONTENT_TYPE, ConsumerLag, exposition
from runtime.settings import Settings

log = logging.getLogger("fiml.health")

Check = Callable[[], bool]

READ_TIMEOUT = 5.0
WATCH_PERIOD = 1.0
MAX_HEADER_LINES = 100
REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}


class Progress:
    """Whether a consume loop keeps up: fed samples of its positions and of the records
    waiting after them, it has stalled once records have waited ``limit`` seconds while its
    positions stayed the same. Samples come from outside the loop (a task or timer of their
    own), so a loop stuck on any await is still seen."""

    def __init__(self, limit: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.clock = clock
        self.positions: Hashable = None
        self.waiting = 0
        self.since = clock()

    def observe(self, positions: Hashable, waiting: int) -> None:
        """Take one sample: the loop's positions now, and how many records wait after them
        (the wait counts from the first sample that saw them)."""
        if waiting <= 0 or self.waiting <= 0 or positions != self.positions:
            self.since = self.clock()
        self.positions = positions
        self.waiting = waiting

    def stalled(self) -> bool:
        """Whether records wait and nothing moved for longer than ``limit``."""
        return self.waiting > 0 and self.clock() - self.since > self.limit

    def alive(self) -> bool:
        """The liveness check: not stalled."""
        return not self.stalled()

    @contextlib.asynccontextmanager
    async def watching(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Sequence[TopicPartition] | None,
        lag: ConsumerLag | None = None,
        busy: Check | None = None,
    ) -> AsyncIterator[None]:
        """Run :meth:`watch` while the block runs."""
        task = asyncio.create_task(self.watch(consumer, partitions, lag, busy))
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def watch(
        self,
        consumer: AIOKafkaConsumer,
        partitions: Sequence[TopicPartition] | None,
        lag: ConsumerLag | None = None,
        busy: Check | None = None,
    ) -> None:
        """Sample an aiokafka consumer every ``WATCH_PERIOD`` seconds until cancelled,
        exporting its lag to ``lag`` too: what is waiting is the end offset it last fetched
        minus its position, per partition (``partitions``, or None: those its consumer group
        assigned it at each sample). While ``busy()`` holds, records wait on work the loop
        bounds itself (the webhook worker's full delivery slots) and count as none."""
        while True:
            positions, lags = [], {}
            for tp in sorted(consumer.assignment()) if partitions is None else partitions:
                try:
                    position = await consumer.position(tp)
                except IllegalStateError:  # revoked by a rebalance since the sample began
                    continue
                end = consumer.highwater(tp)
                positions.append(position)
                if end is not None:
                    lags[(tp.topic, tp.partition)] = end - position
            waiting = 0 if busy is not None and busy() else sum(max(0, n) for n in lags.values())
            self.observe(tuple(positions), waiting)
            if lag is not None:
                lag.export(lags)
            await asyncio.sleep(WATCH_PERIOD)


class HealthServer:
    """A minimal HTTP/1.1 server that answers ``/healthz``, ``/readyz`` and ``/metrics``, one
    request per connection."""

    def __init__(
        self,
        host: str,
        port: int,
        ready: Check,
        live: Check = lambda: True,
        why_not_ready: Callable[[], str] | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.ready = ready
        self.live = live
        self.why_not_ready = why_not_ready
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        """The port the server listens on (the requested one, or the one picked for 0)."""
        if self._server is None:
            return self.requested_port
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def start(self) -> None:
        """Listen; requests are answered on the running event loop."""
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        log.info(
            "health endpoints on http://%s:%d (/healthz, /readyz, /metrics)", self.host, self.port
        )

    async def close(self) -> None:
        """Stop listening and wait for the connections being answered."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def answer(self, method: str, target: str) -> tuple[int, str, bytes]:
        """Status code, content type and body for a request line's method and target."""
        path = target.split("?", 1)[0]
        if path not in ("/healthz", "/readyz", "/metrics"):
            return _status(404, "not found")
        if method not in ("GET", "HEAD"):
            return _status(405, "method not allowed")
        if path == "/metrics":
            return 200, CONTENT_TYPE, exposition()
        if path == "/healthz":
            return _status(200, "ok") if self.live() else _status(503, "stalled")
        if self.ready():
            return _status(200, "ready")
        if self.why_not_ready is not None:
            return _status(503, "not ready", self.why_not_ready())
        return _status(503, "not ready")

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                request_line = (await reader.readline()).decode("latin-1").split()
                for _ in range(MAX_HEADER_LINES):
                    if (await reader.readline()).strip() == b"":
                        break
            if len(request_line) == 3:
                method, target, _ = request_line
                status, content_type, payload = self.answer(method, target)
            else:
                method, (status, content_type, payload) = "GET", _status(400, "bad request")
            head = (
                f"HTTP/1.1 {status} {REASONS[status]}\r\n"
                f"Content-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Cache-Control: no-store\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            writer.write(head if method == "HEAD" else head + payload)
            await writer.drain()
        except (TimeoutError, ConnectionError, ValueError):
            pass  # a client too slow, gone, or sending an overlong line gets no answer
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


def _status(code: int, status: str, reason: str | None = None) -> tuple[int, str, bytes]:
    """A JSON answer ``{"status": status}``, with ``"reason"`` if given."""
    body = {"status": status} if reason is None else {"status": status, "reason": reason}
    return code, "application/json", json.dumps(body).encode()


@contextlib.asynccontextmanager
async def serve_health(
    settings: Settings,
    ready: Check,
    live: Check = lambda: True,
    why_not_ready: Callable[[], str] | None = None,
) -> AsyncIterator[HealthServer | None]:
    """Serve the health endpoints while the block runs; yields None if they are off."""
    if not settings.health_port:
        yield None
        return
    server = HealthServer(settings.health_host, settings.health_port, ready, live, why_not_ready)
    await server.start()
    try:
        yield server
    finally:
        await server.close()
