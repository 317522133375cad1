"""Access rules, all off by default: API keys (one check, for WebSocket connections and, as a
dependency, for REST), the Origin allowlist."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from domain.alerts.rules import ANONYMOUS, owner_of
from runtime.settings import Settings

API_KEY_HEADER = "x-api-key"
API_KEY_QUERY = "api_key"


def api_key_accepted(settings: Settings, connection: HTTPConnection) -> bool:
    """True when no keys are configured, or the request carries one of them."""
    if not settings.api_keys:
        return True
    offered = offered_key(connection)
    return any(hmac.compare_digest(offered.encode(), key.encode()) for key in settings.api_keys)


def offered_key(connection: HTTPConnection) -> str:
    """The API key a request carries (header, else query parameter), or an empty string."""
    return (
        connection.headers.get(API_KEY_HEADER) or connection.query_params.get(API_KEY_QUERY) or ""
    )


def caller_owner(settings: Settings, connection: HTTPConnection) -> str:
    """Whose alert rules a caller's are: its key's identity, or ``anonymous`` without keys."""
    return owner_of(offered_key(connection)) if settings.api_keys else ANONYMOUS


def origin_allowed(settings: Settings, connection: HTTPConnection) -> bool:
    """True when no allowlist is configured, the client sent no Origin, or it is listed."""
    origin = connection.headers.get("origin")
    return not settings.allowed_origins or origin is None or origin in settings.allowed_origins


def api_key_dependency(settings: Settings) -> Callable[[Request], None]:
    """The REST endpoints' key check, as a FastAPI dependency: 401 without a valid key."""

    def require_api_key(request: Request) -> None:
        if not api_key_accepted(settings, request):
            raise HTTPException(401, "a valid API key is required")

    return require_api_key
