"""Helpers of the integration tests: child services, topic reading, process scans."""

from __future__ import annotations

import asyncio
import inspect
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from runtime.kafka import make_consumer, topic_partitions
from runtime.processes import die_with_parent
from runtime.settings import Settings
from schemas import DecodeError, ProviderStatus, RawTick, decode


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a child process that should see exactly ``settings``."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    return {**env, **settings.to_env(), **extra}


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start ``python -m fiml <args>``; it dies with the test process."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fiml", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=die_with_parent(),
        )


def wait_for_port(port: int, timeout: float, host: str = "127.0.0.1") -> None:
    """Block until something listens on ``host:port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"nothing listened on {host}:{port} after {timeout} s")


async def read_topic(
    settings: Settings, role: str, record_type: type, strict: bool = True
) -> list[tuple]:
    """Every record of a topic up to its current end: (partition, offset, decoded record);
    unless ``strict``, those that do not decode are left out."""
    topic = settings.topic(role)
    partitions = await topic_partitions(settings, topic)
    consumer = make_consumer(settings, "fiml-tests")
    await consumer.start()
    try:
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        await consumer.seek_to_beginning(*partitions)
        found = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for tp, records in batches.items():
                for record in records:
                    if record.offset < ends[tp]:
                        try:
                            value = decode(record.value, record_type)
                        except DecodeError:
                            if strict:
                                raise
                            continue
                        found.append((tp.partition, record.offset, value))
            for tp in list(pending):  # every one: records deleted meanwhile return no batch
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return found
    finally:
        await consumer.stop()


async def expire_oldest(settings: Settings, role: str) -> None:
    """Delete the first record of every partition holding two or more, as retention would."""
    partitions = await topic_partitions(settings, settings.topic(role))
    consumer = make_consumer(settings, "fiml-tests")
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.delete_records(
            {tp: RecordsToDelete(before_offset=1) for tp in partitions if ends[tp] >= 2}
        )
    finally:
        await admin.close()


def processes_with_env(marker: str) -> list[int]:
    """Ids of live processes (other than this one) whose environment contains ``marker``."""
    needle = marker.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


Records = list[RawTick | ProviderStatus]


def has_tick(records: Records) -> bool:
    """Whether a provider has produced at least one tick."""
    return any(isinstance(record, RawTick) for record in records)


async def run_provider_until(
    provider, done: Callable[[Records], bool], limit_s: float = 10.0
) -> Records:
    """Run ``provider`` until ``done(records)`` holds; fail if that takes over ``limit_s``."""
    records: Records = []
    stop = asyncio.Event()

    async def emit(batch: Records) -> None:
        records.extend(batch)
        if done(records):
            stop.set()

    await asyncio.wait_for(provider.run(emit, stop), limit_s)
    return records


async def poll_until(
    predicate: Callable[[], bool | Awaitable[bool]], within: float, interval: float = 0.2
) -> None:
    """Wait until ``predicate()`` (or what it returns, if awaitable) holds; fail after
    ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        held = predicate()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(interval)


async def worst_loop_stall(samples: int = 50, period: float = 0.01) -> float:
    """The longest extra delay, in seconds, of ``samples`` short sleeps on this event loop:
    how long something else kept the loop from running."""
    loop = asyncio.get_running_loop()
    worst = 0.0
    for _ in range(samples):
        before = loop.time()
        await asyncio.sleep(period)
        worst = max(worst, loop.time() - before - period)
    return worst
