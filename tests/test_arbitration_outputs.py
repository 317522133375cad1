"""Tests of output markers (arbitration/outputs.py): what a restart must not write again."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arbitration.engine.outputs import MARKER_HEADER, format_marker, messages, parse_marker
from arbitration.engine.partition import output_key
from schemas import decode
from schemas.records import Candle, Quote, Rejected, Trade

QUOTE = Quote("AAPL", 1, 2, 7, 100.0, "a", 1.0)
TRADE = Trade("AAPL", "t1", "a", 1, 2, 100.0, 1.0)


def candle(tf: str) -> Candle:
    return Candle("AAPL", tf, 0, 1.0, 1.0, 1.0, 1.0, 0.0, False, 1, 7)


OUTPUTS = [candle("1s"), QUOTE, candle("1s"), candle("1m"), TRADE]


def test_markers_count_per_topic_within_an_offset():
    found = messages(7, OUTPUTS, {})
    assert [(m.role, m.marker) for m in found] == [
        ("candles", (7, 0)),
        ("quotes", (7, 0)),
        ("candles", (7, 1)),
        ("candles", (7, 2)),
        ("trades", (7, 0)),
    ]
    assert found[1].key == b"AAPL" and decode(found[1].value) == QUOTE
    assert found[1].headers == [(MARKER_HEADER, b"7:0")]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ({"candles": (7, 1)}, [("quotes", (7, 0)), ("candles", (7, 2)), ("trades", (7, 0))]),
        (
            {"candles": (6, 9), "quotes": (7, 0)},
            [("candles", (7, 0)), ("candles", (7, 1)), ("candles", (7, 2)), ("trades", (7, 0))],
        ),
        ({"candles": (8, 0), "quotes": (8, 0), "trades": (8, 0)}, []),
    ],
)
def test_outputs_up_to_the_written_marker_are_skipped(written, expected):
    assert [(m.role, m.marker) for m in messages(7, OUTPUTS, written)] == expected


@settings(max_examples=100)
@given(st.integers(0, 2**62), st.integers(0, 2**20))
def test_marker_header_round_trips(offset, index):
    header = [("other", b"x"), (MARKER_HEADER, format_marker((offset, index)))]
    assert parse_marker(header) == (offset, index)
    assert parse_marker([("other", b"x")]) is None
    assert parse_marker(None) is None


def test_rejected_without_symbol_keeps_the_input_key():
    record = Rejected("raw", 0, 1, "undecodable", "x", b"", 0, key=b"K")
    assert output_key(record) == b"K"
    assert (
        output_key(Rejected("raw", 0, 1, "late", "x", b"", 0, key=b"K", symbol="AAPL")) == b"AAPL"
    )
