"""Alert rules from client input (domain/alerts/rules.py): validation, limits, owners."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.alerts.evaluator import AlertEvaluator
from domain.alerts.rules import (
    MAX_RULES_PER_OWNER,
    MAX_SYMBOLS_PER_RULE,
    InvalidRule,
    check_record,
    owner_of,
    parse_rule,
    rule_view,
)
from domain.alerts.webhooks import webhook_url_problem
from tests.support_alerts import SECOND, T0


def parse(data: object, owner_rules: int = 0):
    return parse_rule(
        data,
        rule_id="rule-1",
        owner="anonymous",
        created_at=T0,  # type: ignore[arg-type]
        owner_rules=owner_rules,
    )


def test_each_kind_parses_into_its_parameters_in_microseconds():
    crosses = parse(
        {
            "kind": "crosses",
            "symbols": ["btc/usdt", "BTC/USDT", "aapl"],
            "parameters": {"level": 65000},
            "mode": "repeat",
            "cooldown_seconds": 60,
            "webhook_url": "https://hooks.example.com/fiml?x=1",
        }
    )
    assert crosses.symbols == ["BTC/USDT", "AAPL"] and crosses.level == 65000.0
    assert (crosses.mode, crosses.cooldown_us, crosses.created_at) == ("repeat", 60 * SECOND, T0)
    assert crosses.webhook_url == "https://hooks.example.com/fiml?x=1"
    change = parse(
        {"kind": "change_pct", "symbols": ["AAPL"], "parameters": {"pct": 5, "window_seconds": 900}}
    )
    assert (change.pct, change.window_us, change.direction) == (5.0, 900 * SECOND, "either")
    assert (change.mode, change.cooldown_us, change.level) == ("once", 0, None)
    spike = parse(
        {
            "kind": "volume_spike",
            "symbols": ["AAPL"],
            "parameters": {"factor": 3, "lookback": 20, "timeframe": "1m"},
        }
    )
    assert (spike.factor, spike.lookback, spike.timeframe) == (3.0, 20, "1m")
    stale = parse({"kind": "stale", "symbols": ["AAPL"], "parameters": {"seconds": 30}})
    assert stale.silence_us == 30 * SECOND
    down = parse({"kind": "provider_down", "providers": ["ccxt:kraken", "ccxt:kraken"]})
    assert (down.providers, down.symbols) == (["ccxt:kraken"], [])


REFUSED = [
    ([], "JSON object"),
    (
        {"kind": "price_above", "symbols": ["A"], "parameters": {"level": 1}, "x": 1},
        "unknown field 'x'",
    ),
    ({"kind": "price_over", "symbols": ["A"]}, "kind must be one of"),
    (
        {"kind": "price_above", "symbols": ["A"], "parameters": {"level": 1}, "mode": "twice"},
        "mode must be one of once, repeat",
    ),
    ({"kind": "price_above", "symbols": [], "parameters": {"level": 1}}, "non-empty list"),
    ({"kind": "price_above", "symbols": "AAPL", "parameters": {"level": 1}}, "non-empty list"),
    ({"kind": "price_above", "symbols": ["A A"], "parameters": {"level": 1}}, "symbols: invalid"),
    ({"kind": "price_above", "symbols": ["A"]}, r"parameters\.level is required"),
    ({"kind": "price_above", "symbols": ["A"], "parameters": {"level": 0}}, "above 0"),
    ({"kind": "price_above", "symbols": ["A"], "parameters": {"level": True}}, "a number"),
    ({"kind": "price_above", "symbols": ["A"], "parameters": {"level": float("nan")}}, "above 0"),
    ({"kind": "price_above", "symbols": ["A"], "parameters": {"level": 1e13}}, "at most"),
    ({"kind": "price_above", "symbols": ["A"], "parameters": {"level": "1"}}, "a number"),
    (
        {"kind": "price_above", "symbols": ["A"], "parameters": {"level": 1, "pct": 2}},
        "unknown parameter 'pct' for price_above",
    ),
    ({"kind": "price_above", "symbols": ["A"], "parameters": [1]}, "parameters must be"),
    (
        {"kind": "change_pct", "symbols": ["A"], "parameters": {"pct": 5, "window_seconds": 0}},
        "window_seconds must be from 1 to 86400",
    ),
    (
        {"kind": "change_pct", "symbols": ["A"], "parameters": {"pct": 5, "window_seconds": 1.5}},
        "whole number",
    ),
    (
        {"kind": "change_pct", "symbols": ["A"], "parameters": {"pct": 1001, "window_seconds": 9}},
        "at most 1000",
    ),
    (
        {
            "kind": "change_pct",
            "symbols": ["A"],
            "parameters": {"pct": 5, "window_seconds": 9, "direction": "sideways"},
        },
        "direction",
    ),
    (
        {
            "kind": "volume_spike",
            "symbols": ["A"],
            "parameters": {"factor": 3, "lookback": 0, "timeframe": "1m"},
        },
        "lookback must be from 1",
    ),
    (
        {
            "kind": "volume_spike",
            "symbols": ["A"],
            "parameters": {"factor": 3, "lookback": 101, "timeframe": "1m"},
        },
        "to 100",
    ),
    (
        {
            "kind": "volume_spike",
            "symbols": ["A"],
            "parameters": {"factor": 0.5, "lookback": 5, "timeframe": "1m"},
        },
        "at least 1",
    ),
    (
        {
            "kind": "volume_spike",
            "symbols": ["A"],
            "parameters": {"factor": 3, "lookback": 5, "timeframe": "2m"},
        },
        "timeframe must be",
    ),
    ({"kind": "stale", "symbols": ["A"], "parameters": {"seconds": 86_401}}, "to 86400"),
    (
        {"kind": "stale", "symbols": ["A"], "parameters": {"seconds": 5}, "cooldown_seconds": -1},
        "cooldown_seconds must be from 0",
    ),
    ({"kind": "provider_down", "providers": ["Kraken!"]}, "not a provider name"),
    ({"kind": "provider_down", "providers": []}, "non-empty list"),
    ({"kind": "provider_down", "providers": ["x"], "symbols": ["A"]}, "takes providers"),
    (
        {"kind": "stale", "symbols": ["A"], "providers": ["x"], "parameters": {"seconds": 5}},
        "takes symbols",
    ),
]


@pytest.mark.parametrize(("data", "message"), REFUSED)
def test_invalid_input_is_refused_with_a_message_naming_the_field(data, message):
    with pytest.raises(InvalidRule, match=message):
        parse(data)


def test_symbol_and_rule_count_limits():
    symbols = [f"S{i}" for i in range(MAX_SYMBOLS_PER_RULE)]
    data = {"kind": "price_above", "symbols": symbols, "parameters": {"level": 1}}
    assert len(parse(data).symbols) == MAX_SYMBOLS_PER_RULE
    with pytest.raises(InvalidRule, match=f"at most {MAX_SYMBOLS_PER_RULE} symbols"):
        parse({**data, "symbols": [*symbols, "ONE/MORE"]})
    assert parse(data, owner_rules=MAX_RULES_PER_OWNER - 1).rule_id == "rule-1"
    with pytest.raises(InvalidRule, match=f"at most {MAX_RULES_PER_OWNER} rules"):
        parse(data, owner_rules=MAX_RULES_PER_OWNER)


def test_a_rule_id_the_shell_gives_must_be_plain():
    with pytest.raises(InvalidRule, match="rule id"):
        parse_rule(
            {"kind": "stale", "symbols": ["A"], "parameters": {"seconds": 5}},
            rule_id="../x",
            owner="anonymous",
            created_at=T0,
            owner_rules=0,
        )


ACCEPTED_URLS = [
    "https://hooks.example.com/fiml",
    "https://hooks.example.com:8443/a/b?c=d",
    "https://8.8.8.8/hook",
    "http://127.0.0.1:9000/hook",
]
REFUSED_URLS = [
    "http://hooks.example.com/fiml",  # plain http to anything but 127.0.0.1
    "http://localhost:9000/hook",
    "http://127.0.0.2/hook",
    "ftp://example.com/x",
    "https://user:pw@example.com/x",  # credentials
    "https://example.com/x#frag",
    "https://10.0.0.5/hook",  # private, loopback, link-local
    "https://127.0.0.1/hook",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/hook",
    "https://example.com:99999/x",
    "https://exa mple.com/x",
    "https:///x",
    "https://example.com/" + "x" * 2048,
]


@pytest.mark.parametrize("url", ACCEPTED_URLS)
def test_webhook_urls_accepted(url):
    assert webhook_url_problem(url) is None
    data = {"kind": "stale", "symbols": ["A"], "parameters": {"seconds": 5}, "webhook_url": url}
    assert parse(data).webhook_url == url


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_webhook_urls_refused(url):
    data = {"kind": "stale", "symbols": ["A"], "parameters": {"seconds": 5}, "webhook_url": url}
    with pytest.raises(InvalidRule, match="webhook_url"):
        parse(data)


def test_owner_is_a_fingerprint_of_the_key_never_the_key():
    key = "s3cret-key-0123456789"
    owner = owner_of(key)
    assert re.fullmatch(r"k_[0-9a-f]{24}", owner)
    assert key not in owner and owner == owner_of(key) and owner != owner_of(key + "x")
    assert owner_of(None) == owner_of("") == "anonymous"


levels = st.floats(min_value=1e-6, max_value=1e12, allow_nan=False)
client_rules = st.one_of(
    st.fixed_dictionaries(
        {
            "kind": st.sampled_from(["price_above", "price_below", "crosses"]),
            "symbols": st.just(["AAPL", "BTC/USDT"]),
            "parameters": st.fixed_dictionaries({"level": levels}),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("change_pct"),
            "symbols": st.just(["AAPL"]),
            "parameters": st.fixed_dictionaries(
                {
                    "pct": st.floats(min_value=0.01, max_value=1000),
                    "window_seconds": st.integers(1, 86_400),
                    "direction": st.sampled_from(["up", "down", "either"]),
                }
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("volume_spike"),
            "symbols": st.just(["AAPL"]),
            "parameters": st.fixed_dictionaries(
                {
                    "factor": st.floats(min_value=1, max_value=1000),
                    "lookback": st.integers(1, 100),
                    "timeframe": st.sampled_from(["1s", "1m", "1h", "1d"]),
                }
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("stale"),
            "symbols": st.just(["ETH/USDT"]),
            "parameters": st.fixed_dictionaries({"seconds": st.integers(1, 86_400)}),
        }
    ),
    st.fixed_dictionaries(
        {
            "kind": st.just("provider_down"),
            "providers": st.just(["ccxt:binance"]),
            "parameters": st.just({}),
        }
    ),
).flatmap(
    lambda base: st.fixed_dictionaries(
        {
            **{key: st.just(value) for key, value in base.items()},
            "mode": st.sampled_from(["once", "repeat"]),
            "cooldown_seconds": st.integers(0, 7 * 86_400),
            "webhook_url": st.sampled_from([None, "https://example.com/h", "http://127.0.0.1:1/h"]),
        }
    )
)


@settings(max_examples=200, deadline=None)
@given(client_rules)
def test_the_client_view_of_a_rule_parses_back_to_the_same_rule(data):
    parsed = parse(data)
    view = rule_view(parsed)
    assert (view["rule_id"], view["created_at"]) == ("rule-1", "2025-11-22T10:30:00.000000Z")
    again = {key: value for key, value in view.items() if key not in ("rule_id", "created_at")}
    assert parse(again) == parsed
    check_record(dataclasses.replace(parsed, deleted_at=T0 + SECOND))


MALFORMED = [
    ({"level": None}, r"parameters\.level is required"),
    ({"pct": 5.0}, "a field its kind does not take"),
    ({"symbols": ["btc/usdt"]}, "canonical"),
    ({"symbols": ["A", "A"]}, "canonical"),
    ({"cooldown_us": SECOND + 1}, "whole seconds"),
    ({"kind": "price_sideways"}, "kind must be one of"),
    ({"mode": "often"}, "mode must be one of"),
    ({"providers": ["ccxt:kraken"]}, "a field its kind does not take"),
    ({"webhook_url": "http://10.0.0.1/x"}, "webhook_url"),
    ({"rule_id": ""}, "rule id"),
]


@pytest.mark.parametrize(("change", "message"), MALFORMED)
def test_a_rule_record_that_parse_rule_would_not_make_is_refused(change, message):
    good = parse({"kind": "price_above", "symbols": ["A"], "parameters": {"level": 1}})
    with pytest.raises(InvalidRule, match=message):
        check_record(dataclasses.replace(good, **change))
    with pytest.raises(InvalidRule, match=message):
        AlertEvaluator().upsert(dataclasses.replace(good, **change))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "kind",
                "symbols",
                "providers",
                "parameters",
                "mode",
                "cooldown_seconds",
                "webhook_url",
                "other",
            ]
        ),
        json_values,
    )
    | json_values
)
def test_any_json_is_a_rule_or_invalid_rule_nothing_else(data):
    try:
        parse(data)
    except InvalidRule as error:
        assert str(error)
