"""What every benchmark shares: a broker to run on, and reporting the result."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from runtime.kafka import make_consumer, make_producer, topic_partitions
from runtime.processes import die_with_parent
from runtime.settings import Settings
from runtime.testing import temporary_broker

ROOT = Path(__file__).resolve().parent.parent

Measure = Callable[[str, int, Path], Awaitable[dict]]


@contextlib.contextmanager
def broker(tmp: Path) -> Iterator[str]:
    """The bootstrap address of FIML_KAFKA_BOOTSTRAP, or of a local broker started here."""
    if os.environ.get("FIML_KAFKA_BOOTSTRAP"):
        yield os.environ["FIML_KAFKA_BOOTSTRAP"]
        return
    with temporary_broker(tmp / "broker") as bootstrap:
        yield bootstrap


@contextlib.asynccontextmanager
async def bare_clients(
    settings: Settings, role: str
) -> AsyncIterator[tuple[AIOKafkaConsumer, AIOKafkaProducer]]:
    """A consumer of every partition of the ``role`` topic from its beginning and a producer,
    for a bare aiokafka baseline; both stopped afterwards."""
    partitions = await topic_partitions(settings, settings.topic(role))
    consumer = make_consumer(settings, "bench-bare", max_partition_fetch_bytes=4 << 20)
    producer = make_producer(settings, "bench-bare")
    await consumer.start()
    await producer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        yield consumer, producer
    finally:
        await consumer.stop()
        await producer.stop()


def run_and_report(measure: Measure, count: int, out: Path | None) -> None:
    """Run ``measure(bootstrap, count, tmp)`` on a broker, print its JSON, save it to ``out``."""
    with tempfile.TemporaryDirectory() as tmp, broker(Path(tmp)) as bootstrap:
        result = asyncio.run(measure(bootstrap, count, Path(tmp)))
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")


def run_facts() -> dict[str, str]:
    """The first fields of every result: today's date (UTC) and what machine this is."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}",
    }


def raise_open_files() -> int:
    """Raise this process's soft limit of open files to the hard limit; return it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _prepare_child(die: Callable[[], None] | None) -> None:
    if die is not None:
        die()
    raise_open_files()


def spawn_service(settings: Settings, command: str, log: Path, **env: str) -> subprocess.Popen:
    """``python -m fiml <command>`` (words split on spaces) on exactly ``settings`` (plus
    ``env``), logging to
    ``log``; it may open as many files as the hard limit allows and dies with this process."""
    child_env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    child_env.update(settings.to_env(), **env)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "fiml", *command.split()],
            env=child_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            preexec_fn=functools.partial(_prepare_child, die_with_parent()),
        )


async def end_offsets(settings: Settings, partitions: list[TopicPartition]) -> int:
    """Sum of the end offsets of ``partitions``: records written so far."""
    consumer = make_consumer(settings, "bench-probe")
    await consumer.start()
    try:
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process so far, all its threads (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int) -> int:
    """Resident memory of a live process (Linux ``/proc``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise ProcessLookupError(pid)


def percentiles(
    values: Sequence[float], points: Sequence[float] = (50, 99, 99.9)
) -> dict[str, float | None]:
    """Nearest-rank percentiles of ``values``, keyed ``p50``, ``p99``, ``p99_9``; None when
    there are no values."""
    ordered = sorted(values)
    result: dict[str, float | None] = {}
    for point in points:
        key = "p" + f"{point:g}".replace(".", "_")
        if not ordered:
            result[key] = None
            continue
        rank = max(1, -(-len(ordered) * point // 100))
        result[key] = round(ordered[int(rank) - 1], 3)
    return result
