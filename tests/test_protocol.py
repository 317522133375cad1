"""Tests of the client protocol (gateway/protocol.py) against docs/protocol.md."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocol import (
    ErrorCode,
    PingRequest,
    ProtocolError,
    StreamType,
    SubscribeRequest,
    UnsubscribeRequest,
    error_frame,
    parse_client_message,
    validate_message,
)
from schemas.times import datetime_to_iso

SPEC_SUBSCRIBE = """{
  "type": "subscribe",
  "stream_type": "price",
  "symbols": ["AAPL", "GOOGL"],
  "asset_type": "equity",
  "market": "US",
  "interval_ms": 1000,
  "data_type": "price"
}"""
ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")

STREAM_TYPES = ["price", "ohlcv", "quote", "trades", "multi_asset"]
ASSET_TYPES = ["equity", "crypto", "forex", "commodity", "index", "etf"]
MARKETS = ["US", "UK", "EU", "JP", "CN", "HK", "CRYPTO", "GLOBAL"]
DATA_TYPES = ["price", "ohlcv", "fundamentals"]


def subscribe(**changes):
    message = {"type": "subscribe", "stream_type": "price", "symbols": ["AAPL"]}
    message.update(changes)
    return json.dumps(message)


def refused(text, code):
    with pytest.raises(ProtocolError) as info:
        parse_client_message(text)
    assert info.value.code == code
    assert info.value.message == str(info.value)
    return info.value.message


def test_spec_subscribe_example_parses():
    message = parse_client_message(SPEC_SUBSCRIBE)
    assert isinstance(message, SubscribeRequest)
    assert message.stream_type is StreamType.PRICE
    assert message.symbols == ["AAPL", "GOOGL"]
    assert (message.asset_type, message.market, message.data_type) == ("equity", "US", "price")
    assert message.interval_ms == 1000


def test_spec_examples_from_the_usage_section_parse():
    ohlcv = parse_client_message(
        json.dumps(
            {
                "type": "subscribe",
                "stream_type": "ohlcv",
                "symbols": ["BTC/USDT"],
                "asset_type": "crypto",
                "market": "CRYPTO",
                "interval_ms": 5000,
                "data_type": "ohlcv",
            }
        )
    )
    assert ohlcv.stream_type is StreamType.OHLCV and ohlcv.symbols == ["BTC/USDT"]
    unsubscribe = parse_client_message(
        '{"type": "unsubscribe", "stream_type": "price", "symbols": ["AAPL"]}'
    )
    assert isinstance(unsubscribe, UnsubscribeRequest) and unsubscribe.symbols == ["AAPL"]


def test_bytes_frames_parse_too():
    assert isinstance(parse_client_message(SPEC_SUBSCRIBE.encode()), SubscribeRequest)


def test_optional_fields_default():
    message = parse_client_message(subscribe())
    assert message.interval_ms == 1000
    assert message.asset_type is None and message.market is None and message.data_type is None


@pytest.mark.parametrize("count", [1, 50])
def test_symbol_count_bounds_accepted(count):
    symbols = [f"SYM{i}" for i in range(count)]
    assert parse_client_message(subscribe(symbols=symbols)).symbols == symbols


@pytest.mark.parametrize("count", [0, 51])
def test_symbol_count_out_of_bounds_refused(count):
    message = refused(
        subscribe(symbols=[f"SYM{i}" for i in range(count)]), ErrorCode.SUBSCRIPTION_ERROR
    )
    assert "symbols" in message


@pytest.mark.parametrize("interval", [100, 101, 1000, 60000])
def test_interval_bounds_accepted(interval):
    assert parse_client_message(subscribe(interval_ms=interval)).interval_ms == interval


@pytest.mark.parametrize("interval", [0, 99, 60001, -1000, 10**12])
def test_interval_out_of_bounds_refused(interval):
    assert "interval_ms" in refused(subscribe(interval_ms=interval), ErrorCode.SUBSCRIPTION_ERROR)


@pytest.mark.parametrize("interval", ["1000", 1000.5, True, None, [1000]])
def test_interval_must_be_an_integer(interval):
    assert "interval_ms" in refused(subscribe(interval_ms=interval), ErrorCode.SUBSCRIPTION_ERROR)


def test_duplicate_symbols_are_folded_after_upper_casing():
    message = parse_client_message(subscribe(symbols=["aapl", "AAPL", " msft ", "AAPL", "MSFT"]))
    assert message.symbols == ["AAPL", "MSFT"]


def test_symbols_are_canonicalised():
    message = parse_client_message(subscribe(symbols=["btc/usdt", "^gspc", "brk-b"]))
    assert message.symbols == ["BTC/USDT", "^GSPC", "BRK-B"]


@pytest.mark.parametrize("symbol", ["", "   ", "A B", "A/B/C", "/USDT", "X" * 40])
def test_invalid_symbol_refused_naming_the_field(symbol):
    message = refused(subscribe(symbols=["AAPL", symbol]), ErrorCode.SUBSCRIPTION_ERROR)
    assert message.startswith("Failed to create subscription:")
    assert "symbols" in message


@pytest.mark.parametrize("symbols", ["AAPL", None, [1], [None], {"AAPL": 1}])
def test_symbols_must_be_a_list_of_strings(symbols):
    assert "symbols" in refused(subscribe(symbols=symbols), ErrorCode.SUBSCRIPTION_ERROR)


def test_missing_fields_are_named():
    message = refused('{"type": "subscribe"}', ErrorCode.SUBSCRIPTION_ERROR)
    assert "stream_type" in message and "symbols" in message


@pytest.mark.parametrize("value", STREAM_TYPES)
def test_each_stream_type_accepted(value):
    assert parse_client_message(subscribe(stream_type=value)).stream_type == value


@pytest.mark.parametrize("value", ASSET_TYPES)
def test_each_asset_type_accepted(value):
    assert parse_client_message(subscribe(asset_type=value)).asset_type == value


@pytest.mark.parametrize("value", MARKETS)
def test_each_market_accepted(value):
    assert parse_client_message(subscribe(market=value)).market == value


@pytest.mark.parametrize("value", DATA_TYPES)
def test_each_data_type_of_the_spec_accepted(value):
    assert parse_client_message(subscribe(data_type=value)).data_type == value


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stream_type", "candles"),
        ("stream_type", "PRICE"),
        ("stream_type", ""),
        ("stream_type", 1),
        ("asset_type", "stock"),
        ("asset_type", "Equity"),
        ("market", "us"),
        ("market", "NASDAQ"),
        ("data_type", "news"),
        ("data_type", 0),
    ],
)
def test_enum_fields_refuse_other_values(field, value):
    message = refused(subscribe(**{field: value}), ErrorCode.SUBSCRIPTION_ERROR)
    assert field in message


def test_unsubscribe_with_a_list():
    message = parse_client_message(
        '{"type": "unsubscribe", "stream_type": "ohlcv", "symbols": ["btc/usdt", "BTC/USDT"]}'
    )
    assert isinstance(message, UnsubscribeRequest)
    assert message.stream_type is StreamType.OHLCV
    assert message.symbols == ["BTC/USDT"]


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "unsubscribe", "stream_type": "price", "symbols": null}',
        '{"type": "unsubscribe", "stream_type": "price"}',
    ],
)
def test_unsubscribe_with_null_means_all(text):
    message = parse_client_message(text)
    assert isinstance(message, UnsubscribeRequest) and message.symbols is None


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "unsubscribe", "stream_type": "price", "symbols": []}',
        '{"type": "unsubscribe", "stream_type": "price", "symbols": ["A B"]}',
        '{"type": "unsubscribe", "stream_type": "nope"}',
        '{"type": "unsubscribe"}',
    ],
)
def test_bad_unsubscribe_is_an_unsubscribe_error(text):
    message = refused(text, ErrorCode.UNSUBSCRIBE_ERROR)
    assert "unsubscribe" in message


def test_ping_parses():
    assert isinstance(parse_client_message('{"type": "ping"}'), PingRequest)


@pytest.mark.parametrize(
    "text",
    ["", "{", "{'type': 'ping'}", "subscribe", '{"type": }', "[1, 2", "NaN", '{"type": "ping"} x'],
)
def test_malformed_json_is_invalid_json(text):
    assert "JSON" in refused(text, ErrorCode.INVALID_JSON)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("[]", "an array"),
        ('"subscribe"', "a string"),
        ("42", "a number"),
        ("1.5", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
    ],
)
def test_non_object_json_is_invalid_json(text, kind):
    message = refused(text, ErrorCode.INVALID_JSON)
    assert "JSON object" in message and kind in message


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "subscribes"}',
        '{"type": "SUBSCRIBE"}',
        '{"type": ""}',
        '{"type": 1}',
        '{"type": null}',
        '{"type": ["subscribe"]}',
        '{"stream_type": "price"}',
        "{}",
    ],
)
def test_unknown_or_missing_type(text):
    message = refused(text, ErrorCode.INVALID_MESSAGE_TYPE)
    assert "subscribe" in message and "ping" in message


def test_validate_message_on_a_decoded_object():
    message = validate_message(
        {"type": "subscribe", "stream_type": "trades", "symbols": ["eth/usdt"], "interval_ms": 250}
    )
    assert message.stream_type is StreamType.TRADES
    assert message.symbols == ["ETH/USDT"] and message.interval_ms == 250
    with pytest.raises(ProtocolError) as info:
        validate_message({"type": "subscribe", "stream_type": "trades", "symbols": []})
    assert info.value.code == ErrorCode.SUBSCRIPTION_ERROR


def test_error_message_names_the_field_and_the_action():
    message = refused(subscribe(interval_ms=50), ErrorCode.SUBSCRIPTION_ERROR)
    assert message.startswith("Failed to create subscription: interval_ms:")
    assert "100" in message


def test_error_frame_shape():
    frame = json.loads(error_frame(ErrorCode.SUBSCRIPTION_ERROR, "Failed: bad symbol"))
    assert set(frame) == {"type", "error_code", "message", "timestamp"}
    assert frame["type"] == "error"
    assert frame["error_code"] == "SUBSCRIPTION_ERROR"
    assert frame["message"] == "Failed: bad symbol"
    assert ISO_Z.match(frame["timestamp"])
    stamp = datetime.strptime(frame["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - stamp).total_seconds()) < 60


@pytest.mark.parametrize("code", list(ErrorCode))
def test_error_frame_for_every_code(code):
    assert json.loads(error_frame(code, "x"))["error_code"] == code.value


def test_spec_error_codes_exist():
    for name in [
        "INVALID_JSON",
        "INVALID_MESSAGE_TYPE",
        "SUBSCRIPTION_ERROR",
        "UNSUBSCRIBE_ERROR",
        "PROCESSING_ERROR",
    ]:
        assert ErrorCode(name).value == name


def test_utc_timestamp_format():
    moment = datetime(2025, 11, 22, 10, 30, 0, 250000, tzinfo=UTC)
    assert datetime_to_iso(moment) == "2025-11-22T10:30:00.250000Z"


# --- properties --------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
message_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["subscribe", "unsubscribe", "ping", "pong"]) | json_scalars},
    optional={
        "stream_type": st.sampled_from(STREAM_TYPES) | json_values,
        "symbols": st.lists(st.text(max_size=8) | json_scalars, max_size=60) | json_values,
        "interval_ms": st.integers(-10, 70_000) | json_values,
        "asset_type": st.sampled_from(ASSET_TYPES) | json_values,
        "market": st.sampled_from(MARKETS) | json_values,
        "data_type": st.sampled_from(DATA_TYPES) | json_values,
    },
)


def parse_or_protocol_error(text):
    try:
        message = parse_client_message(text)
    except ProtocolError as error:
        assert isinstance(error.code, ErrorCode)
        assert error.message
        return None
    assert isinstance(message, SubscribeRequest | UnsubscribeRequest | PingRequest)
    return message


@settings(max_examples=300, deadline=None)
@given(json_values | message_like)
def test_arbitrary_json_raises_only_protocol_error(value):
    message = parse_or_protocol_error(json.dumps(value))
    if isinstance(message, SubscribeRequest):
        assert 1 <= len(message.symbols) <= 50
        assert len(set(message.symbols)) == len(message.symbols)
        assert 100 <= message.interval_ms <= 60_000


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=100) | st.binary(max_size=100))
def test_arbitrary_text_raises_only_protocol_error(text):
    parse_or_protocol_error(text)


@pytest.mark.parametrize(
    "text",
    [
        "\ud800",
        '{"type": "\ud800"}',
        b"\xff\xfe",
        b'{"a": "\xff"}',
        "[" * 5000,
        '{"n": 1e999}',
        '{"n": 123456789012345678901234}',
    ],
)
def test_odd_inputs_raise_protocol_error(text):
    assert parse_or_protocol_error(text) is None
