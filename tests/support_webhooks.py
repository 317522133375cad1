"""A webhook receiver on 127.0.0.1 for the alert tests: it records what it is sent and
answers by path (``/slow`` late, ``/flaky`` 503 twice, ``/reject`` 404, else 204)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from runtime.testing import free_port
from tests.support import poll_until


class Receiver:
    """What the receiver was sent, and how many times each path was tried."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.tries: Counter[str] = Counter()

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        self.tries[path] += 1
        body = await request.body()
        if path == "/slow":
            await asyncio.sleep(2)
        if path == "/flaky" and self.tries[path] <= 2:
            return Response(status_code=503)
        if path == "/reject":
            return Response(status_code=404)
        self.received.append((path, dict(request.headers), body))
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def serving_receiver(port: int | None = None) -> AsyncIterator[tuple[Receiver, str]]:
    """A receiver on ``port`` (else a free one) of 127.0.0.1: (it, its base URL)."""
    state = Receiver()
    app = Starlette(routes=[Route("/{path}", state.handle, methods=["POST"])])
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await poll_until(lambda: server.started, within=10, interval=0.02)
    try:
        yield state, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, 5)
