"""REST alert rules: ``POST /v1/alerts``, ``GET /v1/alerts``, ``DELETE /v1/alerts/{rule_id}``,
each scoped to the caller's owner (its API key's identity, ``anonymous`` without keys) and
behind the API key when one is set."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request

from domain.alerts.rules import InvalidRule, rule_view
from gateway.alerts import AlertBook, AlertsUnavailable
from gateway.security import api_key_dependency, caller_owner
from runtime.settings import Settings


async def json_body(request: Request, limit: int) -> Any:
    """The request's JSON body, read up to ``limit`` bytes (413 beyond, 422 if not JSON)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise HTTPException(413, f"a request body may have at most {limit} bytes")
    try:
        return orjson.loads(bytes(body))
    except orjson.JSONDecodeError as error:
        raise HTTPException(422, f"malformed JSON: {error}") from None


def alerts_router(settings: Settings, book: AlertBook) -> APIRouter:
    """The alert rule endpoints of one gateway."""
    router = APIRouter(dependencies=[Depends(api_key_dependency(settings))], tags=["alerts"])

    @router.post("/v1/alerts", status_code=201)
    async def create_alert(request: Request) -> dict[str, object]:
        """Create a rule (body: kind, symbols or providers, parameters, mode,
        cooldown_seconds, webhook_url; docs/protocol.md, "Alerts"); 422 names what is wrong."""
        data = await json_body(request, settings.max_message_bytes)
        try:
            rule = await book.create(caller_owner(settings, request), data)
        except InvalidRule as error:
            raise HTTPException(422, str(error)) from None
        except AlertsUnavailable as error:
            raise HTTPException(503, str(error)) from None
        return rule_view(rule)

    @router.get("/v1/alerts")
    async def list_alerts(request: Request) -> dict[str, object]:
        """The caller's live rules, oldest first."""
        owner = caller_owner(settings, request)
        return {"rules": [rule_view(rule) for rule in book.owned(owner)]}

    @router.delete("/v1/alerts/{rule_id}")
    async def delete_alert(request: Request, rule_id: str) -> dict[str, object]:
        """Delete one of the caller's rules (404 if it has none of that id)."""
        try:
            rule = await book.delete(caller_owner(settings, request), rule_id)
        except InvalidRule as error:
            raise HTTPException(404, str(error)) from None
        except AlertsUnavailable as error:
            raise HTTPException(503, str(error)) from None
        return {**rule_view(rule), "deleted": True}

    return router
