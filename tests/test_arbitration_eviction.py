"""The arbitration worker forgets a symbol the partition's event time has left behind, on the
real broker (arbitration/README.md "Forgetting symbols", docs/invariants.md "Per-symbol
state"): ``fiml_symbols_held{service="arbitration"}`` falls from 2 to 1, the final records of
the forgotten symbol's candles are written at the offset of the tick that moved the event
time, a worker restarted on that data holds the same symbols, and the symbol quotes again
when it comes back. Event time comes from the log, so the test writes it days apart."""

from __future__ import annotations

import httpx

from arbitration.configure import engine_config
from runtime.clock import now_micros
from runtime.partitioning import key_partition
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from schemas import Candle, Quote, RawTick
from schemas.times import TIMEFRAMES
from tests.factories import MS, SECOND
from tests.support import parse, poll_until, service_env, spawn
from tests.support_kafka import ingest_ms, produce, read_topic

DAY = 86_400 * SECOND
GONE = "EVA"  # the symbol the worker forgets


def partner(settings: Settings) -> str:
    """A symbol in the partition of ``GONE``."""
    partition = key_partition(GONE.encode(), settings.partitions)
    return next(
        name
        for name in (f"EVB{n}" for n in range(1000))
        if key_partition(name.encode(), settings.partitions) == partition
    )


def at(symbol: str, ts_event: int, price: float) -> RawTick:
    """A quote tick of one venue, received 10 ms after ``ts_event``."""
    return RawTick(symbol, "v:a", "QUOTE", ts_event, ts_event + 10 * MS, ts_event, price)


async def write(settings: Settings, *ticks: RawTick) -> int:
    """Write ``ticks`` with their ingest time as Kafka time; the offset of the last."""
    written = await produce(settings, "ticks.raw", ticks, written_ms=ingest_ms)
    return written[-1].offset


async def held(client: httpx.AsyncClient, url: str) -> float | None:
    """The worker's ``fiml_symbols_held{service="arbitration"}``, None before it answers."""
    try:
        response = await client.get(url)
    except httpx.TransportError:
        return None
    key = ("fiml_symbols_held", frozenset({("service", "arbitration")}))
    return parse(response.text).get(key) if response.status_code == 200 else None


async def holds(client: httpx.AsyncClient, url: str, count: int) -> bool:
    return await held(client, url) == count


async def quoted(settings: Settings, symbol: str, ts_event: int) -> bool:
    return any(
        q.symbol == symbol and q.ts_event == ts_event
        for _, _, q in await read_topic(settings, "quotes", Quote)
    )


async def test_a_forgotten_symbol_leaves_the_gauge_closes_its_candles_and_comes_back(
    topics: Settings, tmp_path
) -> None:
    settings = topics
    kept = partner(settings)
    span = engine_config(settings).effective_evict_us
    # all Kafka times in the past (the broker refuses times far ahead of its clock)
    start = (now_micros() - span - 2 * DAY) // SECOND * SECOND
    later = start + span + 2 * SECOND  # a second boundary past the span
    port = free_port()
    url = f"http://127.0.0.1:{port}/metrics"
    env = service_env(settings, FIML_HEALTH_PORT=str(port))
    worker = spawn(["arbitrate"], env, tmp_path / "arbitrate.log")
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            await write(settings, at(GONE, start, 100.0), at(kept, start + MS, 50.0))
            await poll_until(lambda: quoted(settings, kept, start + MS), 90, 0.5)
            await poll_until(lambda: holds(client, url, 2), 10)
            moved = await write(settings, at(kept, later, 51.0))
            await poll_until(lambda: holds(client, url, 1), 30)
            # a worker restarted on this data holds only what the first held
            stop_process(worker)
            worker = spawn(["arbitrate"], env, tmp_path / "arbitrate.log")
            # same second of event time as the last: no new look for symbols to forget
            await write(settings, at(kept, later + MS, 52.0))
            await poll_until(lambda: quoted(settings, kept, later + MS), 90, 0.5)
            await poll_until(lambda: holds(client, url, 1), 10)  # a resurrected one stays
            back = later + 500 * MS
            await write(settings, at(GONE, back, 101.0))
            await poll_until(lambda: quoted(settings, GONE, back), 30, 0.5)
            await poll_until(lambda: holds(client, url, 2), 10)
    finally:
        stop_process(worker)
    candles = [c for _, _, c in await read_topic(settings, "candles", Candle)]
    final = {c.timeframe: c for c in candles if c.symbol == GONE and c.is_closed}
    assert set(final) == set(TIMEFRAMES), "every candle of the forgotten symbol is closed"
    assert {c.seq for c in final.values()} == {moved}, "at the tick that moved the event time"
    assert all(c.open_time <= start and c.close == 100.0 for c in final.values())
