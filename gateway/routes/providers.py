"""``GET /v1/providers``: the latest status of every provider, behind the API key when one
is set."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from gateway.providers import ProviderStatuses
from gateway.security import api_key_dependency
from runtime.settings import Settings


class ProviderStatusItem(BaseModel):
    """The latest status a provider reported."""

    provider: str
    status: str
    latency_ms: float | None
    error_kind: str | None
    message: str | None
    timestamp: str
    feed: str


def providers_router(settings: Settings, statuses: ProviderStatuses) -> APIRouter:
    """``GET /v1/providers``."""
    router = APIRouter(dependencies=[Depends(api_key_dependency(settings))])

    @router.get("/v1/providers", response_model=list[ProviderStatusItem], tags=["providers"])
    async def providers() -> list[dict[str, object]]:
        """The latest status of every provider, by name, from fiml.provider.status (read
        back FIML_GATEWAY_WARM_RECORDS records per partition at gateway start, then
        followed)."""
        return statuses.items()

    return router
