"""Alerts end to end on the real broker: rules created over REST and over the WebSocket
are evaluated by the alerts worker (``fiml alerts evaluate``, its own process) on quotes
written to fiml.quotes, and reach their owner's WebSocket, not another owner's; a restart of
the worker on the log the last run left fires nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import sys
import time

import httpx
import jsonschema
import pytest
import websockets

from arbitration.webhook_worker import WebhookWorker
from arbitration.webhooks import WebhookSender
from domain.alerts.delivery import verify
from runtime.clock import now_micros
from runtime.processes import stop_process
from runtime.testing import free_port
from schemas.alerts import FiredAlert
from schemas.times import micros_to_iso
from tests.support import poll_until, service_env, spawn
from tests.support_alerts import quote
from tests.support_gateway import fetch_document, receive, serve_gateway
from tests.support_kafka import producing, read_topic
from tests.support_webhooks import serving_receiver

KEYS = {"a": "alerts-key-a", "b": "alerts-key-b"}


@pytest.fixture
async def system(topics, tmp_path):
    """A gateway in this process with two API keys, the alerts worker in its own, the
    webhook worker in this one and a webhook receiver."""
    settings = dataclasses.replace(
        topics,
        gateway_port=free_port(),
        api_keys=tuple(KEYS.values()),
        alert_rule_lead_ms=200,
        heartbeat_interval=0.5,
        alert_webhook_secret="end-to-end-webhook-secret",
    )
    log = tmp_path / "alerts.log"
    env = service_env(settings)
    worker = [spawn(["alerts", "evaluate"], env, log)]
    sender = WebhookSender(settings.alert_webhook_secret.encode())
    webhooks = asyncio.create_task(WebhookWorker(settings, sender).run())
    try:
        async with serve_gateway(settings) as app, serving_receiver() as hook:
            await asyncio.wait_for(app.state.alerts.feed.ready.wait(), 30)
            await asyncio.wait_for(app.state.alerts.following.wait(), 30)
            yield settings, worker, lambda: spawn(["alerts", "evaluate"], env, log), hook
    finally:
        webhooks.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await webhooks
        await sender.close()
        for process in worker:
            stop_process(process)
        text = log.read_text(errors="replace")
        assert "Traceback" not in text, text[-3000:]


async def alerts_socket(port: int, owner: str) -> tuple[websockets.ClientConnection, dict]:
    """A WebSocket of ``owner`` subscribed to its alerts, and the ack."""
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/ws/stream?api_key={KEYS[owner]}")
    await ws.send(json.dumps({"type": "subscribe", "stream_type": "alerts"}))
    ack = await receive(ws, "subscription_ack")
    assert ack["stream_type"] == "alerts"
    return ws, ack


def check_frames(document: dict, frames: list[dict]) -> None:
    """Each frame matches its message's schema in the AsyncAPI document."""
    components = document["components"]
    for frame in frames:
        schema = {**components["messages"][frame["type"]]["payload"], "components": components}
        jsonschema.validate(frame, schema, cls=jsonschema.Draft202012Validator)


async def alerts_until(
    ws, count: int, settings, prices: dict[str, list[float]], frames: list[dict] | None = None
) -> list[dict]:
    """The alerts ``ws`` receives while quotes of ``prices`` are written, a step every 0.3 s
    (the last price repeated), until there are ``count`` (their frames go to ``frames``)."""
    got: list[dict] = []
    async with producing(settings) as producer, asyncio.timeout(120):
        step = 0
        while len(got) < count:
            time = now_micros()
            for symbol, cycle in prices.items():
                await producer.send("quotes", quote(symbol, time, cycle[min(step, len(cycle) - 1)]))
            await producer.flush()
            step += 1
            try:
                async with asyncio.timeout(0.3):
                    while len(got) < count:
                        message = json.loads(await ws.recv())
                        if message["type"] == "data":
                            got.extend(message["data"])
                            if frames is not None:
                                frames.append(message)
            except TimeoutError:
                pass
    return got


async def silent(ws, within: float) -> list[dict]:
    """What ``ws`` receives within ``within`` seconds, heartbeats left out."""
    found = []
    try:
        async with asyncio.timeout(within):
            while True:
                message = json.loads(await ws.recv())
                if message["type"] != "heartbeat":
                    found.append(message)
    except TimeoutError:
        return found


