"""Fixtures: the session's Kafka broker and settings with topics of each test's own."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import settings as hypothesis_settings

from runtime.settings import Settings
from runtime.topics import create_topics
from tests.kafka_broker import session_broker

# HYPOTHESIS_PROFILE=slow runs the property and model-based tests with ten times as many
# examples as `make test` (README, "Tests").
hypothesis_settings.register_profile("slow", max_examples=3000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of the session's real Kafka broker."""
    with session_broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


# Tests write records with fixed event times (tests/test_gateway.py's BASE_US, November
# 2025); the broker's retention check would delete them mid-session under the default
# retention of days, so test topics keep records for about ten years.
TEST_RETENTION_HOURS = 10 * 365 * 24


@pytest.fixture
def settings(kafka_bootstrap: str) -> Settings:
    """Settings on the session broker, with a topic prefix no other test uses."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("FIML_")}
    retention = {
        f"{kind}_retention_hours": TEST_RETENTION_HOURS
        for kind in ("raw", "status", "quotes", "trades", "candles", "dlq")
    }
    return Settings.from_env(
        env,
        kafka_bootstrap=kafka_bootstrap,
        topic_prefix=f"test-{uuid.uuid4().hex[:10]}",
        partitions=3,
        **retention,
    )


@pytest.fixture
async def topics(settings: Settings) -> Settings:
    """``settings`` after its topics were created."""
    await create_topics(settings)
    return settings
