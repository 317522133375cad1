"""The gateway's alert rules on the real broker, without the worker: the bound on rules per
owner, owners kept apart over REST and the WebSocket, client input refused with reasons."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import httpx
import pytest
import websockets

from domain.alerts.rules import MAX_RULES_PER_OWNER
from runtime.testing import free_port
from tests.support_gateway import receive, serve_gateway

KEYS = ("gateway-key-one", "gateway-key-two")
RULE = {"kind": "price_above", "symbols": ["AAPL"], "parameters": {"level": 100}}


@pytest.fixture
async def gateway_app(topics):
    settings = dataclasses.replace(
        topics, gateway_port=free_port(), api_keys=KEYS, max_history_range_hours=24
    )
    async with serve_gateway(settings) as app:
        await asyncio.wait_for(app.state.alerts.feed.ready.wait(), 30)
        yield settings, app


@pytest.fixture
def gateway_with_keys(gateway_app):
    return gateway_app[0]


async def test_an_owner_has_at_most_its_bound_of_rules(gateway_with_keys):
    base = f"http://127.0.0.1:{gateway_with_keys.gateway_port}/v1/alerts"
    one, two = ({"x-api-key": key} for key in KEYS)
    async with httpx.AsyncClient() as http:
        created = [
            await http.post(base, headers=one, json=RULE) for _ in range(MAX_RULES_PER_OWNER)
        ]
        assert {answer.status_code for answer in created} == {201}
        over = await http.post(base, headers=one, json=RULE)
        assert over.status_code == 422 and "at most 100 rules" in over.text
        assert (await http.post(base, headers=two, json=RULE)).status_code == 201
        gone = created[0].json()["rule_id"]
        assert (await http.delete(f"{base}/{gone}", headers=one)).status_code == 200
        assert (await http.delete(f"{base}/{gone}", headers=one)).status_code == 404
        assert (await http.post(base, headers=one, json=RULE)).status_code == 201
        listed = (await http.get(base, headers=one)).json()["rules"]
        assert len(listed) == MAX_RULES_PER_OWNER and gone not in {r["rule_id"] for r in listed}
        assert len((await http.get(base, headers=two)).json()["rules"]) == 1


async def test_client_input_is_refused_with_reasons(gateway_with_keys):
    settings = gateway_with_keys
    base = f"http://127.0.0.1:{settings.gateway_port}/v1/alerts"
    one = {"x-api-key": KEYS[0]}
    async with httpx.AsyncClient() as http:
        big = b'{"kind": "' + b"x" * settings.max_message_bytes + b'"}'
        assert (await http.post(base, headers=one, content=big)).status_code == 413
        assert (await http.post(base, headers=one, content=b"{not json")).status_code == 422
        unknown = await http.post(base, headers=one, json={**RULE, "owner": "someone"})
        assert unknown.status_code == 422 and "unknown field 'owner'" in unknown.text
        backtest = await http.post(f"{base}/backtest", headers=one, json={"start": "x"})
        assert backtest.status_code == 422
        theirs = (await http.post(base, headers={"x-api-key": KEYS[1]}, json=RULE)).json()[
            "rule_id"
        ]
    url = f"ws://127.0.0.1:{settings.gateway_port}/ws/stream?api_key={KEYS[0]}"
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "alert_delete", "rule_id": theirs}))
        error = await receive(ws, "error")
        assert error["error_code"] == "ALERT_ERROR" and theirs in error["message"]
        await ws.send(json.dumps({"type": "alert_create", "rule": {**RULE, "symbols": []}}))
        error = await receive(ws, "error")
        assert error["error_code"] == "ALERT_ERROR" and "symbols" in error["message"]
        await ws.send(json.dumps({"type": "unsubscribe", "stream_type": "alerts"}))
        ack = await receive(ws, "unsubscribe_ack")
        assert ack["subscription_ids"] == []


async def test_a_backtest_is_a_history_request_with_its_range_cap(gateway_app):
    settings, app = gateway_app
    url = f"http://127.0.0.1:{settings.gateway_port}/v1/alerts/backtest"
    one = {"x-api-key": KEYS[0]}
    day = {"rule": RULE, "start": "2025-11-01T00:00:00Z", "end": "2025-11-02T00:00:00Z"}
    async with httpx.AsyncClient() as http:
        answer = await http.post(url, headers=one, json=day)
        assert answer.status_code == 200 and answer.json()["truncated"] is False
        longer = {**day, "end": "2025-11-02T00:00:01Z"}
        answer = await http.post(url, headers=one, json=longer)
        assert answer.status_code == 400 and "24 hours" in answer.text
        running = app.state.admission.history
        running.taken = running.limit  # every history slot held
        try:
            answer = await http.post(url, headers=one, json=day)
        finally:
            running.taken = 0
        assert answer.status_code == 429 and answer.headers["retry-after"] == "1"
        assert (await http.post(url, headers=one, json=day)).status_code == 200
