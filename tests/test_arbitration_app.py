"""The Faust configuration of the arbitration worker and of the alerts worker."""

from __future__ import annotations

import asyncio

from arbitration.alerts_app import build_alerts_app
from arbitration.app import build_app
from arbitration.faust_worker import MAX_POLL_RECORDS, make_app
from runtime.health import Progress
from runtime.settings import Settings
from schemas.topics import TopicRole


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


def subscribed(app) -> set[str]:
    """The topics the agents of a Faust app consume."""
    return {topic for agent in app.agents.values() for topic in agent.get_topic_names()}


def test_alerts_are_evaluated_by_their_own_worker_not_by_arbitration(tmp_path):
    """The arbitration worker consumes none of the topics alerts are evaluated on (in its
    process they cost it about 11 µs of CPU per raw tick); the alerts worker consumes
    exactly those, in a consumer group of its own. Apps built, not started."""
    settings = Settings.from_env({}, kafka_bootstrap="127.0.0.1:9", cache_dir=str(tmp_path))
    evaluated = {
        settings.topic(role) for role in (TopicRole.QUOTES, TopicRole.CANDLES, TopicRole.STATUS)
    }
    arbitration = build_app(settings)
    assert subscribed(arbitration) and not subscribed(arbitration) & evaluated
    assert "alerts" not in {agent.name for agent in arbitration.agents.values()}
    alerts = build_alerts_app(settings, Progress(settings.consumer_stall_seconds))
    assert subscribed(alerts) == evaluated
    assert alerts.conf.id == f"{settings.topic_prefix}-alerts" != arbitration.conf.id
