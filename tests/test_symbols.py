"""Tests of canonical symbols (schemas/symbols.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.symbols import MAX_SYMBOL_LENGTH, InvalidSymbol, canonical_symbol

CANONICAL_CHARS = re.compile(r"^[A-Z0-9.\-^=/]+$")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("AAPL", "AAPL"),
        ("aapl", "AAPL"),
        ("  msft\t", "MSFT"),
        ("\nGoogl \n", "GOOGL"),
        ("BRK-B", "BRK-B"),
        ("brk.b", "BRK.B"),
        ("^GSPC", "^GSPC"),
        ("^gspc", "^GSPC"),
        ("GC=F", "GC=F"),
        ("gc=f", "GC=F"),
        ("BTC/USDT", "BTC/USDT"),
        ("btc/usdt", "BTC/USDT"),
        ("EUR/USD", "EUR/USD"),
        ("eurusd=x", "EURUSD=X"),
        ("7203.T", "7203.T"),
        ("X", "X"),
        ("A" * MAX_SYMBOL_LENGTH, "A" * MAX_SYMBOL_LENGTH),
    ],
)
def test_valid_symbols_are_trimmed_and_upper_cased(text, expected):
    assert canonical_symbol(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("\t\n", "empty"),
        ("BRK B", "invalid symbol 'BRK B'"),
        ("BTC /USDT", "invalid pair"),
        ("A/B/C", "invalid pair 'A/B/C'"),
        ("/USDT", "invalid pair '/USDT'"),
        ("BTC/", "invalid pair 'BTC/'"),
        ("/", "invalid pair"),
        ("^", "invalid symbol"),
        ("-AAPL", "invalid symbol"),
        ("GC=", "invalid symbol"),
        ("GC=FF", "invalid symbol"),
        ("AAPL!", "invalid symbol"),
        ("A" * (MAX_SYMBOL_LENGTH + 1), f"longer than {MAX_SYMBOL_LENGTH}"),
        ("x" * 200, f"longer than {MAX_SYMBOL_LENGTH}"),
    ],
)
def test_invalid_symbols_raise_with_a_useful_message(text, message):
    with pytest.raises(InvalidSymbol) as info:
        canonical_symbol(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "kind"), [(None, "NoneType"), (123, "int"), (b"AAPL", "bytes"), (["AAPL"], "list")]
)
def test_non_strings_are_refused_naming_their_type(value, kind):
    with pytest.raises(InvalidSymbol, match=f"must be a string, got {kind}"):
        canonical_symbol(value)


def test_invalid_symbol_is_a_value_error():
    assert issubclass(InvalidSymbol, ValueError)


def test_too_long_message_is_bounded():
    """The message quotes at most 40 characters of a huge input."""
    with pytest.raises(InvalidSymbol) as info:
        canonical_symbol("Z" * 10_000)
    assert len(str(info.value)) < 120


symbolish = st.text(alphabet="ABCXYZabcxyz0189.-^=/ \t", max_size=40)


@settings(max_examples=300)
@given(symbolish | st.text(max_size=40))
def test_canonical_symbol_is_idempotent_on_what_it_accepts(text):
    try:
        symbol = canonical_symbol(text)
    except InvalidSymbol as error:
        assert str(error)
        return
    assert canonical_symbol(symbol) == symbol
    assert symbol == symbol.strip().upper()
    assert 0 < len(symbol) <= MAX_SYMBOL_LENGTH
    assert CANONICAL_CHARS.match(symbol)
    assert symbol.count("/") <= 1


@settings(max_examples=200)
@given(symbolish)
def test_case_and_surrounding_space_do_not_matter(text):
    """Any two spellings that differ in case or padding get the same answer."""
    variants = [text, text.lower(), text.upper(), f"  {text}\t"]
    outcomes = set()
    for variant in variants:
        try:
            outcomes.add(canonical_symbol(variant))
        except InvalidSymbol:
            outcomes.add(InvalidSymbol)
    assert len(outcomes) == 1
