"""Access rules: API keys (one check, for WebSocket connections and, as a dependency, for
REST; off while no key is configured) and the Origin check (on by default: a browser page
of another origin may not open a WebSocket).

A client offers its key, in order of preference, in the ``X-API-Key`` header, as
``Authorization: Bearer <key>`` (what Prometheus sends), as the WebSocket subprotocol
``fiml.key.<key as unpadded base64url>`` beside ``fiml`` (how a browser sends it), or in
the deprecated ``api_key`` query parameter, which the logs mask.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import HTTPException, Request
from starlette.requests import HTTPConnection

from domain.alerts.rules import ANONYMOUS, owner_of
from runtime.settings import Settings

API_KEY_HEADER = "x-api-key"
API_KEY_QUERY = "api_key"
SUBPROTOCOL = "fiml"
KEY_SUBPROTOCOL_PREFIX = "fiml.key."
ANY_ORIGIN = "*"


def offered_subprotocols(connection: HTTPConnection) -> list[str]:
    """The WebSocket subprotocols the client offered, in its order."""
    header = connection.headers.get("sec-websocket-protocol", "")
    return [name.strip() for name in header.split(",") if name.strip()]


def _subprotocol_key(connection: HTTPConnection) -> str | None:
    for name in offered_subprotocols(connection):
        if name.startswith(KEY_SUBPROTOCOL_PREFIX):
            encoded = name.removeprefix(KEY_SUBPROTOCOL_PREFIX)
            try:
                return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return None
    return None


def offered_key(connection: HTTPConnection) -> str:
    """The API key the request carries, or an empty string."""
    bearer = connection.headers.get("authorization", "")
    scheme, _, token = bearer.partition(" ")
    return (
        connection.headers.get(API_KEY_HEADER)
        or (token.strip() if scheme.lower() == "bearer" else "")
        or _subprotocol_key(connection)
        or connection.query_params.get(API_KEY_QUERY)
        or ""
    )


def api_key_accepted(settings: Settings, connection: HTTPConnection) -> bool:
    """True when no keys are configured, or the request carries one of them."""
    if not settings.api_keys:
        return True
    offered = offered_key(connection).encode()
    return any(hmac.compare_digest(offered, key.encode()) for key in settings.api_keys)


def caller_owner(settings: Settings, connection: HTTPConnection) -> str:
    """Whose alert rules a caller's are: its key's identity, or ``anonymous`` without keys."""
    return owner_of(offered_key(connection)) if settings.api_keys else ANONYMOUS


def origin_allowed(settings: Settings, connection: HTTPConnection) -> bool:
    """True when the client sent no Origin (not a browser), the Origin is the gateway's own
    (its host is the request's Host), or it is listed in ``allowed_origins`` (``*``: any)."""
    origin = connection.headers.get("origin")
    listed = settings.allowed_origins
    if origin is None or origin in listed or ANY_ORIGIN in listed:
        return True
    host = connection.headers.get("host")
    return host is not None and urlsplit(origin).netloc.lower() == host.lower()


def api_key_dependency(settings: Settings) -> Callable[[Request], None]:
    """The REST endpoints' key check, as a FastAPI dependency: 401 without a valid key."""

    def require_api_key(request: Request) -> None:
        if not api_key_accepted(settings, request):
            raise HTTPException(401, "a valid API key is required")

    return require_api_key
