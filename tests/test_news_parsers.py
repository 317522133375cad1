"""News parsers on recorded real answers of yfinance, FMP and Alpha Vantage: UTC times in
microseconds, symbols, sentiment, and malformed or partial items skipped with a reason."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yfinance.data import YfData

from ingest.news import alphavantage, fmp
from ingest.news.normalize import Skip, compact_utc_micros, eastern_micros, iso_utc_micros
from ingest.news.planner import symbol_map
from ingest.news.tickers import news_targets
from ingest.news.yahoo import parse_stream
from ingest.news.yahoo_poller import YahooNewsPoller
from tests.ccxt_http import fixture
from tests.support_news import recorded, utc_us

NCP = recorded("yahoo_ncp_AAPL.json")
AV = recorded("alphavantage_news_sentiment_20240719.json")
AV_INGEST = utc_us(2024, 7, 19, 13, 30)


class Answer:
    """What yfinance reads of an HTTP response: ``.text`` and ``.json()``."""

    def __init__(self, body: Any) -> None:
        self.text = json.dumps(body)

    def json(self) -> Any:
        return json.loads(self.text)


def yahoo_news(monkeypatch: pytest.MonkeyPatch, body: Any) -> list[Any]:
    """The poller's ``get_news`` call answered with ``body`` instead of Yahoo's."""
    monkeypatch.setattr(YfData, "post", lambda self, url, **kw: Answer(body))
    return YahooNewsPoller(["AAPL"], timeout_s=5).latest_news("AAPL")


def with_stream(items: list[Any]) -> dict[str, Any]:
    body = copy.deepcopy(NCP)
    body["data"]["tickerStream"]["stream"].extend(items)
    return body


def test_yfinance_news_through_yfinance_own_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    advert = {"id": "ad-1", "ad": [{"id": "sponsored"}], "content": {"title": "Buy now"}}
    items = yahoo_news(monkeypatch, with_stream([advert]))
    assert len(items) == 3  # yfinance dropped the advert (derived item) itself
    parsed = parse_stream(items, ("AAPL",), utc_us(2026, 9, 17, 12))
    assert not parsed.skipped
    fool, wsj, guru = parsed.items
    assert fool.published_us == utc_us(2026, 9, 17, 10, 4)
    assert wsj.published_us == utc_us(2026, 9, 17, 9, 30)
    assert guru.published_us == utc_us(2026, 9, 16, 20, 21, 39)
    assert all(item.symbols == ["AAPL"] and item.providers == ["yfinance"] for item in parsed.items)
    assert wsj.headline == "Samsung Fans Are Thoroughly Unimpressed by Apple\u2019s Foldable Phone"
    assert wsj.publisher == "The Wall Street Journal"
    assert wsj.url.endswith("?siteid=yhoof2&yptr=yahoo")  # clickThroughUrl is null
    assert wsj.canonical_url == (
        "https://wsj.com/tech/samsung-fans-are-thoroughly-unimpressed-by-apples-foldable-phone-"
        "0e6652fc"
    )
    assert fool.url.startswith("https://www.fool.com/")  # the publisher's, not Yahoo's copy
    assert (fool.language, fool.sentiment, fool.symbol_sentiment) == ("en-US", None, {})
    assert "  " not in wsj.summary


def test_malformed_yfinance_items_are_skipped_with_a_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    story = NCP["data"]["tickerStream"]["stream"][0]
    broken = [copy.deepcopy(story) for _ in range(4)]
    broken[0]["content"]["pubDate"] = broken[0]["content"]["displayTime"] = "yesterday"
    broken[1]["content"]["title"] = "  "
    broken[2]["content"]["canonicalUrl"] = None
    broken[3]["content"]["pubDate"] = "2026-09-17T10:04:00"  # no zone
    items = yahoo_news(monkeypatch, with_stream([*broken, {"id": "x"}]))
    # yfinance itself fails on a stream entry that is no object; the parser skips one.
    parsed = parse_stream([*items, "not an item"], ("AAPL",), utc_us(2026, 9, 17, 12))
    assert len(parsed.items) == 4  # three recorded, and [2] read from its clickThroughUrl
    assert parsed.items[3].url.startswith("https://finance.yahoo.com/")
    assert parsed.skipped == {"bad_time": 2, "no_headline": 1, "malformed": 1, "not_an_object": 1}


def test_a_time_more_than_a_day_ahead_of_ingest_is_refused() -> None:
    stream = NCP["data"]["tickerStream"]["stream"]
    parsed = parse_stream(stream, ("AAPL",), utc_us(2026, 9, 16))
    assert (len(parsed.items), parsed.skipped) == (1, {"future_time": 2})


FMP_SYMBOLS = symbol_map(news_targets("fmp", ["AAPL", "MSFT"]))
FMP_RECORDED = utc_us(2025, 9, 23, 3, 8)  # when the stable answers were recorded


def test_fmp_stable_stock_news_in_new_york_time() -> None:
    body = recorded("fmp_stable_news_stock_AAPL_MSFT.json")
    (item,) = fmp.parse_news(body, "stock", FMP_SYMBOLS, FMP_RECORDED).items
    assert item.published_us == utc_us(2025, 9, 23, 1, 31, 48)  # 21:31:48 EDT
    assert (item.symbols, item.providers, item.publisher) == (["AAPL"], ["fmp"], "Reuters")
    assert item.headline == "CFPB ends monitoring of Apple, U.S. Bank years ahead of schedule"
    assert item.canonical_url.startswith("https://reuters.com/sustainability/")
    assert item.summary.startswith("The Consumer Financial Protection Bureau")


def test_fmp_general_news_has_no_symbol_and_is_skipped() -> None:
    body = recorded("fmp_stable_news_general_latest.json")
    parsed = fmp.parse_news(body, "stock", FMP_SYMBOLS, FMP_RECORDED)
    assert (parsed.items, parsed.skipped) == ([], {"no_symbols": 1})


def test_fmp_legacy_stock_news_names_the_publisher_in_site() -> None:
    body = recorded("fmp_v3_stock_news_AAPL_MSFT.json")
    parsed = fmp.parse_news(body, "stock", FMP_SYMBOLS, utc_us(2023, 10, 16, 12, 21, 52))
    assert len(parsed.items) == 20 and not parsed.skipped
    first = parsed.items[0]
    assert (first.publisher, first.symbols) == ("Forbes", ["MSFT"])
    assert first.published_us == utc_us(2023, 10, 16, 11, 10, 16)  # 07:10:16 EDT
    assert {tuple(item.symbols) for item in parsed.items} == {("AAPL",), ("MSFT",)}
    assert max(item.published_us for item in parsed.items) < utc_us(2023, 10, 16, 12, 21, 52)
    marketbeat = next(item for item in parsed.items if "marketbeat" in item.url)
    assert marketbeat.url.endswith("?utm_source=snapi")
    assert "utm_source" not in marketbeat.canonical_url


def test_fmp_crypto_symbols_map_to_every_served_pair_of_the_base() -> None:
    served = symbol_map(news_targets("fmp", ["BTC/USDT", "BTC/USD"]))
    item = dict(recorded("fmp_stable_news_stock_AAPL_MSFT.json")[0], symbol="BTCUSD")
    parsed = fmp.parse_news(
        [item, dict(item, symbol="DOGEUSD")], "crypto", served, utc_us(2025, 9, 23, 3, 8)
    )
    assert [i.symbols for i in parsed.items] == [["BTC/USD", "BTC/USDT"]]
    assert (parsed.skipped, parsed.dropped) == ({"no_symbols": 1}, {"ticker": 1})


def test_fmp_refusal_is_its_error_message() -> None:
    assert fmp.refusal(json.loads(fixture("http/fmp_invalid_key.json"))).startswith(
        "Invalid API KEY"
    )
    assert fmp.refusal([]) is None
    with pytest.raises(ValueError, match="list of news items"):
        fmp.parse_news({"unexpected": 1}, "stock", FMP_SYMBOLS, 0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-01-15 09:30:00", utc_us(2024, 1, 15, 14, 30)),  # EST
        ("2024-07-15 09:30:00", utc_us(2024, 7, 15, 13, 30)),  # EDT
        ("2024-11-03 01:30:00", utc_us(2024, 11, 3, 5, 30)),  # repeated hour: the first, EDT
        ("2024-07-15T09:30:00Z", utc_us(2024, 7, 15, 9, 30)),  # a zone given is kept
    ],
)
def test_fmp_times_are_new_york_wall_times(text: str, expected: int) -> None:
    assert eastern_micros(text) == expected


AV_SERVED = symbol_map(news_targets("alphavantage", ["BTC/USDT", "BTC/USD", "AAPL"]))


def test_alphavantage_news_sentiment() -> None:
    parsed = alphavantage.parse_feed(AV, (), AV_SERVED, AV_INGEST)
    # Endeavor has no tickers; Acme United only FOREX:EUR/FOREX:USD, no served pair.
    assert parsed.skipped == {"no_symbols": 2}
    assert parsed.dropped == {"ticker": 3}  # FOREX:EUR, FOREX:USD, CRYPTO:NANO
    assert len(parsed.items) == 11
    first = parsed.items[0]
    assert first.published_us == utc_us(2024, 7, 19, 13, 21, 52)
    assert (first.symbols, first.sentiment) == (["RBCPF", "RCL"], 0.103447)
    assert first.symbol_sentiment == {"RBCPF": -0.181391, "RCL": 0.132822}
    assert first.symbol_relevance == {"RBCPF": 0.032207, "RCL": 0.159993}
    assert (first.publisher, first.language, first.providers) == (
        "Money Morning",
        None,
        ["alphavantage"],
    )
    grayscale = parsed.items[1]
    assert grayscale.symbols == ["BTC/USD", "BTC/USDT", "FILG"]
    assert grayscale.symbol_sentiment == {
        "BTC/USD": 0.563293,
        "BTC/USDT": 0.563293,
        "FILG": 0.357526,
    }
    nano = next(item for item in parsed.items if item.headline.startswith("NANO Nuclear"))
    assert nano.symbols == ["NNE"]


def test_alphavantage_items_are_about_the_requested_symbols_too() -> None:
    parsed = alphavantage.parse_feed(AV, ("AAPL",), AV_SERVED, AV_INGEST)
    assert len(parsed.items) == 13 and not parsed.skipped
    assert all("AAPL" in item.symbols for item in parsed.items)
    assert all("AAPL" not in item.symbol_sentiment for item in parsed.items)


def test_partial_alphavantage_items() -> None:
    item = AV["feed"][0]
    mentions = [
        dict(item["ticker_sentiment"][0], ticker_sentiment_score="n/a"),
        dict(item["ticker_sentiment"][1], relevance_score="7"),
    ]
    feed = [
        dict(item, ticker_sentiment=mentions, overall_sentiment_score="NaN"),
        dict(item, time_published="2024-07-19 13:21"),
        dict(item, url="not a url"),
        {key: value for key, value in item.items() if key != "title"},
        dict(item, ticker_sentiment="RCL"),
    ]
    parsed = alphavantage.parse_feed({"feed": feed}, (), AV_SERVED, AV_INGEST)
    (partial,) = parsed.items
    assert partial.symbols == ["RBCPF", "RCL"] and partial.sentiment is None
    assert partial.symbol_sentiment == {"RBCPF": -0.181391}
    assert partial.symbol_relevance == {"RCL": 0.159993}
    assert parsed.skipped == {"bad_time": 1, "bad_url": 1, "no_headline": 1, "no_symbols": 1}
    assert parsed.dropped == {"sentiment": 2, "relevance": 1}


def test_alphavantage_refusals() -> None:
    limit = json.loads(fixture("http/alphavantage_daily_limit.json"))
    assert alphavantage.refusal(limit)[0] == "rate_limited"
    assert alphavantage.refusal({"Information": "Invalid API key."})[0] == "unauthorized"
    assert alphavantage.refusal({"Error Message": "Invalid call"})[0] == "missing_market"
    assert alphavantage.refusal(AV) is None
    with pytest.raises(ValueError, match="list of news items"):
        alphavantage.parse_feed({"items": "0"}, (), AV_SERVED, AV_INGEST)


@pytest.mark.parametrize(
    ("parse", "value", "expected"),
    [
        (iso_utc_micros, "2026-09-17T10:04:00+02:00", utc_us(2026, 9, 17, 8, 4)),
        (compact_utc_micros, "20240719T1321", utc_us(2024, 7, 19, 13, 21)),
    ],
)
def test_provider_time_forms(parse: Any, value: str, expected: int) -> None:
    assert parse(value) == expected


@pytest.mark.parametrize("value", [None, 1721395312, "", "2024-13-01T00:00:00Z", "20240719"])
def test_bad_times_skip(value: Any) -> None:
    parsers = [iso_utc_micros, compact_utc_micros]
    if value != "20240719":  # a date alone is midnight in New York
        parsers.append(eastern_micros)
    for parse in parsers:
        with pytest.raises(Skip, match="bad_time"):
            parse(value)


json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
field_values = st.one_of(
    json_values,
    st.sampled_from(
        [
            "20240719T132152",
            "2025-09-22 21:31:48",
            "2026-09-17T10:04:00Z",
            "https://a.com/x",
            "AAPL",
            "CRYPTO:BTC",
            "0.5",
            "Headline",
        ]
    ),
)
items = st.lists(
    st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(
                [
                    "title",
                    "url",
                    "time_published",
                    "publishedDate",
                    "symbol",
                    "ticker_sentiment",
                    "overall_sentiment_score",
                    "content",
                    "summary",
                    "source",
                    "publisher",
                ]
            ),
            field_values,
        ),
    ),
    max_size=6,
)


@given(items)
def test_no_item_makes_a_parser_raise(entries: list[Any]) -> None:
    for parsed in (
        alphavantage.parse_feed({"feed": entries}, ("AAPL",), AV_SERVED, AV_INGEST),
        fmp.parse_news(entries, "stock", FMP_SYMBOLS, AV_INGEST),
        parse_stream(entries, ("AAPL",), AV_INGEST),
    ):
        assert len(parsed.items) + sum(parsed.skipped.values()) == len(entries)
        assert all(
            item.symbols and item.canonical_url.startswith("https://") for item in parsed.items
        )
