"""REST alert rules: ``POST /v1/alerts``, ``GET /v1/alerts``, ``DELETE /v1/alerts/{rule_id}``
and ``POST /v1/alerts/backtest``, each scoped to the caller's owner (its API key's identity,
``anonymous`` without keys) and behind the API key when one is set."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.alerts.delivery import alert_document
from domain.alerts.rules import InvalidRule, rule_view
from gateway.admission import Slots
from gateway.alerts import AlertBook, AlertsUnavailable
from gateway.history import check_span
from gateway.routes.history import history_slot
from gateway.security import api_key_dependency, caller_owner
from runtime.alert_backtest import run_backtest
from runtime.readers import ReaderPool
from runtime.replay_request import ReplayError
from runtime.settings import Settings
from schemas.times import datetime_to_micros, micros_to_iso


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


class BacktestQuery(BaseModel):
    """A back-test: a rule (new, or one of the caller's by id) and a past range."""

    model_config = ConfigDict(extra="forbid")

    rule: dict[str, Any] | None = None
    rule_id: Annotated[str, Field(max_length=64)] | None = None
    start: datetime
    end: datetime


def alerts_router(
    settings: Settings, book: AlertBook, running: Slots, readers: ReaderPool
) -> APIRouter:
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
        return book.created_view(rule)

    @router.post("/v1/alerts/backtest")
    async def backtest_alert(request: Request) -> dict[str, object]:
        """When a rule (``rule``: a new rule's body, or ``rule_id``: one of the caller's)
        would have fired from ``start`` to ``end``; at most 500 000 records are read, as one
        of the history requests that may run at once."""
        owner = caller_owner(settings, request)
        try:
            query = BacktestQuery.model_validate(
                await json_body(request, settings.max_message_bytes)
            )
        except ValidationError as error:
            raise HTTPException(422, str(error)) from None
        start, end = datetime_to_micros(query.start), datetime_to_micros(query.end)
        with history_slot(running):  # a back-test reads the log as history does
            try:
                rule = book.rule_to_try(owner, query.rule, query.rule_id)
                check_span(settings, start, end)
                result = await run_backtest(settings, rule, start, end, readers=readers)
            except InvalidRule as error:
                raise HTTPException(422, str(error)) from None
            except ReplayError as error:
                raise HTTPException(400, str(error)) from None
        return {
            "rule": rule_view(rule),
            "alerts": [alert_document(alert) for alert in result.alerts],
            "records": result.records,
            "truncated": result.truncated,
            "through": None if result.through is None else micros_to_iso(result.through),
        }

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
