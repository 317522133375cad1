"""Fixtures: the session's Kafka broker and settings with topics of each test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from fiml.settings import Settings
from fiml.topics import create_topics
from tests.kafka_broker import session_broker


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of the session's real Kafka broker."""
    with session_broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture
def settings(kafka_bootstrap: str) -> Settings:
    """Settings on the session broker, with a topic prefix no other test uses."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    return Settings.from_env(env, kafka_bootstrap=kafka_bootstrap,
                             topic_prefix=f"test-{uuid.uuid4().hex[:10]}", partitions=3)


@pytest.fixture
async def topics(settings: Settings) -> Settings:
    """``settings`` after its topics were created."""
    await create_topics(settings)
    return settings
