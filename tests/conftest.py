"""Fixtures shared by the tests: the session's Kafka broker, settings with topics of each
test's own, a gateway on them, and settings of a broker of a test's own. Every test that
uses one of the broker fixtures, directly or through another fixture, is marked ``kafka``:
``-m "not kafka"`` runs exactly the tests that need no broker."""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings as hypothesis_settings

from runtime.settings import Settings
from runtime.testing import free_port, isolated_broker_settings
from runtime.topics import create_topics
from tests.kafka_broker import session_broker
from tests.support_gateway import serve_gateway

# No deadline per example: speed is measured in benchmarks/, never asserted by a test, and a
# loaded machine made examples miss Hypothesis's default 200 ms while their results were right.
# HYPOTHESIS_PROFILE=slow runs the property and model-based tests with ten times as many
# examples as `make test` (CONTRIBUTING.md, "Tests").
hypothesis_settings.register_profile("fiml", deadline=None)
hypothesis_settings.register_profile(
    "slow", parent=hypothesis_settings.get_profile("fiml"), max_examples=3000
)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "fiml"))

# The fixtures that give a test a broker: the session's, or one of its own.
BROKER_FIXTURES = frozenset({"kafka_bootstrap", "own_broker"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``kafka`` every test that needs a broker fixture."""
    for item in items:
        if BROKER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.kafka)


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The bootstrap address of the session's real Kafka broker."""
    with session_broker(tmp_path_factory.mktemp("kafka")) as bootstrap:
        yield bootstrap


@pytest.fixture
def own_broker(tmp_path: Path) -> Settings:
    """Settings of a broker of the test's own (not started): free ports, its data in the
    test's directory, no FIML_* from the environment."""
    return isolated_broker_settings(tmp_path / "broker")


# Tests write records with fixed event times (tests/factories.py's BASE_US, November 2025);
# the broker's retention check would delete them mid-session under the default retention
# of days, so test topics keep records for about ten years, and history may ask for as long
# a range.
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
        max_history_range_hours=TEST_RETENTION_HOURS,
        **retention,
    )


@pytest.fixture
async def topics(settings: Settings) -> Settings:
    """``settings`` after its topics were created."""
    await create_topics(settings)
    return settings


@pytest.fixture
async def gateway(topics: Settings) -> AsyncIterator[tuple[Settings, int, Any]]:
    """A gateway serving on a free port; yields (settings, port, app)."""
    settings = dataclasses.replace(
        # protocol tests subscribe to symbols of their own: the synthetic catalog serves any
        topics,
        heartbeat_interval=0.5,
        gateway_port=free_port(),
        synthetic_any_symbol=True,
    )
    async with serve_gateway(settings) as app:
        yield settings, settings.gateway_port, app


@pytest.fixture
def yfinance_cache(tmp_path: Path) -> Iterator[None]:
    """yfinance's caches in a temporary directory, not the user's."""
    import yfinance as yf

    yf.set_tz_cache_location(str(tmp_path))
    yield


@pytest.fixture
def codec_ids(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The codec's ids and the registry lookup (runtime/schema_ids.py) restored after the
    test: a test may make the codec use a registry's ids."""
    from runtime import schema_ids
    from schemas import codec

    monkeypatch.setattr(codec, "SCHEMAS_BY_ID", codec.SCHEMAS_BY_ID)
    monkeypatch.setattr(codec, "SCHEMAS_BY_TYPE", codec.SCHEMAS_BY_TYPE)
    monkeypatch.setattr(schema_ids, "_resolver", None)
    yield
    if schema_ids._resolver is not None:
        schema_ids._resolver.client.close()
