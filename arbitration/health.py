"""The health endpoints as a service of the Faust worker (``runtime/health.py`` serves them):
ready while the worker holds its assignment and is connected, alive while its agent keeps up."""

from __future__ import annotations

from typing import Any

import faust
from mode import Service

from runtime.health import HealthServer, Progress
from runtime.kafka import connected
from runtime.private import private_attribute
from runtime.settings import Settings


class FaustHealth(Service):
    """The health server as a service of a Faust worker, started before the app; alive
    while ``progress`` says its agent keeps up."""

    def __init__(
        self, app: faust.App, host: str, port: int, progress: Progress, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.app = app
        self.joined = False
        self.server = HealthServer(host, port, self.ready, progress.alive)
        # mode types signal handlers with a callable form (mypy_extensions arguments) that no
        # method matches; it calls this one as any handler: sender, then keywords.
        app.on_partitions_assigned.connect(self._on_assigned)  # type: ignore[arg-type]

    def ready(self) -> bool:
        """The worker holds an assignment (possibly empty), no rebalance is running and its
        consumer is connected to a broker."""
        return self.joined and not self.app.rebalancing and faust_connected(self.app)

    async def _on_assigned(self, sender: object, *args: object, **kwargs: object) -> None:
        self.joined = True

    async def on_start(self) -> None:
        """Start the HTTP server."""
        await self.server.start()

    async def on_stop(self) -> None:
        """Stop the HTTP server."""
        await self.server.close()


def faust_connected(app: faust.App) -> bool:
    """Whether the aiokafka consumer under the Faust worker's has a live broker connection
    (Faust keeps it private; it exists once the worker's consumer thread started)."""
    thread = private_attribute(app.consumer, "_thread", "faust-streaming")
    consumer = getattr(thread, "_consumer", None)
    return consumer is not None and connected(private_attribute(consumer, "_client", "aiokafka"))


def faust_health(app: faust.App, settings: Settings, progress: Progress) -> list[Service]:
    """Worker services that serve health for ``app``: none while the endpoints are off."""
    if not settings.health_port:
        return []
    return [FaustHealth(app, settings.health_host, settings.health_port, progress)]
