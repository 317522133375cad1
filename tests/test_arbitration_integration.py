"""Arbitration on the real broker: the synthetic market with injected faults, a worker that
is killed with SIGKILL mid-stream and restarted, then checks against the log.

One run (module fixture) serves every test: ingest with a venue that goes down
(``synthetic:alpha``), one that lags (``synthetic:beta``) and one that emits outliers and
duplicates (``synthetic:gamma``); the worker is killed after a while and restarted; ingest
stops; the worker drains and stops; finally ``rebuild`` replays raw and status into other
topics and verifies them record by record against the live ones.
"""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from arbitration.rebuild import RebuildReport, rebuild
from runtime.kafka import make_consumer, topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas import Candle, Quote, RawTick, Rejected, Trade
from schemas.books import ConsolidatedBook
from schemas.times import TIMEFRAMES
from tests.support import service_env, spawn
from tests.support_engine import repeated_output_keys
from tests.support_kafka import read_topic

FAULTS = ("synthetic:alpha=down", "synthetic:beta=lag", "synthetic:gamma=outliers+duplicates")


async def end_offsets(settings: Settings, role: str) -> dict:
    partitions = await topic_partitions(settings, settings.topic(role))
    consumer = make_consumer(settings, "fiml-tests")
    await consumer.start()
    try:
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()


async def wait_until_quiet(settings: Settings, quiet: float, within: float) -> None:
    """Wait until no output topic grew for ``quiet`` seconds."""
    deadline = time.monotonic() + within
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        roles = ("quotes", "candles", "ticks.dlq", "books.consolidated")
        now = [await end_offsets(settings, role) for role in roles]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the worker never went quiet")


@dataclasses.dataclass
class Run:
    settings: Settings
    report: RebuildReport
    restart_log: str
    raw: list[RawTick]
    quotes: list[Quote]
    candles: list[Candle]
    trades: list[Trade]
    dlq: list[Rejected]
    books: list[tuple]


@pytest.fixture(scope="module")
async def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    logs: Path = tmp_path_factory.mktemp("arbitration")
    settings = Settings.from_env(
        {},
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"test-{uuid.uuid4().hex[:10]}",
        partitions=3,
        symbols=("AAPL", "BTC/USDT", "ETH/USDT", "MSFT"),
        synthetic_faults=FAULTS,
        synthetic_tick_hz=10.0,
    )
    await create_topics(settings)
    env = service_env(settings)
    ingest = spawn(["ingest"], env, logs / "ingest.log")
    worker = spawn(["arbitrate"], env, logs / "arbitrate-1.log")
    try:
        await asyncio.sleep(14)
        worker.kill()
        worker.wait()
        await asyncio.sleep(3)
        worker = spawn(["arbitrate"], env, logs / "arbitrate-2.log")
        await asyncio.sleep(12)
        stop_process(ingest)
        await wait_until_quiet(settings, quiet=4, within=60)
    finally:
        stop_process(ingest)
        stop_process(worker)
    for name in ("ingest", "arbitrate-2"):
        log = (logs / f"{name}.log").read_text(errors="replace")
        assert "Traceback" not in log, f"{name} logged an exception:\n{log[-3000:]}"
    report = await rebuild(settings, f"{settings.topic_prefix}-rebuilt", verify=True)
    return Run(
        settings,
        report,
        (logs / "arbitrate-2.log").read_text(errors="replace"),
        [t for _, _, t in await read_topic(settings, "ticks.raw", RawTick)],
        [q for _, _, q in await read_topic(settings, "quotes", Quote)],
        [c for _, _, c in await read_topic(settings, "candles", Candle)],
        [t for _, _, t in await read_topic(settings, "trades", Trade)],
        [r for _, _, r in await read_topic(settings, "ticks.dlq", Rejected)],
        await read_topic(settings, "books.consolidated", ConsolidatedBook),
    )


def test_the_faults_happened_and_were_rejected(run: Run):
    reasons = Counter(r.reason for r in run.dlq)
    assert reasons["outlier"] > 10 and reasons["duplicate"] > 10, reasons
    assert {r.provider for r in run.dlq if r.reason in ("outlier", "duplicate")} == {
        "synthetic:gamma"
    }
    lagging = [t.ts_ingest - t.ts_event for t in run.raw if t.provider == "synthetic:beta"]
    assert statistics.median(lagging) > 1_400_000


