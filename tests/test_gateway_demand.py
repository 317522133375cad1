"""The gateway publishes subscription demand per symbol, and withdraws it on disconnect."""

from __future__ import annotations

import asyncio
import collections
import json

import websockets

from gateway.demand import demand_changes
from schemas import Demand
from tests.support_gateway import receive
from tests.support_kafka import read_topic


def test_demand_changes_reports_new_changed_and_ended_symbols():
    previous = {"AAPL": 2, "MSFT": 1, "TSLA": 1}
    current = collections.Counter({"AAPL": 2, "MSFT": 3, "NVDA": 1})
    assert demand_changes(previous, current) == {"TSLA": 0, "MSFT": 3, "NVDA": 1}
    assert demand_changes({}, collections.Counter()) == {}


async def latest_demand(settings) -> dict[str, int]:
    records = await read_topic(settings, "demand", Demand)
    latest = {}
    for _, _, record in sorted(records, key=lambda entry: entry[2].ts):
        assert record.gateway == settings.gateway_id
        latest[record.symbol] = record.subscribers
    return latest


async def wait_for_demand(settings, expected: dict[str, int]) -> None:
    async with asyncio.timeout(15):
        while (latest := await latest_demand(settings)) != expected:
            assert set(latest) <= set(expected) | {"AAPL", "MSFT"}
            await asyncio.sleep(0.3)


async def test_demand_follows_subscriptions_and_ends_with_the_connections(gateway):
    settings, port, _ = gateway
    url = f"ws://127.0.0.1:{port}/ws/stream"
    async with websockets.connect(url) as first, websockets.connect(url) as second:
        await first.send(
            json.dumps({"type": "subscribe", "stream_type": "price", "symbols": ["AAPL", "MSFT"]})
        )
        await second.send(
            json.dumps({"type": "subscribe", "stream_type": "trades", "symbols": ["AAPL"]})
        )
        await receive(first, "subscription_ack")
        await receive(second, "subscription_ack")
        await wait_for_demand(settings, {"AAPL": 2, "MSFT": 1})
        await first.send(
            json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": ["MSFT"]})
        )
        await receive(first, "unsubscribe_ack")
        await wait_for_demand(settings, {"AAPL": 2, "MSFT": 0})
    await wait_for_demand(settings, {"AAPL": 0, "MSFT": 0})
