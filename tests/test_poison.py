"""Nothing a producer writes stops a service: every kind of record that is not ours, written
to every topic of a running system (ingest, arbitration, the alerts worker and gateway as
processes on the real broker), then again after every service restarted on that data.

Each topic gets a tombstone, an empty value, a wrong magic byte, random bytes, an unknown
schema id, a record of another type, a truncated and a corrupt record, an oversize value,
and a record that decodes but makes no sense to its consumer. Then ticks of a symbol nobody
served before must come out as quotes, in the topic and to a WebSocket client; every service
must still be up, each poison record counted by the services that read its topic, and the
raw ones in the DLQ with their reason, once each. Before the restart the snapshot topic gets
its own poison, which the restarted worker must count and ignore (rebuilding from the log).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import subprocess
import time
import zlib
from collections import Counter
from pathlib import Path

import httpx
import websockets

from arbitration.engine.partition import MAX_KEPT_BYTES
from arbitration.snapshots import FORMAT, MAX_STATE_BYTES
from fiml.supervisor import ALERTS, COMMANDS
from runtime.clock import now_micros
from runtime.processes import stop_process
from runtime.settings import Settings
from runtime.testing import free_port
from schemas import (
    Candle,
    Demand,
    ProviderStatus,
    Quote,
    RawTick,
    Rejected,
    Trade,
    encode,
)
from schemas.codec import REASONS
from tests.factories import BASE_US
from tests.support import SERVICE_START_TIMEOUT, Samples, poll, scrape, service_env, spawn
from tests.support_kafka import Entry, produce, producing, read_topic
from tests.support_poison import poison_values, reason_of

FAR = 2**62  # a time no date can show
VALID = {
    RawTick: RawTick("AAPL", "test:a", "QUOTE", BASE_US, BASE_US + 10, 1, 100.0),
    ProviderStatus: ProviderStatus("test:a", BASE_US, "UP"),
    Demand: Demand("AAPL", "gw-poison", 1, BASE_US, 60.0),
    Quote: Quote("AAPL", BASE_US, BASE_US, 1, 100.0, "test:a", 0.9),
    Candle: Candle("AAPL", "1m", BASE_US, 1.0, 2.0, 0.5, 1.5, 1.0, False, 1, 1),
    Trade: Trade("AAPL", "t-1", "test:a", BASE_US, BASE_US, 100.0, 1.0),
}
SENSELESS = {
    RawTick: RawTick("AAPL", "test:a", "QUOTE", BASE_US, BASE_US + 10, 2, math.nan),
    ProviderStatus: ProviderStatus("test:a", FAR, "DOWN"),
    Demand: Demand("AAPL", "gw-poison", -5, BASE_US, 60.0),
    Quote: Quote("AAPL", FAR, BASE_US, 2, 100.0, "test:a", 0.9),
    Candle: Candle("AAPL", "1m", FAR, 1.0, 2.0, 0.5, 1.5, 1.0, False, 1, 2),
    Trade: Trade("AAPL", "t-2", "test:a", FAR, BASE_US, 100.0, 1.0),
}
TOPICS = {
    "ticks.raw": RawTick,
    "provider.status": ProviderStatus,
    "demand": Demand,
    "quotes": Quote,
    "candles": Candle,
    "trades": Trade,
}
# Which service reads which topic and so counts its poison ("invalid": the senseless record).
READERS = {
    "ticks.raw": {"arbitrate": False},
    "provider.status": {"arbitrate": False, "gateway": True},
    "demand": {"ingest": True},
    "quotes": {"gateway": True},
    "candles": {"gateway": True},
    "trades": {"gateway": True},
}

# The alerts worker reads these too, and counts their poison in its own process; after a
# restart it resumes after the poison it has done with.
ALERTS_AGENT_READS = ("provider.status", "quotes", "candles")

# After a restart arbitration resumes after the raw poison it has done with, while ingest's
# synthetic provider reads the raw topic's tail to continue the market where it was.
RESTART_READERS = {**READERS, "ticks.raw": {"ingest": False}}


def poison(record_type: type) -> list[bytes | None]:
    """Every kind of value that is not a ``record_type`` of ours."""
    return poison_values(VALID[record_type], VALID[Trade if record_type is not Trade else Quote])


def expected_skips(role: str) -> Counter[str]:
    """The reasons a reader of ``role`` skips its poison for, with how many of each."""
    reasons = Counter(reason_of(v, TOPICS[role]) for v in poison(TOPICS[role]))
    assert set(reasons) == set(REASONS), "every kind of poison is in the list"
    return reasons


SNAPSHOT_POISON = {
    0: (None, "null"),
    1: (b"garbage", "format"),
    2: (FORMAT + zlib.compress(b"\0" * (MAX_STATE_BYTES + 1), 9), "oversize"),
}


@dataclasses.dataclass
class Services:
    """The services as processes, each with its log and health endpoint."""

    settings: Settings
    env: dict[str, dict[str, str]]
    processes: dict[str, subprocess.Popen] = dataclasses.field(default_factory=dict)

    def url(self, command: str, path: str) -> str:
        port = (
            self.settings.gateway_port
            if command == "gateway"
            else self.env[command]["FIML_HEALTH_PORT"]
        )
        return f"http://127.0.0.1:{port}{path}"

    async def start(self, logs: Path, run: int) -> None:
        for command, env in self.env.items():
            self.processes[command] = spawn(
                COMMANDS.get(command, [command]), env, logs / f"{command}-{run}.log"
            )
        for command, process in self.processes.items():
            await poll(self.url(command, "/readyz"), SERVICE_START_TIMEOUT, process)

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process, timeout=60)

    async def all_up(self) -> None:
        for command, process in self.processes.items():
            assert process.poll() is None, f"{command} exited"
            async with httpx.AsyncClient(timeout=5) as client:
                for path in ("/healthz", "/readyz"):
                    answer = await client.get(self.url(command, path))
                    assert answer.status_code == 200, (command, path, answer.text)

    async def skips(self, command: str) -> Samples:
        async with httpx.AsyncClient(timeout=5) as client:
            return await scrape(client, self.url(command, "/metrics"))


async def write(
    settings: Settings, role: str, values: list[tuple[int, bytes, bytes | None]]
) -> dict[tuple[int, int], bytes]:
    """Write (partition, key, value) triples to ``role``; each value by where it went."""
    entries = [Entry(value, key=key, partition=partition) for partition, key, value in values]
    written = await produce(settings, role, entries)
    return {
        (meta.partition, meta.offset): entry.value
        for entry, meta in zip(entries, written, strict=True)
    }


async def poison_every_topic(settings: Settings) -> dict[tuple[int, int], bytes]:
    """Write the poison of every topic, spread over its partitions (keyed, as the compacted
    demand topic requires); the raw values by partition and offset."""
    raw: dict[tuple[int, int], bytes] = {}
    for role, record_type in TOPICS.items():
        values = [*poison(record_type), encode(SENSELESS[record_type])]
        written = await write(
            settings,
            role,
            [
                (n % settings.partitions, f"POISON|{n}".encode(), value)
                for n, value in enumerate(values)
            ],
        )
        if role == "ticks.raw":
            raw = written
    return raw


async def tick_fresh_symbol(settings: Settings, symbol: str) -> None:
    """Quotes of three providers for ``symbol``, in every raw partition, for about 2 s."""
    async with producing(settings) as producer:
        for step in range(20):
            at = now_micros()
            for partition in range(settings.partitions):
                for n, provider in enumerate(("test:a", "test:b", "test:c")):
                    tick = RawTick(
                        symbol,
                        provider,
                        "QUOTE",
                        at - 20_000,
                        at,
                        step,
                        50.0 + step / 100 + n / 1000,
                    )
                    await producer.send("ticks.raw", tick, partition=partition)
            await asyncio.sleep(0.1)
        await producer.flush()


async def quotes_of(settings: Settings, symbol: str, within: float = 45.0) -> None:
    """Wait until the quotes topic and a WebSocket client both have a quote of ``symbol``."""
    url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream"
    async with websockets.connect(url) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "subscribe",
                    "stream_type": "price",
                    "symbols": [symbol],
                    "interval_ms": 100,
                }
            )
        )
        async with asyncio.timeout(within):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] == "data" and any(
                    item["symbol"] == symbol for item in message["data"]
                ):
                    break
    quotes = await read_topic(settings, "quotes", Quote, strict=False)
    assert any(q.symbol == symbol and q.provider.startswith("test:") for _, _, q in quotes)


async def counted(
    services: Services,
    topics: list[str],
    snapshots: bool,
    within: float = 60.0,
    readers: dict[str, dict[str, bool]] = READERS,
    alerts_agent: bool = True,
) -> None:
    """Wait until each service counted the poison of the topics it reads, then check the
    counts are exact: every poison record once, nothing else."""
    settings = services.settings
    expected: dict[str, Counter] = {}
    for role in topics:
        for command, checks in readers[role].items():
            want = expected.setdefault(command, Counter())
            for reason, n in expected_skips(role).items():
                want[(settings.topic(role), reason)] += n
            if checks:
                want[(settings.topic(role), "invalid")] += 1
        if alerts_agent and role in ALERTS_AGENT_READS:
            want = expected.setdefault(ALERTS, Counter())
            for reason, n in expected_skips(role).items():
                want[(settings.topic(role), reason)] += n
    if snapshots:
        for _, reason in SNAPSHOT_POISON.values():
            expected["arbitrate"][(settings.topic("arbitration.state"), reason)] += 1
    deadline = time.monotonic() + within
    for command, want in expected.items():
        while True:
            samples = await services.skips(command)
            have = Counter(
                {
                    (dict(labels)["topic"], dict(labels)["reason"]): int(v)
                    for (name, labels), v in samples.items()
                    if name == "fiml_records_skipped_total"
                }
            )
            if have == want or time.monotonic() > deadline:
                assert have == want, (command, have, want)
                break
            await asyncio.sleep(0.5)


async def dlq_of(settings: Settings, raw: dict[tuple[int, int], bytes]) -> list[Rejected]:
    """The DLQ records of the raw poison."""
    return [
        r
        for _, _, r in await read_topic(settings, "ticks.dlq", Rejected)
        if (r.source_partition, r.source_offset) in raw
    ]


async def test_no_record_stops_a_service_before_or_after_a_restart(topics, tmp_path):
    settings = dataclasses.replace(
        topics,
        gateway_port=free_port(),
        symbols=("AAPL", "BTC/USDT"),
        gateway_warm_records=100_000,
        synthetic_any_symbol=True,  # the fresh symbols the test writes itself are served
    )
    env = service_env(settings)
    services = Services(
        settings,
        {
            "ingest": {**env, "FIML_HEALTH_PORT": str(free_port())},
            "arbitrate": {**env, "FIML_HEALTH_PORT": str(free_port())},
            ALERTS: {**env, "FIML_HEALTH_PORT": str(free_port())},
            "gateway": env,
        },
    )
    try:
        await services.start(tmp_path, 1)
        raw = await poison_every_topic(settings)
        await tick_fresh_symbol(settings, "ZZPZN")
        await quotes_of(settings, "ZZPZN")
        await services.all_up()
        await counted(services, list(TOPICS), snapshots=False)
        rejected = await dlq_of(settings, raw)
        assert len(rejected) == len(raw), "each raw poison record is in the DLQ once"
        for record in rejected:
            value = raw[(record.source_partition, record.source_offset)]
            if value == encode(SENSELESS[RawTick]):
                assert record.reason == "bad_price"
                continue
            assert record.reason == "undecodable"
            assert record.detail.startswith(f"{reason_of(value, RawTick)}: ")
            assert record.original == (value or b"")[:MAX_KEPT_BYTES]

        await write(
            settings,
            "arbitration.state",
            [(p, str(p).encode(), value) for p, (value, _) in SNAPSHOT_POISON.items()],
        )
        services.stop()
        await services.start(tmp_path, 2)
        await tick_fresh_symbol(settings, "ZZPZM")
        await quotes_of(settings, "ZZPZM")
        await services.all_up()
        await counted(
            services, list(TOPICS), snapshots=True, readers=RESTART_READERS, alerts_agent=False
        )
        again = await dlq_of(settings, raw)
        assert sorted(again, key=repr) == sorted(rejected, key=repr), "a DLQ record repeated"
    finally:
        services.stop()
    for log in tmp_path.glob("*.log"):
        assert "Traceback" not in log.read_text(errors="replace"), log.name
