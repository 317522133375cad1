"""Helpers of the provider tests: running a provider until it reported enough, and what its
records say."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from runtime.backoff import Backoff
from schemas import ProviderStatus, RawTick

# The seed of the providers' retry jitter in the tests.
SEED = 3

Records = list[RawTick | ProviderStatus]


def has_tick(records: Records) -> bool:
    """Whether a provider has produced at least one tick."""
    return any(isinstance(record, RawTick) for record in records)


def statuses(records: Records) -> list[ProviderStatus]:
    """The statuses among a provider's records."""
    return [record for record in records if isinstance(record, ProviderStatus)]


def failures(records: Records) -> list[ProviderStatus]:
    """The statuses that are not UP."""
    return [status for status in statuses(records) if status.state != "UP"]


def expected_delay(policy: Backoff, attempt: int = 0, retry_after: float | None = None) -> str:
    """How a status names the delay of retry ``attempt`` under ``policy`` with ``SEED``."""
    rng = random.Random(SEED)
    delay = 0.0
    for n in range(attempt + 1):
        delay = policy.delay(n, rng, retry_after)
    return f"retrying in {delay:.1f} s"


async def run_provider_until(
    provider: Any, done: Callable[[Records], bool], limit_s: float = 10.0
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
