"""What operators ask a gateway: its open connections, its metrics (both behind the API key
when one is set), and whether it is alive and ready."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response

from gateway.feed import MarketFeed
from gateway.registry import ConnectionRegistry
from gateway.security import api_key_dependency
from runtime.metrics import CONTENT_TYPE, exposition
from runtime.settings import Settings


def monitoring_router(
    settings: Settings, feed: MarketFeed, registry: ConnectionRegistry
) -> APIRouter:
    """``GET /ws/connections``, ``/metrics``, ``/healthz`` and ``/readyz``."""
    router = APIRouter()
    keyed = [Depends(api_key_dependency(settings))]

    @router.get("/ws/connections", response_model=None, dependencies=keyed)
    async def connections() -> dict[str, object]:
        """Open WebSocket connections, their subscriptions and the symbols subscribed now."""
        return registry.summary()

    @router.get("/metrics", response_model=None, dependencies=keyed)
    async def metrics() -> Response:
        """Prometheus metrics of this gateway process."""
        return Response(exposition(), media_type=CONTENT_TYPE)

    @router.get("/healthz", response_model=None)
    async def healthz() -> dict[str, str] | JSONResponse:
        """Liveness: the Kafka feed keeps up; 503 once records have waited
        FIML_CONSUMER_STALL_SECONDS for it while it did not move."""
        if feed.progress.alive():
            return {"status": "ok"}
        return JSONResponse({"status": "stalled"}, status_code=503)

    @router.get("/readyz", response_model=None)
    async def readyz() -> dict[str, str] | JSONResponse:
        """Readiness: the Kafka feed has its partitions assigned and is connected to a
        broker."""
        if feed.ready.is_set() and feed.connected():
            return {"status": "ready"}
        return JSONResponse({"status": "not ready"}, status_code=503)

    return router
