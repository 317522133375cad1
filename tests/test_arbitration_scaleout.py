"""Arbitration scaled out on the real broker: two worker processes in one consumer group share
the raw partitions, a second joins mid-stream and the first is then killed with SIGKILL; the
outputs must still equal ``fiml rebuild --verify`` of the same log, with no gap and no
duplicate key.

One run (module fixture) serves every test: ingest (synthetic market) and worker A start;
worker B joins after a while, so the group rebalances and the two share the partitions; A
is then killed (SIGKILL), so after the session timeout B takes A's partitions and restores
their state; ingest stops, B drains and stops; ``rebuild`` replays the log and verifies.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import uuid
from pathlib import Path

import pytest

from arbitration.rebuild import RebuildReport, rebuild
from runtime.kafka import make_consumer, topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.topics import create_topics
from schemas import Candle, Quote, RawTick, Rejected, Trade
from tests.support import poll_until, service_env, spawn
from tests.support_engine import repeated_output_keys
from tests.support_kafka import read_topic

PARTITIONS = 4
RESTORED = re.compile(r"partition (\d+): state rebuilt from")


@dataclasses.dataclass
class Run:
    settings: Settings
    report: RebuildReport
    a_partitions: set[int]
    b_before_kill: set[int]
    b_after_kill: set[int]
    b_log: str
    committed: dict[int, int]
    raw_ends: dict[int, int]
    raw: int
    quotes: list[Quote]
    candles: list[Candle]
    trades: list[Trade]
    dlq: list[Rejected]


def restored(log: str) -> set[int]:
    """The raw partitions whose state a worker's log says it restored."""
    return {int(partition) for partition in RESTORED.findall(log)}


async def raw_offsets(settings: Settings) -> tuple[dict[int, int], dict[int, int]]:
    """The raw topic's end offsets and the arbitration group's committed offsets."""
    partitions = await topic_partitions(settings, settings.topic("ticks.raw"))
    consumer = make_consumer(
        settings, "fiml-tests", group_id=f"{settings.topic_prefix}-arbitration"
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        committed = {tp.partition: await consumer.committed(tp) or 0 for tp in partitions}
        return {tp.partition: end for tp, end in ends.items()}, committed
    finally:
        await consumer.stop()


@pytest.fixture(scope="module")
async def run(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Run:
    logs: Path = tmp_path_factory.mktemp("scaleout")
    settings = Settings.from_env(
        {},
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"test-{uuid.uuid4().hex[:10]}",
        partitions=PARTITIONS,
        symbols=("AAPL", "MSFT", "NVDA", "BTC/USDT", "ETH/USDT", "SOL/USDT"),
        synthetic_tick_hz=20.0,
    )
    await create_topics(settings)
    env = service_env(settings)
    ingest = spawn(["ingest"], env, logs / "ingest.log")
    a = spawn(["arbitrate"], env, logs / "arbitrate-a.log")
    b = None
    try:
        await poll_until(
            lambda: len(restored((logs / "arbitrate-a.log").read_text())) == PARTITIONS, 60
        )
        b = spawn(["arbitrate"], env, logs / "arbitrate-b.log")
        # B gets its share once the group rebalanced, and restores it from the log.
        await poll_until(lambda: restored((logs / "arbitrate-b.log").read_text()), 60)
        await asyncio.sleep(4)
        assert a.poll() is None, "worker A stopped by itself"
        a.kill()
        a.wait()
        b_before_kill = restored((logs / "arbitrate-b.log").read_text())
        # After the session timeout (10 s) B takes A's partitions too.
        await poll_until(
            lambda: len(restored((logs / "arbitrate-b.log").read_text())) == PARTITIONS, 60
        )
        await asyncio.sleep(3)
        stop_process(ingest)
        ends, committed = await raw_offsets(settings)

        async def drained() -> bool:
            nonlocal ends, committed
            ends, committed = await raw_offsets(settings)
            return committed == ends

        await poll_until(drained, 60)
    finally:
        stop_process(ingest)
        if b is not None:
            stop_process(b)
        if a.poll() is None:
            a.kill()
            a.wait()
    b_log = (logs / "arbitrate-b.log").read_text(errors="replace")
    assert "Traceback" not in b_log, f"worker B logged an exception:\n{b_log[-3000:]}"
    report = await rebuild(settings, f"{settings.topic_prefix}-rebuilt", verify=True)
    return Run(
        settings,
        report,
        restored((logs / "arbitrate-a.log").read_text(errors="replace")),
        b_before_kill,
        restored(b_log),
        b_log,
        committed,
        ends,
        len(await read_topic(settings, "ticks.raw", RawTick)),
        [q for _, _, q in await read_topic(settings, "quotes", Quote)],
        [c for _, _, c in await read_topic(settings, "candles", Candle)],
        [t for _, _, t in await read_topic(settings, "trades", Trade)],
        [r for _, _, r in await read_topic(settings, "ticks.dlq", Rejected)],
    )


def test_the_second_worker_shared_the_partitions_then_took_them_all(run: Run):
    assert run.a_partitions == set(range(PARTITIONS))
    assert run.b_before_kill, "B never got a partition while A ran"
    assert run.b_before_kill < set(range(PARTITIONS)), "A kept no partition after B joined"
    assert run.b_after_kill == set(range(PARTITIONS))


def test_every_raw_record_was_committed(run: Run):
    assert run.committed == run.raw_ends
    assert sum(run.raw_ends.values()) == run.raw > 0


def test_no_output_key_was_written_twice(run: Run):
    repeated = repeated_output_keys(run.quotes, run.candles, run.trades, run.dlq)
    assert repeated == dict.fromkeys(repeated, 0)


def test_the_outputs_equal_the_rebuild_of_the_log(run: Run):
    report = run.report
    assert report.ok, report.summary()
    assert report.records == run.raw
    for role in ("quotes", "candles", "trades"):
        assert report.comparison[role].matched > 0, report.summary()
