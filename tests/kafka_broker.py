"""The one real Kafka broker of a test session.

``FIML_KAFKA_BOOTSTRAP`` if set; else testcontainers' Kafka module when a Docker engine
answers; else the project's own local runner on free ports in a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from fiml.local_kafka import LocalKafka
from fiml.processes import stop_process
from fiml.settings import Settings

CONTAINER_IMAGE = "confluentinc/cp-kafka:8.1.0"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def docker_answers() -> bool:
    """Whether a Docker engine answers a ping."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


def local_broker_settings(data_dir: Path) -> Settings:
    """Settings for a broker of its own, on free ports, keeping its data in ``data_dir``."""
    return Settings.from_env(
        {key: value for key, value in os.environ.items() if key != "FIML_KAFKA_BOOTSTRAP"},
        kafka_bootstrap=None, kafka_port=free_port(), kafka_controller_port=free_port(),
        kafka_data_dir=str(data_dir),
    )


@contextlib.contextmanager
def session_broker(tmp_dir: Path) -> Iterator[str]:
    """Yield the bootstrap address of a running broker; stop it afterwards if we started it."""
    bootstrap = os.environ.get("FIML_KAFKA_BOOTSTRAP")
    if bootstrap:
        yield bootstrap
    elif docker_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(CONTAINER_IMAGE).with_kraft() as container:
            yield container.get_bootstrap_server()
    else:
        local = LocalKafka(local_broker_settings(tmp_dir / "broker"))
        process = local.start(stop_with_parent=True)
        try:
            yield local.bootstrap
        finally:
            stop_process(process, timeout=30)
