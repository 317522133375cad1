"""At-least-once in arbitration on the real broker: for a while every produce request to the
output topics fails (their ``max.message.bytes`` is set below any record's size, so the
broker refuses each batch), under a steady stream of ticks, then the topics are fixed.

Meanwhile the worker's committed input offsets are sampled with the output partitions' end
offsets. Afterwards ``rebuild --verify`` must find the live outputs identical to a replay of
the raw log (no gap, no duplicate), and at every sample each committed offset must have had
all of its outputs in the log already: the outputs of the raw offsets before a committed
offset are the first records of each output partition, so their number may not exceed the
partition's end offset at the time.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from arbitration.engine.partition import ROLES
from arbitration.rebuild import read_stored, rebuild
from runtime.kafka import make_consumer, topic_partitions
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from runtime.topics import topic_configs
from tests.support import poll_until, service_env, spawn

OUTPUTS = tuple(ROLES.values())
FAULT_SECONDS = 12.0
STALL_SECONDS = 3.0


async def refuse_outputs(settings: Settings, refuse: bool) -> None:
    """Make the broker refuse every batch sent to the output topics (a record size limit of
    64 bytes), or accept them again (their configuration as created)."""
    specs = settings.topics()
    limit = {"max.message.bytes": "64"} if refuse else {}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        responses = await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC,
                    specs[role].name,
                    configs={**topic_configs(specs[role]), **limit},
                )
                for role in OUTPUTS
            ]
        )
    finally:
        await admin.close()
    assert all(error == 0 for response in responses for error, *_ in response.resources)


@dataclasses.dataclass
class Sample:
    """The worker's committed raw offsets, then the end offset of every output partition."""

    committed: dict[int, int]
    ends: dict[tuple[str, int], int]


async def take_samples(settings: Settings, group: str, samples: list[Sample]) -> None:
    """Sample until cancelled: committed offsets first, output end offsets after them."""
    raw = await topic_partitions(settings, settings.topic("ticks.raw"))
    outputs = [
        tp for role in OUTPUTS for tp in await topic_partitions(settings, settings.topic(role))
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    consumer = make_consumer(settings, "fiml-tests")
    await admin.start()
    await consumer.start()
    try:
        while True:
            offsets = await admin.list_consumer_group_offsets(group, partitions=raw)
            committed = {
                tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0
            }
            ends = await consumer.end_offsets(outputs)
            samples.append(
                Sample(committed, {(tp.topic, tp.partition): end for tp, end in ends.items()})
            )
            await asyncio.sleep(0.3)
    finally:
        await consumer.stop()
        await admin.close()


async def health(url: str) -> int | None:
    async with httpx.AsyncClient(timeout=2.0) as client:
        try:
            return (await client.get(url)).status_code
        except httpx.TransportError:
            return None


async def test_failed_sends_hold_the_commit_and_lose_or_repeat_no_output(topics, tmp_path):
    health_port = free_port()
    settings = dataclasses.replace(
        topics,
        symbols=("AAPL", "MSFT", "BTC/USDT"),
        synthetic_tick_hz=20.0,
        consumer_stall_seconds=STALL_SECONDS,
    )
    group = f"{settings.topic_prefix}-arbitration"  # the worker's consumer group
    env = service_env(settings)
    ingest = spawn(["ingest"], env, tmp_path / "ingest.log")
    worker = spawn(
        ["arbitrate"], {**env, "FIML_HEALTH_PORT": str(health_port)}, tmp_path / "arbitrate.log"
    )
    healthz = f"http://127.0.0.1:{health_port}/healthz"
    samples: list[Sample] = []
    sampler = None
    try:
        sampler = asyncio.create_task(take_samples(settings, group, samples))
        await poll_until(
            lambda: len(samples) > 3 and sum(samples[-1].committed.values()) > 0, within=90
        )
        assert await health(healthz) == 200
        await refuse_outputs(settings, True)
        began, codes = time.monotonic(), []
        while time.monotonic() - began < FAULT_SECONDS:
            codes.append(await health(healthz))
            await asyncio.sleep(0.3)
        await refuse_outputs(settings, False)
        fixed = time.monotonic()
        while (code := await health(healthz)) != 200:
            assert time.monotonic() - fixed < 60, f"/healthz still answers {code}"
            await asyncio.sleep(0.3)
        await asyncio.sleep(3)
        stop_process(ingest)
        settled = len(samples)
        await poll_until(
            lambda: len(samples) > settled + 10 and samples[-1] == samples[-10], within=60
        )
    finally:
        if sampler is not None:
            sampler.cancel()
        stop_process(ingest)
        stop_process(worker)
    report = await rebuild(settings, f"{settings.topic_prefix}-rebuilt", verify=True)
    assert report.ok, report.summary()
    assert report.written["quotes"] > 100
    target = dataclasses.replace(settings, topic_prefix=f"{settings.topic_prefix}-rebuilt")
    markers = {
        (settings.topic(role), p): [marker for _, _, marker in await read_stored(target, role, p)]
        for role in OUTPUTS
        for p in range(settings.partitions)
    }
    for where, found in markers.items():
        assert len(found) == len(set(found)), f"a duplicate output in {where}"
    checked = 0
    for sample in samples:
        for (topic, partition), found in markers.items():
            committed = sample.committed.get(partition)
            if committed is None:
                continue
            needed = sum(1 for marker in found if marker[0] < committed)
            assert needed <= sample.ends[(topic, partition)], (
                f"offset {committed} of raw partition {partition} was committed before "
                f"its outputs in {topic} were written"
            )
            checked += needed > 0
    assert checked > 0
    assert 503 in codes, f"/healthz never failed while no output was delivered: {codes}"
    log = (tmp_path / "arbitrate.log").read_text(errors="replace")
    assert "not acknowledged" in log, "no send failed: the fault did not happen"
