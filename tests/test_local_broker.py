"""``fiml kafka start|status|stop`` and ``fiml topics create`` as a user runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.client import AIOKafkaClient, CoordinationType
from aiokafka.errors import CoordinatorNotAvailableError

from runtime.broker import LocalKafka, new_cluster_id
from runtime.local_tls import write_private
from runtime.processes import pid_alive
from schemas.topics import TopicRole
from tests.support import service_env


def fiml(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "fiml", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


async def coordinates_groups_at_once(bootstrap: str) -> bool:
    """One FindCoordinator request for a new group, no retry."""
    client = AIOKafkaClient(bootstrap_servers=bootstrap)
    await client.bootstrap()
    try:
        await client.coordinator_lookup(CoordinationType.GROUP, "fiml-tests-first-group")
        return True
    except CoordinatorNotAvailableError:
        return False
    finally:
        await client.close()


def test_kafka_start_status_stop(own_broker):
    settings = own_broker
    env = service_env(settings)
    started = fiml("kafka", "start", env=env)
    assert started.returncode == 0, started.stderr
    assert "Kafka ready on 127.0.0.1:" in started.stdout
    pid = int(started.stdout.split("(pid ")[1].split(",")[0])
    try:
        # ready means ready for consumer groups too: no worker's first join is refused
        assert asyncio.run(coordinates_groups_at_once(LocalKafka(settings).bootstrap))
        status = fiml("kafka", "status", env=env)
        assert status.returncode == 0 and f"pid {pid}" in status.stdout
        again = fiml("kafka", "start", env=env)
        assert again.returncode == 1 and "already runs" in again.stderr
    finally:
        stopped = fiml("kafka", "stop", env=env)
    assert stopped.stdout.strip() == "stopped"
    assert not pid_alive(pid)
    status = fiml("kafka", "status", env=env)
    assert status.returncode == 3 and status.stdout.startswith("not running")
    assert fiml("kafka", "stop", env=env).stdout.strip() == "no broker was running"


async def test_topics_create_is_idempotent_with_partitions_and_retention(settings):
    env = service_env(settings)
    first = fiml("topics", "create", env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    roles = len(settings.topics())
    assert first.stdout.count(": created") == roles == len(TopicRole)
    second = fiml("topics", "create", env=env, timeout=60)
    assert second.returncode == 0 and second.stdout.count(": exists") == roles

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        specs = settings.topics()
        described = await admin.describe_topics([spec.name for spec in specs.values()])
        partitions = {entry["topic"]: len(entry["partitions"]) for entry in described}
        assert partitions == {spec.name: settings.partitions for spec in specs.values()}
        responses = await admin.describe_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, specs[role].name)
                for role in ("ticks.raw", "candles", "demand")
            ]
        )
        configs = {}
        for response in responses:
            for _, _, _, name, entries in response.resources:
                configs[name] = {entry[0]: entry[1] for entry in entries}
    finally:
        await admin.close()
    assert configs[specs["ticks.raw"].name]["retention.ms"] == str(specs["ticks.raw"].retention_ms)
    assert configs[specs["candles"].name]["retention.ms"] == str(specs["candles"].retention_ms)
    assert configs[specs["demand"].name]["cleanup.policy"] == "compact"


@pytest.mark.parametrize("variable", ["FIML_PARTITIONS", "FIML_GATEWAY_PORT"])
def test_a_bad_setting_is_named_in_the_error(variable):
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    result = fiml("kafka", "status", env={**env, variable: "many"}, timeout=60)
    assert result.returncode != 0
    assert variable in result.stderr and "'many'" in result.stderr


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    """The storage tool reads an id starting with '-' as an option and refuses to format."""
    dash_first = uuid.UUID(bytes=b"\xf8" + bytes(15))
    plain = uuid.UUID(bytes=bytes(16))
    drawn = iter([dash_first, dash_first, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(drawn))
    cluster_id = new_cluster_id()
    assert cluster_id == "A" * 22
    assert next(drawn, None) is None


def test_a_private_file_replaces_a_readable_one_and_only_its_owner_reads_it(tmp_path):
    path = tmp_path / "server.properties"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "sasl.jaas.config=secret")
    assert path.read_text() == "sasl.jaas.config=secret"
    assert path.stat().st_mode & 0o777 == 0o600
