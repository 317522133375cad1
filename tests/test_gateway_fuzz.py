"""Fuzzing the gateway over one real WebSocket: whatever a client sends, it gets one answer.

Arbitrary JSON values, message-shaped objects, arbitrary text and arbitrary bytes go over ONE
connection to a real gateway (real uvicorn, real broker). Every frame must get exactly one
answer: an error frame with a known code, or the documented reply to a valid ping, subscribe
or unsubscribe. Afterwards the connection still answers and a second client still subscribes.
The per-connection rate limit is raised for the fuzzing; a separate test floods a gateway with
the default limit and expects RATE_LIMITED while the connection stays open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time

import orjson
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from gateway.protocol import ErrorCode, ProtocolError, SubscribeRequest, parse_client_message
from runtime.testing import free_port
from tests.support_gateway import receive, serve_gateway

NOISE = {"heartbeat", "status"}
KNOWN_CODES = {code.value for code in ErrorCode}
SYMBOLS = ["AAPL", "msft", "BTC/USDT", "eth/usdt", " aapl ", "$$$", "", "A" * 40]
PING = json.dumps({"type": "ping"})


@pytest.fixture
def threaded_gateway(topics):
    """A gateway with a very high client rate limit, served from its own thread and event
    loop so a synchronous hypothesis test can talk to it; yields its port."""
    config = dataclasses.replace(
        topics,
        heartbeat_interval=0.5,
        gateway_port=free_port(),
        client_messages_per_second=100_000.0,
        synthetic_any_symbol=True,  # any well-formed symbol gets an ack
    )
    ready = threading.Event()
    state: dict[str, object] = {}

    async def main() -> None:
        stop = asyncio.Event()
        state["stop"] = (asyncio.get_running_loop(), stop)
        async with serve_gateway(config):
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as error:  # reported by the fixture
            state["error"] = error
            ready.set()

    thread = threading.Thread(target=run, name="fuzz-gateway", daemon=True)
    thread.start()
    assert ready.wait(60), "the gateway did not start"
    assert "error" not in state, state.get("error")
    try:
        yield config.gateway_port
    finally:
        loop, stop = state["stop"]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        assert not thread.is_alive(), "the gateway did not stop"
        assert "error" not in state, state.get("error")


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=20,
)


def field_values(valid: list) -> st.SearchStrategy:
    return st.sampled_from(valid) | json_values


message_like = st.fixed_dictionaries(
    {"type": field_values(["subscribe", "unsubscribe", "ping", "pong", "data", "SUBSCRIBE"])},
    optional={
        "stream_type": field_values(["price", "ohlcv", "quote", "trades", "multi_asset", "prices"]),
        "symbols": st.none() | st.lists(field_values(SYMBOLS), max_size=5) | json_values,
        "asset_type": field_values(["equity", "crypto", "forex", "stock"]),
        "market": field_values(["US", "CRYPTO", "GLOBAL", "us"]),
        "interval_ms": st.integers(50, 70_000) | json_values,
        "data_type": field_values(["price", "ohlcv", "fundamentals", "tick"]),
        "timeframe": field_values(["1s", "1m", "5m", "2m"]),
    },
)

GOOD_SYMBOLS = ["AAPL", "msft", "BTC/USDT", "eth/usdt", " aapl ", "^GSPC"]
STREAM_TYPES = ["price", "ohlcv", "quote", "trades", "multi_asset"]
valid_messages = st.one_of(
    st.fixed_dictionaries(
        {
            "type": st.just("subscribe"),
            "stream_type": st.sampled_from(STREAM_TYPES),
            "symbols": st.lists(st.sampled_from(GOOD_SYMBOLS), min_size=1, max_size=4),
        },
        optional={
            "asset_type": st.sampled_from(["equity", "crypto", "etf"]),
            "market": st.sampled_from(["US", "CRYPTO", "GLOBAL"]),
            "interval_ms": st.integers(100, 60_000),
            "data_type": st.sampled_from(["price", "ohlcv", "fundamentals"]),
            "timeframe": st.sampled_from(["1s", "1m", "1d"]),
        },
    ),
    st.fixed_dictionaries(
        {"type": st.just("unsubscribe"), "stream_type": st.sampled_from(STREAM_TYPES)},
        optional={
            "symbols": st.none() | st.lists(st.sampled_from(GOOD_SYMBOLS), min_size=1, max_size=3)
        },
    ),
    st.fixed_dictionaries({"type": st.just("ping")}, optional={"note": json_values}),
)
MISSING = object()


@st.composite
def near_valid_messages(draw) -> dict:
    """A valid message, as is or with one field replaced by any JSON value or removed."""
    message = dict(draw(valid_messages))
    if draw(st.booleans()):
        field = draw(
            st.sampled_from(
                [
                    "type",
                    "stream_type",
                    "symbols",
                    "interval_ms",
                    "asset_type",
                    "market",
                    "data_type",
                    "timeframe",
                ]
            )
        )
        value = draw(st.just(MISSING) | json_values)
        if value is MISSING:
            message.pop(field, None)
        else:
            message[field] = value
    return message


def as_json(values: st.SearchStrategy) -> st.SearchStrategy[str]:
    return st.tuples(values, st.booleans()).map(lambda v: json.dumps(v[0], ensure_ascii=v[1]))


frames = st.one_of(
    as_json(json_values),
    as_json(message_like),
    as_json(near_valid_messages()),
    as_json(near_valid_messages()),
    st.text(max_size=200),
    st.binary(max_size=200),
)


def expected_answer(frame: str | bytes) -> tuple[str, str | None]:
    """(reply type, error code if it must be an error, else None) for one frame."""
    if isinstance(frame, bytes):
        return "error", ErrorCode.INVALID_JSON.value
    try:
        payload = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return "error", ErrorCode.INVALID_JSON.value
    if not isinstance(payload, dict):
        return "error", ErrorCode.INVALID_JSON.value
    kind = payload.get("type")
    if kind == "ping":
        return "pong", None
    if kind == "subscribe":
        try:
            parse_client_message(frame)
        except ProtocolError:
            return "error", ErrorCode.SUBSCRIPTION_ERROR.value
        return "subscription_ack", None
    if kind == "unsubscribe":
        try:
            parse_client_message(frame)
        except ProtocolError:
            return "error", ErrorCode.UNSUBSCRIBE_ERROR.value
        return "unsubscribe", None  # an ack or UNSUBSCRIBE_ERROR, as the model says
    return "error", ErrorCode.INVALID_MESSAGE_TYPE.value


class SessionModel:
    """What the connection has subscribed, to predict unsubscribe answers."""

    def __init__(self) -> None:
        self.subscriptions: dict[str, tuple[str, list[str]]] = {}

    def unsubscribe(self, stream_type: str, symbols: list[str] | None) -> tuple[list, list]:
        removed: dict[str, None] = {}
        ended = []
        for sub_id, (kind, have) in list(self.subscriptions.items()):
            if kind != stream_type:
                continue
            gone = list(have) if symbols is None else [s for s in symbols if s in have]
            removed.update(dict.fromkeys(gone))
            left = [s for s in have if s not in gone]
            if left:
                self.subscriptions[sub_id] = (kind, left)
            else:
                del self.subscriptions[sub_id]
                ended.append(sub_id)
        return list(removed), ended


def answers(ws, frame: str | bytes) -> list[dict]:
    """Send ``frame`` and then a ping; every frame that answers ``frame``, up to that pong."""
    ws.send(frame)
    ws.send(PING)
    pongs_wanted = 1 + (expected_answer(frame)[0] == "pong")
    replies: list[dict] = []
    deadline = time.monotonic() + 10
    while True:
        message = json.loads(ws.recv(timeout=max(deadline - time.monotonic(), 0.01)))
        if message["type"] in NOISE:
            continue
        assert message["type"] != "data", "nothing was published, so no data can come"
        if message["type"] == "pong":
            pongs_wanted -= 1
            if pongs_wanted == 0:
                return replies
        replies.append(message)


# The gateway's Kafka client (aiokafka) uses the global `random` module in its own thread while
# hypothesis generates examples here; hypothesis warns about that, though no strategy uses it.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_every_frame_gets_exactly_one_answer_and_the_server_keeps_serving(threaded_gateway):
    port = threaded_gateway
    model = SessionModel()
    counts = {"error": 0, "ok": 0}

    with connect(f"ws://127.0.0.1:{port}/ws/stream", max_size=2**22) as ws:

        @settings(
            max_examples=150,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(frame=frames)
        def one_frame(frame: str | bytes) -> None:
            kind, code = expected_answer(frame)
            replies = answers(ws, frame)
            assert len(replies) == 1, (frame, replies)
            [answer] = replies
            if answer["type"] == "error":
                counts["error"] += 1
                assert set(answer) == {"type", "error_code", "message", "timestamp"}, answer
                assert answer["error_code"] in KNOWN_CODES, answer
                assert isinstance(answer["message"], str) and answer["message"], answer
                assert answer["timestamp"].endswith("Z"), answer
            else:
                counts["ok"] += 1
            if kind == "pong":
                assert answer["type"] == "pong" and answer["timestamp"].endswith("Z"), answer
            elif kind == "subscription_ack":
                request = parse_client_message(frame)
                assert isinstance(request, SubscribeRequest)
                assert answer["type"] == "subscription_ack", (frame, answer)
                model.subscriptions[answer["subscription_id"]] = (
                    request.stream_type.value,
                    list(request.symbols),
                )
                assert answer["stream_type"] == request.stream_type.value
                assert answer["symbols"] == request.symbols
                assert answer["interval_ms"] == request.interval_ms
            elif kind == "unsubscribe":
                request = parse_client_message(frame)
                removed, ended = model.unsubscribe(request.stream_type.value, request.symbols)
                if removed:
                    assert answer["type"] == "unsubscribe_ack", (frame, answer)
                    assert answer["symbols"] == removed
                    assert answer["subscription_ids"] == ended
                else:
                    assert (answer["type"], answer.get("error_code")) == (
                        "error",
                        "UNSUBSCRIBE_ERROR",
                    ), (frame, answer)
            else:
                assert (answer["type"], answer.get("error_code")) == (kind, code), (frame, answer)

        one_frame()
        assert counts["error"] >= 20 and counts["ok"] >= 5, counts
        still = answers(ws, PING)
        assert [m["type"] for m in still] == ["pong"], "the fuzzed connection still answers"

    with connect(f"ws://127.0.0.1:{port}/ws/stream") as second:
        second.send(json.dumps({"type": "subscribe", "stream_type": "price", "symbols": ["AAPL"]}))
        deadline = time.monotonic() + 10
        while (message := json.loads(second.recv(timeout=deadline - time.monotonic())))[
            "type"
        ] in NOISE:
            pass
        assert message["type"] == "subscription_ack" and message["symbols"] == ["AAPL"]


async def test_a_flood_beyond_the_rate_limit_gets_rate_limited_and_stays_open(gateway):
    settings_, port, _ = gateway
    rate = settings_.client_messages_per_second
    burst = 2 * rate
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws/stream") as ws:
        started = time.monotonic()
        for _ in range(int(4 * burst)):
            await ws.send(PING)
        pongs, limited = 0, []
        try:
            async with asyncio.timeout(1.0):
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "pong":
                        pongs += 1
                    elif message["type"] == "error":
                        limited.append(message)
        except TimeoutError:
            pass
        window = time.monotonic() - started
        assert limited, "a flood must be told it is rate limited"
        assert all(m["error_code"] == "RATE_LIMITED" and m["message"] for m in limited)
        assert len(limited) <= 1 + window, "RATE_LIMITED is reported at most once a second"
        assert burst <= pongs <= burst + rate * window + 1, (pongs, window)

        await asyncio.sleep(0.5)
        await ws.send(PING)
        assert (await receive(ws, "pong"))["type"] == "pong"
        await ws.send(
            json.dumps({"type": "subscribe", "stream_type": "price", "symbols": ["AAPL"]})
        )
        assert (await receive(ws, "subscription_ack"))["symbols"] == ["AAPL"]
        assert ws.close_code is None
