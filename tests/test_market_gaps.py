"""The quote follows the market through gaps and restarts, on the real broker.

- Raw ticks of three venues at 100, then all three at 108, reach 108 within the bound of
  arbitration/README.md ("The rule and its guarantees"); a venue at 130 beside two at 100
  never drives and no quote strays above 101.
- ``fiml up`` stopped and started again on the same data directory, the second run's market
  at least 2% away from where the first left it: every symbol's quote moves on, nothing of
  the second run is refused as an outlier, and ``fiml rebuild --verify`` agrees with the
  live outputs.
- The synthetic provider continues the market of the previous run: prices from where they
  were, no sequence number or trade id repeated.
"""

from __future__ import annotations

import asyncio
import dataclasses
import signal
import subprocess
import sys

from ingest.service import run_ingest
from runtime.clock import now_micros
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from schemas import Quote, RawTick, Rejected
from tests.factories import MS, SECOND, default_config
from tests.support import poll_until, service_env, spawn, wait_for_port
from tests.support_kafka import produce, read_topic

ROUND = 100 * MS


async def write_rounds(
    settings: Settings, symbol: str, prices: dict[str, float], start: int, rounds: int
) -> None:
    """``rounds`` rounds of quote ticks 100 ms apart from ``start``, one per venue, in the
    order of ``prices``."""
    ticks = [
        RawTick(symbol, venue, "QUOTE", at + i, at + i + 10 * MS, at + i, price)
        for at in (start + n * ROUND for n in range(rounds))
        for i, (venue, price) in enumerate(prices.items())
    ]
    await produce(settings, "ticks.raw", ticks, written_ms=lambda tick: tick.ts_event // 1000)


async def test_a_gap_every_venue_makes_moves_the_quote_and_a_lone_venue_never_drives(
    topics: Settings, tmp_path
) -> None:
    settings = topics
    worker = spawn(["arbitrate"], service_env(settings), tmp_path / "arbitrate.log")
    try:
        start = now_micros() - 10 * SECOND
        venues = ("v:a", "v:b", "v:c")
        await write_rounds(settings, "GAP", dict.fromkeys(venues, 100.0), start, 20)
        gap_at = start + 20 * ROUND
        await write_rounds(settings, "GAP", dict.fromkeys(venues, 108.0), gap_at, 20)
        await write_rounds(settings, "LONE", {"v:b": 100.0, "v:c": 100.0, "v:a": 130.0}, start, 40)
        quotes: list[Quote] = []
        refused: list[Rejected] = []

        async def both_done() -> bool:
            quotes[:] = [q for _, _, q in await read_topic(settings, "quotes", Quote)]
            refused[:] = [r for _, _, r in await read_topic(settings, "ticks.dlq", Rejected)]
            return (
                any(q.symbol == "GAP" and q.price == 108.0 for q in quotes)
                and sum(r.symbol == "LONE" for r in refused) >= 40
            )

        await poll_until(both_done, within=60, interval=0.5)
    finally:
        stop_process(worker)
    gap = [q for q in quotes if q.symbol == "GAP"]
    moved = next(q for q in gap if q.price == 108.0)
    bound = default_config().freshness_us + ROUND
    assert moved.ts_event - gap_at <= bound, "within the freshness window plus one round"
    assert moved.ts_event - gap_at <= ROUND, "in fact within the round of the gap"
    assert all(q.price == 108.0 for q in gap if q.seq > moved.seq)
    lone = [q for q in quotes if q.symbol == "LONE"]
    assert max(q.price for q in lone) <= 101.0
    assert all(q.provider != "v:a" for q in lone)
    assert lone, "the two venues at 100 make quotes"
    refused = [r for r in refused if r.symbol == "LONE"]
    assert len(refused) == 40 and {(r.provider, r.reason) for r in refused} == {("v:a", "outlier")}


def start_up(env: dict[str, str], log, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "fiml", "up"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    wait_for_port(port, timeout=120)
    return process


def stop_up(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0


SYMBOLS = ("AAPL", "BTC/USDT", "ETH/USDT")


async def test_a_restart_on_the_last_runs_data_keeps_every_quote_moving(
    own_broker, tmp_path
) -> None:
    """The first run trends 1.5% a second for about 8 s; the second starts every walk from
    its fixed starting price again, 10% or more away."""
    broker = own_broker
    port = free_port()
    settings = dataclasses.replace(
        broker,
        kafka_bootstrap=f"127.0.0.1:{broker.kafka_port}",
        topic_prefix="gaps",
        symbols=SYMBOLS,
    )
    env = service_env(
        broker,
        FIML_TOPIC_PREFIX="gaps",
        FIML_GATEWAY_PORT=str(port),
        FIML_UP_INGEST_HEALTH_PORT="0",
        FIML_UP_ARBITRATION_HEALTH_PORT="0",
        FIML_UP_ALERTS_HEALTH_PORT="0",
        FIML_SYMBOLS=",".join(SYMBOLS),
    )
    with (tmp_path / "up.log").open("ab") as log:
        first = start_up({**env, "FIML_SYNTHETIC_TREND_BPS": "150"}, log, port)
        try:
            await asyncio.sleep(8)
        finally:
            stop_up(first)
        await asyncio.sleep(3)  # longer than the freshness window, as any real restart is
        second_start = now_micros()
        second = start_up({**env, "FIML_SYNTHETIC_RESUME": "false"}, log, port)
        try:
            quotes: list[Quote] = []

            async def every_symbol_moved() -> bool:
                quotes[:] = [q for _, _, q in await read_topic(settings, "quotes", Quote)]
                return {q.symbol for q in quotes if q.ts_event > second_start} == set(SYMBOLS)

            await poll_until(every_symbol_moved, within=60, interval=0.5)
            await asyncio.sleep(3)
            dlq = [r for _, _, r in await read_topic(settings, "ticks.dlq", Rejected)]
            rebuild = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "fiml",
                "rebuild",
                "--verify",
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            report = (await asyncio.wait_for(rebuild.communicate(), 180))[0].decode()
        finally:
            stop_up(second)
    for symbol in SYMBOLS:
        mine = sorted((q for q in quotes if q.symbol == symbol), key=lambda q: q.ts_event)
        left = [q.price for q in mine if q.ts_event < second_start][-1]
        new = [q.price for q in mine if q.ts_event > second_start]
        assert abs(new[0] - left) / left >= 0.02, f"{symbol}: the second run starts 2% away"
        assert abs(new[-1] - left) / left >= 0.02
    assert [r for r in dlq if r.ts_input >= second_start and r.reason == "outlier"] == []
    assert rebuild.returncode == 0, report


async def test_the_synthetic_market_continues_where_the_last_run_left_it(topics) -> None:
    settings = dataclasses.replace(topics, symbols=SYMBOLS, synthetic_trend_bps=100.0)

    async def run_for(seconds: float, run_settings: Settings) -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_ingest(run_settings, stop))
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.wait_for(task, 30)

    await run_for(4, settings)
    second_start = now_micros()
    await run_for(3, dataclasses.replace(settings, synthetic_trend_bps=0.0))
    ticks = [t for _, _, t in await read_topic(settings, "ticks.raw", RawTick)]
    first = [t for t in ticks if t.ts_ingest < second_start]
    second = [t for t in ticks if t.ts_ingest >= second_start]
    assert first and second
    for symbol in SYMBOLS:
        quoted = sorted(
            (t for t in ticks if t.symbol == symbol and t.kind == "QUOTE"), key=lambda t: t.ts_event
        )
        left = [t.price for t in quoted if t.ts_ingest < second_start][-1]
        resumed = next(t.price for t in quoted if t.ts_ingest >= second_start)
        assert abs(resumed - left) / left < 0.002, f"{symbol}: {left}, then {resumed}"
    seqs = [{(t.provider, t.seq) for t in run} for run in (first, second)]
    trade_ids = [{t.trade_id for t in run if t.trade_id} for run in (first, second)]
    assert not seqs[0] & seqs[1] and not trade_ids[0] & trade_ids[1]
    assert trade_ids[0] and trade_ids[1]
