"""A client that stops reading is cut off with bounded memory; others stay on time."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import socket
import time

import websockets
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri

from runtime.testing import free_port
from tests.factories import quote
from tests.support_gateway import receive, serve_gateway
from tests.support_kafka import producing

SYMBOLS = [f"S{number:02d}" for number in range(50)]


async def keep_publishing(settings, stop: asyncio.Event) -> None:
    """New quotes for all SYMBOLS every 20 ms until ``stop``."""
    async with producing(settings) as producer:
        seq = 0
        while not stop.is_set():
            seq += 1
            for symbol in SYMBOLS:
                await producer.send("quotes", quote(symbol, 100.0 + seq % 50, seq))
            await asyncio.sleep(0.02)


def stalled_client(port: int, frames: list[str]) -> socket.socket:
    """A WebSocket client that sends ``frames`` after the handshake and then never reads."""
    protocol = ClientProtocol(parse_uri(f"ws://127.0.0.1:{port}/ws/stream"))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    protocol.send_request(protocol.connect())
    sock.sendall(b"".join(protocol.data_to_send()))
    while protocol.handshake_exc is None and protocol.state is not State.OPEN:
        protocol.receive_data(sock.recv(4096))
    for frame in frames:
        protocol.send_text(frame.encode())
    sock.sendall(b"".join(protocol.data_to_send()))
    return sock


async def test_a_stalled_client_is_closed_and_a_normal_one_keeps_its_pace(topics):
    settings = dataclasses.replace(
        topics,
        gateway_port=free_port(),
        slow_consumer_seconds=2.0,
        send_queue_limit=100,
        synthetic_any_symbol=True,
    )
    stop = asyncio.Event()
    async with serve_gateway(settings) as app:
        publisher = asyncio.create_task(keep_publishing(settings, stop))
        url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
        stalled = None
        try:
            subscribe = json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": SYMBOLS,
                    "interval_ms": 100,
                }
            )
            stalled = await asyncio.to_thread(
                stalled_client, settings.gateway_port, [subscribe] * 10
            )
            async with websockets.connect(url) as normal:
                await normal.send(
                    json.dumps(
                        {
                            "type": "subscribe",
                            "stream_type": "price",
                            "symbols": ["S01"],
                            "interval_ms": 100,
                        }
                    )
                )
                await receive(normal, "subscription_ack")
                arrivals, queue_depths = [], []
                stalled_session = None
                deadline = time.monotonic() + 40
                while time.monotonic() < deadline:
                    await receive(normal, "data")
                    arrivals.append(time.monotonic())
                    sessions = [
                        s for s in app.state.registry.connections if len(s.subscriptions) == 10
                    ]
                    if sessions:
                        stalled_session = sessions[0]
                        queue_depths.append(stalled_session.outbox.qsize())
                    elif stalled_session is not None:
                        break
                assert stalled_session is not None and stalled_session.closing is not None
                assert "SLOW_CONSUMER" in stalled_session.closing[0]
                assert max(queue_depths) <= 10 + 2
                gaps = [b - a for a, b in itertools.pairwise(arrivals)]
                assert len(arrivals) > 20 and max(gaps) < 0.5
                await receive(normal, "data")
        finally:
            stop.set()
            await publisher
            if stalled is not None:
                stalled.close()
