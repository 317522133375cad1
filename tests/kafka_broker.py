"""The one real Kafka broker of a test session.

``FIML_KAFKA_BOOTSTRAP`` if set; else testcontainers' Kafka module when a Docker engine
answers; else the project's own local runner on free ports in a temporary directory.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from runtime.testing import temporary_broker

CONTAINER_IMAGE = "confluentinc/cp-kafka:8.1.0"


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
        with temporary_broker(tmp_dir / "broker") as bootstrap:
            yield bootstrap
