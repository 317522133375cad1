"""The FastAPI application of one gateway: the parts every connection shares, the Kafka
feed and the demand publisher running beside it, and its routers (``gateway/routes/``):
the WebSocket streams, the REST history, the order books, the provider statuses,
monitoring, and the browser dashboard at ``/``."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import FastAPI

from gateway.admission import Admission, history_readers
from gateway.alerts import AlertBook
from gateway.clock import Clocks
from gateway.dashboard import mount_dashboard
from gateway.demand import DemandPublisher
from gateway.eviction import evict_idle_symbols
from gateway.feed import MarketFeed
from gateway.providers import ProviderStatuses
from gateway.registry import ConnectionRegistry
from gateway.routes.alerts import alerts_router
from gateway.routes.books import books_router
from gateway.routes.history import history_router
from gateway.routes.monitoring import monitoring_router
from gateway.routes.news import news_router
from gateway.routes.providers import providers_router
from gateway.routes.stream import stream_router
from gateway.shared import Shared
from gateway.stores import MarketStores
from gateway.watcher import watch_connections
from runtime.catalog import Catalog, ExchangeMarkets, needs_exchange_markets
from runtime.metrics import CONNECTIONS, SUBSCRIPTIONS
from runtime.readers import ReaderPool
from runtime.settings import Settings

Lifespan = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]


def background(
    settings: Settings,
    shared: Shared,
    work: list[Callable[[], Coroutine[Any, Any, None]]],
    markets: ExchangeMarkets,
) -> Lifespan:
    """The app's lifespan: ``work`` (and, when the catalog needs them, the exchanges'
    markets learned into ``markets``) runs as tasks while the app runs."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(run()) for run in work]
        if needs_exchange_markets(settings):  # ccxt is imported only when its markets matter
            from runtime.exchanges import learn_ccxt_markets

            tasks.append(asyncio.create_task(learn_ccxt_markets(settings, markets)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            shared.clocks.close()
            await shared.readers.close()

    return lifespan


def create_app(settings: Settings) -> FastAPI:
    """The gateway for this configuration; the Kafka feed runs while the app runs."""
    market = MarketStores()
    registry = ConnectionRegistry()
    statuses = ProviderStatuses()
    markets = ExchangeMarkets()
    catalog = Catalog.from_settings(settings, markets)
    admission = Admission.from_settings(settings)
    readers = ReaderPool(settings, history_readers(settings))
    shared = Shared(settings, market, registry, statuses, catalog, Clocks(), admission, readers)
    feed = MarketFeed(settings, market, statuses)
    demand = DemandPublisher(settings, registry)
    alerts = AlertBook(settings)
    CONNECTIONS.set_function(lambda: len(registry.connections))
    SUBSCRIPTIONS.set_function(registry.subscription_count)
    work: list[Callable[[], Coroutine[Any, Any, None]]] = [
        feed.run,
        demand.run,
        functools.partial(watch_connections, registry),
        functools.partial(evict_idle_symbols, shared),
        alerts.run,
    ]
    app = FastAPI(
        title="FIML streaming gateway", lifespan=background(settings, shared, work, markets)
    )
    app.state.feed = feed
    app.state.registry = registry
    app.state.market = market
    app.state.statuses = statuses
    app.state.exchange_markets = markets
    app.state.admission = admission
    app.state.alerts = alerts
    app.state.readers = readers
    app.include_router(history_router(settings, admission.history, readers))
    app.include_router(providers_router(settings, statuses))
    app.include_router(news_router(settings, market.news))
    app.include_router(books_router(settings, market.books))
    mount_dashboard(app, settings)
    app.include_router(alerts_router(settings, alerts, admission.history, readers))
    app.include_router(stream_router(shared, alerts))
    app.include_router(monitoring_router(settings, feed, registry))
    return app