async def test_rules_fire_once_to_their_owner_and_survive_a_restart(system):
    settings, worker, respawn, (receiver, hook) = system
    port = settings.gateway_port
    base = f"http://127.0.0.1:{port}/v1/alerts"
    a, b = ({"x-api-key": KEYS[owner]} for owner in ("a", "b"))
    began = now_micros()
    async with httpx.AsyncClient() as http:
        created = await http.post(
            base,
            headers=a,
            json={"kind": "price_above", "symbols": ["AAPL"], "parameters": {"level": 100}},
        )
        assert created.status_code == 201, created.text
        rest_rule = created.json()
        assert (await http.get(base, headers=b)).json() == {"rules": []}
        assert (await http.delete(f"{base}/{rest_rule['rule_id']}", headers=b)).status_code == 404
        bad = await http.post(base, headers=a, json={"kind": "price_above", "symbols": ["AAPL"]})
        assert bad.status_code == 422 and "parameters.level" in bad.text
        assert (await http.post(base, json={"kind": "stale"})).status_code == 401

        (ws_a, ack_a), (ws_b, _) = await alerts_socket(port, "a"), await alerts_socket(port, "b")
        await ws_a.send(
            json.dumps(
                {
                    "type": "alert_create",
                    "request_id": "q1",
                    "rule": {
                        "kind": "crosses",
                        "symbols": ["MSFT"],
                        "parameters": {"level": 200},
                        "mode": "repeat",
                        "webhook_url": f"{hook}/ok",
                    },
                }
            )
        )
        ack = await receive(ws_a, "alert_ack")
        assert ack["action"] == "created" and ack["request_id"] == "q1"
        ws_rule = ack["rule"]
        await ws_a.send(json.dumps({"type": "alert_create", "rule": {"kind": "nope"}}))
        error = await receive(ws_a, "error")
        assert error["error_code"] == "ALERT_ERROR" and "kind" in error["message"]
        listed = (await http.get(base, headers=a)).json()["rules"]
        assert [rule["rule_id"] for rule in listed] == [rest_rule["rule_id"], ws_rule["rule_id"]]

        # AAPL goes above 100 (once); MSFT crosses 200 up, then down (two crossings).
        # The first prices repeat so that the rules (ahead by their lead) see them.
        frames = [ack_a, ack, error]
        got = await alerts_until(
            ws_a,
            3,
            settings,
            {"AAPL": [90, 90, 90, 110, 120], "MSFT": [150, 150, 150, 250, 250, 150]},
            frames,
        )
        check_frames(await fetch_document(port), frames)
        by_rule = {alert["rule_id"]: alert for alert in got}
        assert by_rule[rest_rule["rule_id"]]["subject"] == "AAPL"
        assert by_rule[rest_rule["rule_id"]]["values"]["price"] == 110
        assert [alert["subject"] for alert in got if alert["rule_id"] == ws_rule["rule_id"]] == [
            "MSFT",
            "MSFT",
        ]
        assert await silent(ws_b, 1.0) == []

        fired = [alert for _, _, alert in await read_topic(settings, "alerts.fired", FiredAlert)]
        assert sorted(alert.alert_id for alert in fired) == sorted(a["alert_id"] for a in got)
        for alert in fired:
            assert alert.owner.startswith("k_") and KEYS["a"] not in alert.owner

        live = [alert for alert in got if alert["rule_id"] == ws_rule["rule_id"]]
        # The webhook receiver got the same alerts, once each, signed with the rule's secret.
        await poll_until(lambda: len(receiver.received) == 2, within=30)
        secret = ws_rule["webhook_secret"].encode()
        for (_, headers, body), sent in zip(receiver.received, live, strict=True):
            assert headers["x-fiml-alert-id"] == sent["alert_id"] == json.loads(body)["alert_id"]
            assert verify(secret, body, headers["x-fiml-signature"], int(time.time()))

        # The same rule back-tested over the same range fires the same alerts, same ids.
        span = {"start": micros_to_iso(began), "end": micros_to_iso(now_micros())}
        tried = await http.post(
            f"{base}/backtest", headers=a, json={"rule_id": ws_rule["rule_id"], **span}
        )
        assert tried.status_code == 200, tried.text
        assert tried.json()["alerts"] == live
        denied = await http.post(
            f"{base}/backtest", headers=b, json={"rule_id": ws_rule["rule_id"], **span}
        )
        assert denied.status_code == 422
        command = [
            "alerts",
            "backtest",
            "--rule",
            json.dumps(
                {
                    "kind": "crosses",
                    "symbols": ["MSFT"],
                    "parameters": {"level": 200},
                    "mode": "repeat",
                }
            ),
            "--start",
            span["start"],
            "--end",
            span["end"],
        ]
        run = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "fiml", *command],
            env=service_env(settings),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode == 0, run.stderr
        lines = [json.loads(line) for line in run.stdout.splitlines()]
        assert [(x["subject"], x["values"], x["source"]) for x in lines] == [
            (x["subject"], x["values"], x["source"]) for x in live
        ]

        # A restart on the same log: nothing fires again; a new rule after it fires.
        stop_process(worker.pop())
        worker.append(respawn())
        after = await http.post(
            base,
            headers=a,
            json={"kind": "price_below", "symbols": ["NVDA"], "parameters": {"level": 10}},
        )
        assert after.status_code == 201
        more = await alerts_until(ws_a, 1, settings, {"NVDA": [20, 20, 20, 5]})
        assert [alert["rule_id"] for alert in more] == [after.json()["rule_id"]]
        deleted = await http.delete(f"{base}/{after.json()['rule_id']}", headers=a)
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        await asyncio.sleep(1.0)  # a checkpoint period or more, for any repeat to show
        again = [alert for _, _, alert in await read_topic(settings, "alerts.fired", FiredAlert)]
        ids = [alert.alert_id for alert in again]
        assert len(ids) == len(set(ids)) == len(fired) + 1
        assert len(receiver.received) == 2
        await ws_a.close()
        await ws_b.close()
