"""Unit and property tests of the Avro codec (schemas/codec.py) and records (schemas/records.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from datetime import UTC, datetime, timedelta

import avro.io
import avro.schema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.codec import (
    AVRO_DIR,
    EARLIER_SCHEMA_IDS,
    HEADER,
    MAGIC_BYTE,
    MAX_PAYLOAD_BYTES,
    REASONS,
    SCHEMA_IDS,
    DecodeError,
    decode,
    encode,
    load_schema,
)
from schemas.records import Candle, ProviderStatus, Quote, RawTick, Rejected, Trade
from schemas.times import FIRST_MICROS, LAST_MICROS, check_micros, datetime_to_micros, micros_to_iso

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
timestamps = st.integers(min_value=FIRST_MICROS, max_value=LAST_MICROS)
doubles = st.floats(allow_nan=True, allow_infinity=True)
optional_doubles = st.none() | doubles
text = st.text(max_size=20)
optional_text = st.none() | text
sides = st.sampled_from([None, "buy", "sell"])

raw_ticks = st.builds(
    RawTick,
    symbol=text,
    provider=text,
    kind=st.sampled_from(["QUOTE", "TRADE"]),
    ts_event=timestamps,
    ts_ingest=timestamps,
    seq=longs,
    price=doubles,
    bid=optional_doubles,
    ask=optional_doubles,
    bid_size=optional_doubles,
    ask_size=optional_doubles,
    volume=optional_doubles,
    reference_price=optional_doubles,
    trade_id=optional_text,
    trade_size=optional_doubles,
    side=sides,
)
provider_statuses = st.builds(
    ProviderStatus,
    provider=text,
    ts_event=timestamps,
    state=st.sampled_from(["UP", "DEGRADED", "DOWN"]),
    latency_ms=optional_doubles,
    error_kind=optional_text,
    message=optional_text,
    feed=st.sampled_from(["ticks", "books"]),
)
quotes = st.builds(
    Quote,
    symbol=text,
    ts_event=timestamps,
    ts_ingest=timestamps,
    seq=longs,
    price=doubles,
    provider=text,
    confidence=doubles,
    bid=optional_doubles,
    ask=optional_doubles,
    bid_size=optional_doubles,
    ask_size=optional_doubles,
    volume=optional_doubles,
    change=optional_doubles,
    change_percent=optional_doubles,
    reference_price=optional_doubles,
    providers=st.lists(text, max_size=5),
)
candles = st.builds(
    Candle,
    symbol=text,
    timeframe=st.sampled_from(["1s", "1m", "5m", "15m", "1h", "1d"]),
    open_time=timestamps,
    open=doubles,
    high=doubles,
    low=doubles,
    close=doubles,
    volume=doubles,
    is_closed=st.booleans(),
    revision=ints,
    seq=longs,
    trade_count=longs,
)
trades = st.builds(
    Trade,
    symbol=text,
    trade_id=text,
    provider=text,
    ts_event=timestamps,
    ts_ingest=timestamps,
    price=doubles,
    amount=doubles,
    side=sides,
)
rejections = st.builds(
    Rejected,
    source_topic=text,
    source_partition=ints,
    source_offset=longs,
    reason=text,
    detail=text,
    original=st.binary(max_size=40),
    ts_input=timestamps,
    key=st.none() | st.binary(max_size=8),
    symbol=optional_text,
    provider=optional_text,
    ts_event=st.none() | timestamps,
)
records = st.one_of(raw_ticks, provider_statuses, quotes, candles, trades, rejections)

TIMESTAMP_FIELDS = {"ts_event", "ts_ingest", "open_time", "ts_input"}
RECORD_TYPES = [RawTick, ProviderStatus, Quote, Candle, Trade, Rejected]


def comparable(value):
    """A form of a field value that compares equal for NaN and tells -0.0 from 0.0."""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else (value, math.copysign(1.0, value))
    if isinstance(value, list):
        return [comparable(item) for item in value]
    return value


def fields_of(record):
    return {f.name: comparable(getattr(record, f.name)) for f in dataclasses.fields(record)}


def avro_schema_for(record_type):
    _, filename = SCHEMA_IDS[record_type]
    return avro.schema.parse(json.dumps(load_schema(filename)))


AVRO_SCHEMAS = {record_type: avro_schema_for(record_type) for record_type in RECORD_TYPES}


def read_with_official_avro(payload, record_type):
    reader = avro.io.DatumReader(AVRO_SCHEMAS[record_type])
    return reader.read(avro.io.BinaryDecoder(io.BytesIO(payload[HEADER.size :])))


SAMPLES = [
    RawTick(
        "AAPL",
        "synthetic:alpha",
        "QUOTE",
        1_700_000_000_000_000,
        1_700_000_000_015_000,
        42,
        190.25,
        bid=190.2,
        ask=190.3,
        volume=1000.0,
        reference_price=188.0,
    ),
    ProviderStatus(
        "synthetic:beta",
        1_700_000_000_000_000,
        "DOWN",
        error_kind="outage",
        message="simulated outage",
    ),
    Quote(
        "BTC/USDT",
        1_700_000_000_000_000,
        1_700_000_000_000_500,
        7,
        65000.5,
        "ccxt:binance",
        0.98,
        providers=["ccxt:binance", "ccxt:kraken"],
    ),
    Candle(
        "BTC/USDT",
        "1m",
        1_700_000_040_000_000,
        1.0,
        2.0,
        0.5,
        1.5,
        10.0,
        False,
        3,
        9,
        trade_count=4,
    ),
    Trade(
        "ETH/USDT",
        "t-1",
        "ccxt:binance",
        1_700_000_000_000_000,
        1_700_000_000_000_100,
        3200.0,
        0.25,
        side="sell",
    ),
    Rejected(
        "fiml.ticks.raw",
        2,
        41,
        "outlier",
        "price 1.0 is 99 MADs from consensus",
        b"\x00\x00\x00\x00\x01",
        1_700_000_000_000_000,
        key=b"AAPL",
        symbol="AAPL",
        provider="synthetic:gamma",
        ts_event=1_699_999_999_990_000,
    ),
]


# --- round trips -------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(records)
def test_decode_inverts_encode(record):
    decoded = decode(encode(record))
    assert type(decoded) is type(record)
    assert fields_of(decoded) == fields_of(record)


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_sample_round_trip_is_equal(record):
    assert decode(encode(record)) == record
    assert decode(encode(record), expected=type(record)) == record


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_a_decoded_record_is_as_its_constructor_makes_it(record):
    """Decoding sets the slots without ``__init__``: the record is still frozen, hashes like
    the original, and no record type has a ``__post_init__`` that this would skip."""
    decoded = decode(encode(record))
    assert not hasattr(type(record), "__post_init__")
    assert repr(decoded) == repr(record)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(decoded, dataclasses.fields(record)[0].name, "changed")
    if not any(
        isinstance(getattr(record, f.name), list | dict) for f in dataclasses.fields(record)
    ):
        assert hash(decoded) == hash(record)


@settings(max_examples=200, deadline=None)
@given(records)
def test_official_avro_reader_decodes_the_same_values(record):
    """Any Avro reader, given the .avsc files, reads what fastavro wrote."""
    datum = read_with_official_avro(encode(record), type(record))
    assert set(datum) == {f.name for f in dataclasses.fields(record)}
    for name in TIMESTAMP_FIELDS & set(datum):
        if datum[name] is None:
            continue
        assert isinstance(datum[name], datetime)
        assert datum[name].tzinfo is not None
        datum[name] = datetime_to_micros(datum[name])
    assert {name: comparable(value) for name, value in datum.items()} == fields_of(record)


# --- the Confluent header ----------------------------------------------------------------


ALL_IDS = sorted([schema_id for schema_id, _ in SCHEMA_IDS.values()] + list(EARLIER_SCHEMA_IDS))
NEXT_ID = ALL_IDS[-1] + 1


def test_schema_ids_count_from_one_and_files_exist():
    assert list(range(1, NEXT_ID)) == ALL_IDS
    assert SCHEMA_IDS[Rejected][0] == 6
    for _, filename in [*SCHEMA_IDS.values(), *EARLIER_SCHEMA_IDS.values()]:
        assert (AVRO_DIR / filename).is_file()


@pytest.mark.parametrize("schema_id", sorted(EARLIER_SCHEMA_IDS))
def test_earlier_schema_files_name_their_id_and_type(schema_id):
    record_type, filename = EARLIER_SCHEMA_IDS[schema_id]
    source = load_schema(filename)
    assert source["name"] == record_type.__name__
    assert f"Schema id {schema_id}." in source["doc"]


def test_a_quote_written_before_scores_existed_still_decodes():
    """Quotes of schema id 3 (no scores), written here by the official avro package."""
    earlier = avro.schema.parse(json.dumps(load_schema("earlier/quote_v1.avsc")))
    datum = {
        "symbol": "BTC/USDT",
        "ts_event": EPOCH + timedelta(seconds=1_700_000_000),
        "ts_ingest": EPOCH + timedelta(seconds=1_700_000_000, microseconds=500),
        "seq": 7,
        "price": 65000.5,
        "bid": None,
        "ask": 65001.0,
        "bid_size": None,
        "ask_size": None,
        "volume": None,
        "change": None,
        "change_percent": None,
        "reference_price": None,
        "provider": "ccxt:binance",
        "confidence": 0.98,
        "providers": ["ccxt:binance"],
    }
    body = io.BytesIO()
    avro.io.DatumWriter(earlier).write(datum, avro.io.BinaryEncoder(body))
    decoded = decode(HEADER.pack(MAGIC_BYTE, 3) + body.getvalue(), expected=Quote)
    assert decoded == Quote(
        "BTC/USDT",
        1_700_000_000_000_000,
        1_700_000_000_000_500,
        7,
        65000.5,
        "ccxt:binance",
        0.98,
        ask=65001.0,
        providers=["ccxt:binance"],
    )
    assert decoded.scores == {}
    assert encode(decoded)[: HEADER.size] == HEADER.pack(MAGIC_BYTE, SCHEMA_IDS[Quote][0])


def test_a_status_written_before_feeds_existed_still_decodes_as_a_ticks_status():
    """Statuses of schema id 2 (no ``feed``), written here by the official avro package."""
    earlier = avro.schema.parse(json.dumps(load_schema("earlier/provider_status_v1.avsc")))
    datum = {
        "provider": "ccxt:binance",
        "ts_event": EPOCH + timedelta(seconds=1_700_000_000),
        "state": "DOWN",
        "latency_ms": None,
        "error_kind": "network",
        "message": "connection reset",
    }
    body = io.BytesIO()
    avro.io.DatumWriter(earlier).write(datum, avro.io.BinaryEncoder(body))
    decoded = decode(HEADER.pack(MAGIC_BYTE, 2) + body.getvalue(), expected=ProviderStatus)
    assert (decoded.provider, decoded.state, decoded.error_kind) == (
        "ccxt:binance",
        "DOWN",
        "network",
    )
    assert decoded.feed == "ticks"
    assert encode(decoded)[: HEADER.size] == HEADER.pack(MAGIC_BYTE, SCHEMA_IDS[ProviderStatus][0])


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_header_is_magic_zero_and_big_endian_schema_id(record):
    payload = encode(record)
    assert payload[0] == MAGIC_BYTE == 0
    assert int.from_bytes(payload[1:5], "big") == SCHEMA_IDS[type(record)][0]
    assert payload[1:4] == b"\x00\x00\x00"


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_avsc_doc_names_the_same_schema_id(record):
    """Each .avsc says "Schema id N." in its doc; it must match SCHEMA_IDS."""
    schema_id, filename = SCHEMA_IDS[type(record)]
    source = load_schema(filename)
    assert source["name"] == type(record).__name__
    assert f"Schema id {schema_id}." in source["doc"]


# --- decode errors -----------------------------------------------------------------------


@pytest.mark.parametrize("schema_id", [0, NEXT_ID, 99, 2**31, 2**32 - 1])
def test_unknown_schema_id_is_named(schema_id):
    body = encode(SAMPLES[0])[HEADER.size :]
    payload = bytes([0]) + schema_id.to_bytes(4, "big") + body
    with pytest.raises(DecodeError, match=rf"unknown schema id {schema_id}\b") as info:
        decode(payload)
    assert info.value.reason == "unknown_schema"


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records)
def test_every_strict_prefix_raises_decode_error(record):
    payload = encode(record)
    for end in range(len(payload)):
        with pytest.raises(DecodeError) as info:
            decode(payload[:end])
        assert type(record).__name__ in str(info.value) or end < HEADER.size


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
def test_prefixes_that_end_on_a_field_boundary_say_truncated(record):
    payload = encode(record)
    for end in (*range(1, HEADER.size + 1), len(payload) - 1):
        with pytest.raises(DecodeError, match="truncated") as info:
            decode(payload[:end])
        assert info.value.reason == "truncated"


def test_prefix_cut_inside_a_varint_says_truncated():
    payload = encode(RawTick("A", "p", "QUOTE", 0, 0, 300, 1.0))
    cut = payload.index(b"\xd8\x04") + 1
    with pytest.raises(DecodeError, match="truncated"):
        decode(payload[:cut])


@pytest.mark.parametrize(("payload", "reason"), [(None, "null"), (b"", "empty")])
def test_a_tombstone_or_an_empty_payload_raises_decode_error(payload, reason):
    with pytest.raises(DecodeError) as info:
        decode(payload, RawTick)
    assert info.value.reason == reason


def test_an_oversize_payload_is_refused_before_it_is_read():
    record = dataclasses.replace(SAMPLES[0], symbol="A" * MAX_PAYLOAD_BYTES)
    with pytest.raises(DecodeError, match="over the limit") as info:
        decode(encode(record))
    assert info.value.reason == "oversize"
    fitting = dataclasses.replace(SAMPLES[0], symbol="A" * (MAX_PAYLOAD_BYTES // 2))
    assert decode(encode(fitting)) == fitting


@pytest.mark.parametrize("magic", [1, 2, 0x7F])
def test_wrong_magic_byte(magic):
    payload = bytes([magic]) + encode(SAMPLES[0])[1:]
    with pytest.raises(DecodeError, match=rf"magic byte {magic}\b") as info:
        decode(payload)
    assert info.value.reason == "bad_magic"


@pytest.mark.parametrize("magic", [0x80, 0xFF])
def test_wrong_high_magic_byte_is_reported_as_its_byte_value(magic):
    payload = bytes([magic]) + encode(SAMPLES[0])[1:]
    with pytest.raises(DecodeError, match=rf"magic byte {magic}\b"):
        decode(payload)


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
@pytest.mark.parametrize("extra", [b"\x00", b"\x01\x02\x03"])
def test_trailing_bytes_are_refused(record, extra):
    with pytest.raises(DecodeError, match=rf"{len(extra)} bytes left") as info:
        decode(encode(record) + extra)
    assert info.value.reason == "corrupt"


@pytest.mark.parametrize("record", SAMPLES, ids=lambda r: type(r).__name__)
@pytest.mark.parametrize("other", RECORD_TYPES, ids=lambda t: t.__name__)
def test_expected_type_mismatch(record, other):
    payload = encode(record)
    if other is type(record):
        assert decode(payload, expected=other) == record
        return
    with pytest.raises(DecodeError) as info:
        decode(payload, expected=other)
    assert type(record).__name__ in str(info.value)
    assert f"expected {other.__name__}" in str(info.value)
    assert info.value.reason == "wrong_type"


def test_decode_error_is_a_value_error():
    assert issubclass(DecodeError, ValueError)


framed_noise = st.builds(
    lambda schema_id, body: bytes([0]) + schema_id.to_bytes(4, "big") + body,
    st.integers(min_value=1, max_value=NEXT_ID - 1),
    st.binary(max_size=64),
)


@settings(max_examples=500, deadline=None)
@given(st.none() | st.binary(max_size=64) | framed_noise, st.sampled_from([None, *RECORD_TYPES]))
def test_anything_gives_a_record_or_a_decode_error_with_a_reason(payload, expected):
    """The one promise every consumer relies on: no other exception, whatever the value."""
    try:
        record = decode(payload, expected)
    except DecodeError as error:
        assert str(error)
        assert error.reason in REASONS
    else:
        assert type(record) in SCHEMA_IDS
        assert expected is None or type(record) is expected


@settings(max_examples=200, deadline=None)
@given(records, st.data())
def test_corrupted_payloads_raise_only_decode_error(record, data):
    """Overwrite one body byte of a valid payload: a record or DecodeError, nothing else."""
    payload = bytearray(encode(record))
    index = data.draw(st.integers(min_value=HEADER.size, max_value=len(payload) - 1))
    payload[index] = data.draw(st.integers(min_value=0, max_value=255))
    try:
        decoded = decode(bytes(payload))
    except DecodeError as error:
        assert error.reason in ("truncated", "corrupt")
        return
    assert type(decoded) is type(record)


# --- times -------------------------------------------------------------------------------


ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def exact_iso(micros):
    return (EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    ("micros", "expected"),
    [
        (0, "1970-01-01T00:00:00.000000Z"),
        (1, "1970-01-01T00:00:00.000001Z"),
        (1_763_807_401_250_000, "2025-11-22T10:30:01.250000Z"),
        (1_700_000_000_123_457, "2023-11-14T22:13:20.123457Z"),
        (1_763_807_400_999_999, "2025-11-22T10:30:00.999999Z"),
    ],
)
def test_micros_to_iso_examples(micros, expected):
    assert micros_to_iso(micros) == expected


# Up to 2100: the range the project's data lives in.
@settings(max_examples=200)
@given(st.integers(min_value=0, max_value=datetime_to_micros(datetime(2100, 1, 1, tzinfo=UTC))))
def test_micros_to_iso_is_exact_to_the_microsecond(micros):
    iso = micros_to_iso(micros)
    assert ISO_Z.match(iso)
    assert iso == exact_iso(micros)


def test_the_times_a_date_can_show_are_checked():
    for micros in (FIRST_MICROS, 0, LAST_MICROS):
        check_micros(micros)
        assert micros_to_iso(micros).endswith("Z")
    for micros in (FIRST_MICROS - 1, LAST_MICROS + 1, 2**62):
        with pytest.raises(ValueError, match="is no date"):
            check_micros(micros)


def test_micros_to_iso_is_exact_far_in_the_future():
    micros = 251_582_010_486_265_069
    assert micros_to_iso(micros) == exact_iso(micros) == "9942-04-26T19:48:06.265069Z"


@settings(max_examples=200)
@given(timestamps)
def test_datetime_to_micros_inverts_timedelta(micros):
    assert datetime_to_micros(EPOCH + timedelta(microseconds=micros)) == micros
