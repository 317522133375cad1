"""The order book records (schemas/books.py) through the Avro codec, and read back by an
independent Avro reader from the .avsc files."""

from __future__ import annotations

import dataclasses
import io
import json

import avro.io
import avro.schema
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.books import DELTA, SNAPSHOT, BookEvent, ConsolidatedBook
from schemas.codec import HEADER, SCHEMA_IDS, decode, encode, load_schema

longs = st.integers(min_value=-(2**63), max_value=2**63 - 1)
ints = st.integers(min_value=-(2**31), max_value=2**31 - 1)
times = st.integers(min_value=0, max_value=253_402_300_799_999_999)
text = st.text(max_size=12)
levels = st.lists(st.lists(text, min_size=2, max_size=2), max_size=5)
book_events = st.builds(
    BookEvent,
    symbol=text,
    provider=text,
    kind=st.sampled_from([SNAPSHOT, DELTA]),
    ts_event=times,
    ts_ingest=times,
    bids=levels,
    asks=levels,
    first_update_id=st.none() | longs,
    last_update_id=st.none() | longs,
    prev_update_id=st.none() | longs,
    checksum=st.none() | longs,
    depth=st.none() | ints,
)
consolidated_books = st.builds(
    ConsolidatedBook,
    symbol=text,
    ts_event=times,
    seq=longs,
    venues=st.lists(text, max_size=3),
    bids=st.lists(st.lists(text, max_size=5), max_size=5),
    asks=st.lists(st.lists(text, max_size=5), max_size=5),
    crossed_bids=st.lists(ints, max_size=3),
    crossed_asks=st.lists(ints, max_size=3),
)


def official_read(payload: bytes, record_type: type) -> dict:
    _, filename = SCHEMA_IDS[record_type]
    schema = avro.schema.parse(json.dumps(load_schema(filename)))
    reader = avro.io.DatumReader(schema)
    return reader.read(avro.io.BinaryDecoder(io.BytesIO(payload[HEADER.size :])))


@settings(max_examples=200, deadline=None)
@given(record=book_events | consolidated_books)
def test_book_records_round_trip_and_read_the_same_in_another_avro_reader(record) -> None:
    payload = encode(record)
    assert decode(payload, type(record)) == record
    datum = official_read(payload, type(record))
    for name in ("ts_event", "ts_ingest"):
        if name in datum:  # timestamp-micros: the other reader gives datetimes
            datum[name] = getattr(record, name)
    assert datum == dataclasses.asdict(record)


def test_schema_ids_9_and_10_named_in_the_schemas() -> None:
    assert SCHEMA_IDS[BookEvent][0] == 9 and SCHEMA_IDS[ConsolidatedBook][0] == 10
    for record_type, (schema_id, filename) in SCHEMA_IDS.items():
        if record_type in (BookEvent, ConsolidatedBook):
            assert f"Schema id {schema_id}." in load_schema(filename)["doc"]


def test_a_delta_is_compact() -> None:
    """A two-level delta of a real venue is under 100 bytes on Kafka."""
    event = BookEvent(
        "BTC/USDT",
        "ccxt:binance",
        DELTA,
        1_786_541_223_625_000,
        1_786_541_223_640_000,
        [["63921.70", "29.841"]],
        [["63921.80", "0"]],
        11270657314520,
        11270657314522,
    )
    assert len(encode(event)) < 100
