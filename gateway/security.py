"""Access rules, all off by default: API keys, Origin allowlist, connection caps."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from runtime.settings import Settings

API_KEY_HEADER = "x-api-key"
API_KEY_QUERY = "api_key"
UNAUTHORIZED_CLOSE = 4401
TRY_AGAIN_LATER = 1013


def api_key_accepted(settings: Settings, connection: HTTPConnection) -> bool:
    """True when no keys are configured, or the request carries one of them."""
    if not settings.api_keys:
        return True
    offered = (
        connection.headers.get(API_KEY_HEADER) or connection.query_params.get(API_KEY_QUERY) or ""
    )
    return any(hmac.compare_digest(offered.encode(), key.encode()) for key in settings.api_keys)


def origin_allowed(settings: Settings, connection: HTTPConnection) -> bool:
    """True when no allowlist is configured, the client sent no Origin, or it is listed."""
    origin = connection.headers.get("origin")
    return not settings.allowed_origins or origin is None or origin in settings.allowed_origins
