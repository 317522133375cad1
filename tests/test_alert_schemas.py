"""The alert records' Avro schemas (ids 12-14): round trips, and any Avro reader agrees."""

from __future__ import annotations

import dataclasses
import io
import json
from datetime import datetime

import avro.io
import avro.schema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts.rules import DIRECTIONS, KINDS
from schemas.alerts import AlertRule, FiredAlert, WebhookDeadLetter
from schemas.codec import HEADER, SCHEMA_IDS, DecodeError, decode, encode, load_schema
from schemas.times import TIMEFRAMES, datetime_to_micros
from tests.support_alerts import T0

TYPES = [AlertRule, FiredAlert, WebhookDeadLetter]
times = st.integers(0, 4_102_444_800_000_000)  # until 2100
text = st.text(max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)
optional = st.none

alert_rules = st.builds(
    AlertRule,
    rule_id=text,
    owner=text,
    kind=st.sampled_from(KINDS),
    mode=st.sampled_from(["once", "repeat"]),
    cooldown_us=st.integers(0, 2**62),
    created_at=times,
    symbols=st.lists(text, max_size=3),
    providers=st.lists(text, max_size=3),
    level=optional() | finite,
    pct=optional() | finite,
    direction=optional() | st.sampled_from(DIRECTIONS),
    window_us=optional() | times,
    factor=optional() | finite,
    lookback=optional() | st.integers(0, 2**31 - 1),
    timeframe=optional() | st.sampled_from(list(TIMEFRAMES)),
    silence_us=optional() | times,
    webhook_url=optional() | text,
    deleted_at=optional() | times,
)
fired_alerts = st.builds(
    FiredAlert,
    alert_id=text,
    rule_id=text,
    owner=text,
    kind=st.sampled_from(KINDS),
    subject=text,
    ts_event=times,
    values=st.dictionaries(text, finite, max_size=4),
    message=text,
    source_topic=text,
    source_partition=st.integers(0, 2**31 - 1),
    source_offset=st.integers(0, 2**63 - 1),
    webhook_url=optional() | text,
)
dead_letters = st.builds(
    WebhookDeadLetter,
    alert_id=text,
    rule_id=text,
    owner=text,
    webhook_url=text,
    body=st.binary(max_size=60),
    reason=st.sampled_from(["exhausted", "rejected", "expired"]),
    attempts=st.integers(0, 100),
    first_attempt_at=times,
    last_attempt_at=times,
    last_status=optional() | st.integers(100, 599),
    last_error=optional() | text,
)
records = st.one_of(alert_rules, fired_alerts, dead_letters)
TIMESTAMPS = {"created_at", "deleted_at", "ts_event", "first_attempt_at", "last_attempt_at"}


def official_reader(record_type):
    schema = avro.schema.parse(json.dumps(load_schema(SCHEMA_IDS[record_type][1])))
    return avro.io.DatumReader(schema)


READERS = {record_type: official_reader(record_type) for record_type in TYPES}


@settings(max_examples=200, deadline=None)
@given(records)
def test_decode_inverts_encode(record):
    assert decode(encode(record), expected=type(record)) == record


@settings(max_examples=200, deadline=None)
@given(records)
def test_the_official_avro_reader_reads_the_same_values(record):
    payload = encode(record)
    datum = READERS[type(record)].read(avro.io.BinaryDecoder(io.BytesIO(payload[HEADER.size :])))
    for name in TIMESTAMPS & set(datum):
        if isinstance(datum[name], datetime):
            datum[name] = datetime_to_micros(datum[name])
    assert datum == dataclasses.asdict(record)


@pytest.mark.parametrize("record_type", TYPES, ids=lambda t: t.__name__)
def test_schema_lists_the_fields_in_the_record_order_and_names_its_id(record_type):
    schema_id, filename = SCHEMA_IDS[record_type]
    source = load_schema(filename)
    assert source["name"] == record_type.__name__ and f"Schema id {schema_id}." in source["doc"]
    assert [f["name"] for f in source["fields"]] == [
        f.name for f in dataclasses.fields(record_type)
    ]
    assert schema_id in (12, 13, 14)


def test_the_kinds_of_the_schemas_are_the_kinds_rules_accept():
    for filename in ("alert_rule.avsc", "fired_alert.avsc"):
        kind = next(f for f in load_schema(filename)["fields"] if f["name"] == "kind")
        assert tuple(kind["type"]["symbols"]) == KINDS


def test_a_rule_is_not_read_as_a_fired_alert():
    rule = AlertRule("r", "anonymous", "stale", "once", 0, T0, ["A"], [], silence_us=1)
    with pytest.raises(DecodeError, match="schema id 12 is AlertRule, expected FiredAlert"):
        decode(encode(rule), expected=FiredAlert)
