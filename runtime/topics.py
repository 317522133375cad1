"""Create the project's topics with explicit partitions and retention (idempotent)."""

from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from runtime.kafka import make_admin
from runtime.settings import Settings, TopicSpec

TOPIC_ALREADY_EXISTS = 36
# How long a broker's metadata may trail a create before the topics count as missing.
DESCRIBED_WITHIN_S = 30.0


class TopicError(RuntimeError):
    """The broker refused to create a topic."""


def topic_configs(spec: TopicSpec) -> dict[str, str]:
    """Broker configuration of one topic."""
    if spec.compacted:
        return {"cleanup.policy": "compact"}
    return {"cleanup.policy": "delete", "retention.ms": str(spec.retention_ms)}


async def create_topics(settings: Settings, specs: list[TopicSpec] | None = None) -> list[str]:
    """Create every missing topic and return the names created; existing ones are left alone."""
    specs = list(settings.topics().values()) if specs is None else specs
    admin = make_admin(settings)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [spec for spec in specs if spec.name not in existing]
        if not missing:
            return []
        response = await admin.create_topics(
            [
                NewTopic(
                    spec.name,
                    spec.partitions,
                    settings.replication_factor,
                    topic_configs=topic_configs(spec),
                )
                for spec in missing
            ]
        )
        created, failures = [], []
        for name, code, *rest in response.topic_errors:
            if code == 0:
                created.append(name)
            elif code != TOPIC_ALREADY_EXISTS:
                message = rest[0] if rest else None
                failures.append(f"{name}: {message or f'error code {code}'}")
        if failures:
            raise TopicError("could not create topics: " + "; ".join(failures))
        await until_described(admin, created)
        return created
    finally:
        await admin.close()


async def until_described(admin: AIOKafkaAdminClient, names: list[str]) -> None:
    """Wait until the broker describes every topic of ``names``: its metadata trails the
    controller's create, and a reader started in between would find no partitions."""
    deadline = time.monotonic() + DESCRIBED_WITHIN_S
    pending = set(names)
    while pending:
        described = await admin.describe_topics(sorted(pending))  # one request a round
        pending -= {
            entry["topic"]
            for entry in described
            if entry["error_code"] == 0 and entry["partitions"]
        }
        if pending and time.monotonic() > deadline:
            raise TopicError(
                "created topics the broker does not describe: " + ", ".join(sorted(pending))
            )
        if pending:
            await asyncio.sleep(0.2)
