"""/asyncapi.json is a valid AsyncAPI 3.0 document and the frames we send match it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx
import jsonschema
import pytest
import websockets

from runtime.settings import Settings
from tests.factories import quote
from tests.support_gateway import receive
from tests.support_kafka import produce

SPECS = Path(Settings().cache_dir) / "npm/node_modules/@asyncapi/specs/schemas"


@pytest.fixture(scope="module")
def asyncapi_validator() -> jsonschema.Draft7Validator:
    schema_file = SPECS / "3.0.0-without-$id.json"
    assert schema_file.exists(), f"{schema_file} is missing: `make test-tools` installs it"
    return jsonschema.Draft7Validator(json.loads(schema_file.read_text()))


async def fetch_document(port: int) -> dict:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/asyncapi.json")
    assert response.status_code == 200
    return response.json()


async def test_the_document_is_valid_asyncapi_3(gateway, asyncapi_validator):
    _, port, _ = gateway
    document = await fetch_document(port)
    assert list(asyncapi_validator.iter_errors(document)) == []
    assert document["asyncapi"] == "3.0.0"
    assert {c["address"] for c in document["channels"].values()} == {
        "/ws/stream",
        "/ws/prices/{symbols}",
    }
    assert set(document["components"]["messages"]) == {
        "subscribe",
        "unsubscribe",
        "ping",
        "subscription_ack",
        "data",
        "unsubscribe_ack",
        "heartbeat",
        "pong",
        "status",
        "error",
        "replay_complete",
        "subscribe_alerts",
        "unsubscribe_alerts",
        "alert_create",
        "alert_delete",
        "alert_ack",
    }
    broken = copy.deepcopy(document)
    next(iter(broken["operations"].values()))["action"] = "publish"
    assert list(asyncapi_validator.iter_errors(broken)), "the validator accepts anything"


async def test_every_frame_matches_its_message_schema(gateway):
    settings, port, _ = gateway
    document = await fetch_document(port)
    components = document["components"]

    def check(frame: dict) -> None:
        message = components["messages"][frame["type"]]
        schema = {**message["payload"], "components": components}
        jsonschema.validate(frame, schema, cls=jsonschema.Draft202012Validator)

    await produce(settings, "quotes", [quote("AAPL", 190.0, 1)])
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        frames = []
        for stream_type in ("price", "quote", "multi_asset"):
            await ws.send(
                json.dumps({"type": "subscribe", "stream_type": stream_type, "symbols": ["AAPL"]})
            )
            frames.append(await receive(ws, "subscription_ack"))
            frames.append(await receive(ws, "data"))
        await ws.send(json.dumps({"type": "ping"}))
        frames.append(await receive(ws, "pong"))
        await ws.send("nonsense")
        frames.append(await receive(ws, "error"))
        frames.append(await receive(ws, "heartbeat"))
        await ws.send(json.dumps({"type": "unsubscribe", "stream_type": "price", "symbols": None}))
        frames.append(await receive(ws, "unsubscribe_ack"))
    assert {frame["type"] for frame in frames} == {
        "subscription_ack",
        "data",
        "pong",
        "error",
        "heartbeat",
        "unsubscribe_ack",
    }
    for frame in frames:
        check(frame)
    bad = {**frames[1], "seq": "one"}
    with pytest.raises(jsonschema.ValidationError):
        check(bad)
