"""The arbitration worker's Faust configuration."""

from __future__ import annotations

import asyncio

from arbitration.app import MAX_POLL_RECORDS, make_app
from runtime.settings import Settings


async def test_a_poll_takes_at_most_max_poll_records(tmp_path):
    """With a backlog an unbounded poll turns up to 1 MiB per partition into Python records
    at once: the worker's memory followed its backlog in the soak. Checked on the aiokafka
    consumer Faust builds for the worker (not started: no broker needed)."""
    settings = Settings.from_env({}, kafka_bootstrap="127.0.0.1:9", cache_dir=str(tmp_path))
    app = make_app(settings)
    assert app.conf.broker_max_poll_records == MAX_POLL_RECORDS
    assert 0 < MAX_POLL_RECORDS <= 1000
    consumer = app.consumer._thread._create_consumer(asyncio.get_running_loop())
    try:
        assert consumer._max_poll_records == MAX_POLL_RECORDS
    finally:
        await consumer.stop()