def test_no_bad_tick_reached_the_quotes(run: Run):
    by_symbol = defaultdict(list)
    for t in run.raw:
        if t.kind == "QUOTE":
            by_symbol[t.symbol].append(t)

    def off_market(symbol: str, ts_event: int, price: float) -> bool:
        nearby = [t.price for t in by_symbol[symbol] if abs(t.ts_event - ts_event) < 1_000_000]
        return abs(price / statistics.median(nearby) - 1) > 0.01

    injected = [
        t
        for t in run.raw
        if t.kind == "QUOTE"
        and t.provider == "synthetic:gamma"
        and off_market(t.symbol, t.ts_event, t.price)
    ]
    assert len(injected) > 5, "the outlier fault did not show in the raw log"
    assert len(run.quotes) > 500
    assert [q for q in run.quotes if off_market(q.symbol, q.ts_event, q.price)] == []
    refused = {(r.provider, r.symbol, r.ts_event) for r in run.dlq}
    assert all((t.provider, t.symbol, t.ts_event) in refused for t in injected)


def test_the_quote_fails_over_while_the_best_venue_is_down(run: Run):
    drivers = Counter(q.provider for q in run.quotes)
    assert drivers["synthetic:alpha"] > 0, drivers
    without_alpha = [q for q in run.quotes if "synthetic:alpha" not in q.providers]
    assert len(without_alpha) > 50, "the down fault never took alpha out"
    assert {q.provider for q in without_alpha} <= {"synthetic:beta", "synthetic:gamma"}


def test_every_closed_candle_matches_a_recomputation_from_the_quotes(run: Run):
    by_symbol = defaultdict(list)
    for q in run.quotes:
        by_symbol[q.symbol].append((q.ts_event, q.seq, q.price))
    closed = [c for c in run.candles if c.is_closed]
    assert {c.timeframe for c in closed} >= {"1s"} and len(closed) > 50
    for c in closed:
        end = c.open_time + TIMEFRAMES[c.timeframe]
        inside = sorted(p for p in by_symbol[c.symbol] if c.open_time <= p[0] < end)
        assert inside, c
        assert (c.open, c.close) == (inside[0][2], inside[-1][2]), c
        assert (c.high, c.low) == (max(p[2] for p in inside), min(p[2] for p in inside)), c
        volume = sum(
            t.amount for t in run.trades if t.symbol == c.symbol and c.open_time <= t.ts_event < end
        )
        assert c.volume == pytest.approx(volume, rel=1e-9, abs=1e-9)


def test_the_worker_rebuilt_its_state_after_sigkill(run: Run):
    assert "state rebuilt from" in run.restart_log
    rebuilt = [
        int(line.split("state rebuilt from ")[1].split()[0])
        for line in run.restart_log.splitlines()
        if "state rebuilt from" in line
    ]
    assert sum(rebuilt) > 0


def test_no_output_key_was_written_twice(run: Run):
    repeated = repeated_output_keys(run.quotes, run.candles, run.trades, run.dlq)
    assert repeated == dict.fromkeys(repeated, 0)


def test_the_rebuild_from_raw_equals_the_live_topics(run: Run):
    report = run.report
    assert report.ok, report.summary()
    assert report.records == len(run.raw)
    for role in ("quotes", "candles", "trades", "ticks.dlq", "books.consolidated"):
        assert report.comparison[role].matched > 0, report.summary()


def test_consolidated_books_come_from_every_venue_once_per_slot(run: Run):
    books = [b for _, _, b in run.books]
    symbols = {"BTC/USDT", "ETH/USDT"}
    assert {b.symbol for b in books} == symbols
    venues = {venue for book in books for venue in book.venues}
    assert venues == {"synthetic:alpha", "synthetic:beta", "synthetic:gamma"}
    assert any(len(book.venues) >= 2 and book.bids and book.asks for book in books)
    for symbol in symbols:
        mine = [(partition, b.seq) for partition, _, b in run.books if b.symbol == symbol]
        assert len({partition for partition, _ in mine}) == 1
        seqs = [seq for _, seq in mine]
        assert len(set(seqs)) == len(seqs), "one book per symbol per slot, never twice"


def test_fiml_rebuild_command_verifies(run: Run, tmp_path: Path):
    env = service_env(run.settings)
    log = tmp_path / "rebuild.log"
    process = spawn(
        ["rebuild", "--prefix", f"{run.settings.topic_prefix}-cli", "--verify"], env, log
    )
    assert process.wait(120) == 0, log.read_text()
    output = log.read_text()
    assert "verify: OK" in output and "verify quotes:" in output
