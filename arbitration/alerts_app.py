"""The alerts worker (``fiml alerts evaluate``): the alerts agent (``arbitration/alerting.py``)
in a Faust app and consumer group of its own, ``<prefix>-alerts``, apart from the arbitration
worker. It reads what that worker writes (quotes, candles) and the provider statuses; run
as many as the quotes topic has partitions, and they share the work.

Its own process, so that evaluating rules takes nothing from arbitration (in the same
process and event loop it cost the worker about 11 µs of CPU per raw tick), a flood of rules
cannot slow the quotes, and each scales on its own. Health as the arbitration worker's
(``arbitration/health.py``): ready once it holds its assignment, alive unless a batch in hand
stays unevaluated for ``FIML_CONSUMER_STALL_SECONDS``.
"""

from __future__ import annotations

import faust

from arbitration.alerting import register_alerts
from arbitration.faust_worker import aiokafka_producer, make_app
from runtime.health import Progress
from runtime.settings import Settings

PROGRESS_PERIOD = 1.0


def build_alerts_app(settings: Settings, progress: Progress) -> faust.App:
    """The alerts worker's Faust app; a timer feeds ``progress`` (for ``/healthz``) the
    records evaluated and those of the batch in hand."""
    app = make_app(settings, f"{settings.topic_prefix}-alerts")
    worker = register_alerts(app, settings, aiokafka_producer)

    async def observe() -> None:
        progress.observe(worker.evaluated, worker.pending)

    app.timer(PROGRESS_PERIOD)(observe)
    return app
