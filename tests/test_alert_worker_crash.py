"""The alerts agent killed mid-stream on the real broker: ``fiml alerts evaluate`` (its own
process) evaluates many rules over quotes the test writes round after round, is killed with SIGKILL
as soon as its first alerts show in ``alerts.fired`` (while it is writing them), and is
restarted; every alert the rules fire on those quotes is then in ``alerts.fired`` exactly
once, and ``fiml alerts webhooks`` (its own process) delivers each once to a receiver on
127.0.0.1, signed with the rule's secret."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator

from arbitration.alert_checkpoints import decode as decode_checkpoint
from domain.alerts.backtest import backtest
from domain.alerts.delivery import rule_secret, verify
from domain.alerts.firing import Source
from runtime.clock import now_micros
from runtime.kafka import make_consumer, topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from schemas.alerts import AlertRule, FiredAlert
from tests.support import poll, poll_until, service_env, spawn
from tests.support_alerts import SECOND, quote
from tests.support_kafka import producing, read_topic
from tests.support_webhooks import serving_receiver

SYMBOLS = [f"K{i:02d}" for i in range(20)]
RULES_PER_SYMBOL = 3
ROUNDS = 11  # prices 90, 110, 90, ...: every round after the first crosses 100
SECRET = "crash-test-webhook-secret"


def rules_of(created_at: int, hook: str) -> list[AlertRule]:
    """``crosses 100`` rules, ``RULES_PER_SYMBOL`` a symbol, each of an owner of its own (so
    the per-owner webhook rate limit's burst covers its ``ROUNDS - 1`` alerts)."""
    return [
        AlertRule(
            f"r_{symbol}_{n}",
            f"owner-{symbol}-{n}",
            "crosses",
            "repeat",
            0,
            created_at,
            [symbol],
            [],
            level=100.0,
            webhook_url=f"{hook}/ok",
        )
        for symbol in SYMBOLS
        for n in range(RULES_PER_SYMBOL)
    ]


@contextlib.asynccontextmanager
async def following(settings: Settings, role: str) -> AsyncIterator[list[str]]:
    """The keys of the records of a topic, from its start, gathered while the block runs."""
    keys: list[str] = []
    consumer = make_consumer(settings, "fiml-tests")
    await consumer.start()
    partitions = await topic_partitions(settings, settings.topic(role))
    consumer.assign(partitions)
    await consumer.seek_to_beginning(*partitions)

    async def gather() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=50)
            keys.extend(r.key.decode() for records in batches.values() for r in records)

    task = asyncio.create_task(gather())
    try:
        yield keys
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await consumer.stop()


async def uncovered(settings: Settings) -> int:
    """Alerts in ``alerts.fired`` past what the partitions' last checkpoints cover."""
    ends: dict[int, int] = Counter()
    for partition, offset, _ in await read_topic(settings, "alerts.fired", FiredAlert):
        ends[partition] = max(ends[partition], offset + 1)
    covered: dict[int, int] = {}
    consumer = make_consumer(settings, "fiml-tests")
    await consumer.start()
    try:
        partitions = await topic_partitions(settings, settings.topic("alerts.state"))
        consumer.assign(partitions)
        last = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        while [tp for tp in partitions if await consumer.position(tp) < last[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.value is not None:
                        checkpoint = decode_checkpoint(record.value)
                        covered[int(record.key)] = checkpoint.fired_next
    finally:
        await consumer.stop()
    return sum(max(0, end - covered.get(partition, 0)) for partition, end in ends.items())


async def test_a_worker_killed_while_writing_alerts_delivers_each_once(topics, tmp_path):
    settings = dataclasses.replace(topics, alert_webhook_secret=SECRET)
    health, hooks_health = free_port(), free_port()
    env = service_env(settings, FIML_HEALTH_PORT=str(health))
    log = tmp_path / "alerts.log"
    start = now_micros()
    processes = []
    async with (
        serving_receiver() as (receiver, hook),
        producing(settings) as producer,
        following(settings, "alerts.fired") as seen,
    ):
        rules = rules_of(start - SECOND, hook)
        for rule in rules:
            await producer.send("alerts.rules", rule, key=rule.rule_id.encode())
        await producer.flush()
        try:
            hooks_env = service_env(settings, FIML_HEALTH_PORT=str(hooks_health))
            processes.append(spawn(["alerts", "webhooks"], hooks_env, tmp_path / "webhooks.log"))
            worker = spawn(["alerts", "evaluate"], env, log)
            processes.append(worker)
            await poll(f"http://127.0.0.1:{health}/readyz", within=40, process=worker)
            await poll(f"http://127.0.0.1:{hooks_health}/readyz", within=20)

            written: dict[str, list[tuple[Source, object]]] = {s: [] for s in SYMBOLS}
            killed_at = None
            for step in range(ROUNDS):
                records = [quote(s, start + step * SECOND, 90 + 20 * (step % 2)) for s in SYMBOLS]
                for record, meta in zip(
                    records, await producer.write("quotes", records), strict=True
                ):
                    source = Source(meta.topic, meta.partition, meta.offset)
                    written[record.symbol].append((source, record))
                if killed_at is None and step >= 2:  # the first alerts are on their way
                    await poll_until(lambda: bool(seen), within=30, interval=0.005)
                    os.kill(worker.pid, signal.SIGKILL)  # while it writes the alerts
                    worker.wait()
                    killed_at = len(seen)
                await asyncio.sleep(0.1)
            expected = {
                alert.alert_id
                for rule in rules
                for alert in backtest(rule, written[rule.symbols[0]])
            }
            assert len(expected) == len(rules) * (ROUNDS - 1)
            assert killed_at is not None and 0 < killed_at < len(expected)
            past_checkpoint = await uncovered(settings)
            print(f"killed after {killed_at} alerts; {past_checkpoint} past the checkpoints")

            processes.append(spawn(["alerts", "evaluate"], env, log))
            await poll_until(lambda: set(seen) >= expected, within=60)
            await asyncio.sleep(1.0)  # a few checkpoint periods, for any repeat to show
            fired = await read_topic(settings, "alerts.fired", FiredAlert)
            ids = Counter(alert.alert_id for _, _, alert in fired)
            assert set(ids) == expected
            assert [i for i, n in ids.items() if n > 1] == []

            await poll_until(lambda: len(receiver.received) >= len(expected), within=30)
            await asyncio.sleep(0.5)
            delivered = Counter(headers["x-fiml-alert-id"] for _, headers, _ in receiver.received)
            assert set(delivered) == expected
            assert [i for i, n in delivered.items() if n > 1] == []
            by_id = {alert.alert_id: alert for _, _, alert in fired}
            for _, headers, body in receiver.received:
                secret = rule_secret(SECRET.encode(), by_id[headers["x-fiml-alert-id"]].rule_id)
                assert verify(secret, body, headers["x-fiml-signature"], int(time.time()))
        finally:
            for process in processes:
                stop_process(process)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]
