"""News deduplication (domain/news): one story per piece of news across providers and
polls, different stories with similar headlines kept apart, and the same stories whatever
order the copies come in."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.news.dedup import HOUR_US, DedupConfig, NewsDeduplicator, StoryWindow
from domain.news.headlines import jaccard, similar, tokens
from ingest.news import alphavantage, fmp
from ingest.news.planner import symbol_map
from ingest.news.tickers import news_targets
from ingest.news.yahoo import parse_stream
from schemas.news import NewsItem, story_id
from tests.support_news import fold, raw, recorded, utc_us

NOON = utc_us(2026, 9, 17, 12)
WSJ = (
    "https://wsj.com/tech/samsung-fans-are-thoroughly-unimpressed-by-apples-foldable-phone-0e6652fc"
)


def run(items: list[NewsItem]) -> list[NewsItem | None]:
    window = StoryWindow()
    return [window.add(item) for item in items]


def test_one_story_from_two_providers_with_other_urls_and_headlines() -> None:
    """yfinance's recorded WSJ story, and the same story as FMP would carry it (derived: the
    recorded item re-expressed in FMP's stable shape, at WSJ's mobile host with FMP's
    tracking parameters and a fragment, its headline in sentence case with a straight
    apostrophe and "are" dropped, published 05:31 New York time, a minute after Yahoo's)."""
    stream = recorded("yahoo_ncp_AAPL.json")["data"]["tickerStream"]["stream"]
    yahoo_copy = parse_stream(stream, ("AAPL",), NOON).items[1]
    fmp_answer = [
        {
            "symbol": "AAPL",
            "publishedDate": "2026-09-17 05:31:00",
            "publisher": "The Wall Street Journal",
            "site": "wsj.com",
            "title": "Samsung fans thoroughly unimpressed by Apple's foldable phone",
            "text": "Samsung's social-media accounts mocked the iPhone Fold.",
            "url": "https://m.wsj.com/tech/samsung-fans-are-thoroughly-unimpressed-by-apples-"
            "foldable-phone-0e6652fc/?utm_source=fmp&utm_medium=api#comments",
        }
    ]
    fmp_copy = fmp.parse_news(
        fmp_answer, "stock", symbol_map(news_targets("fmp", ["AAPL"])), NOON + 1
    ).items[0]
    assert yahoo_copy.url != fmp_copy.url and yahoo_copy.headline != fmp_copy.headline
    first, merged = run([yahoo_copy, fmp_copy])
    assert first.providers == ["yfinance"]
    assert merged.providers == ["fmp", "yfinance"]
    assert merged.id == first.id == story_id(WSJ) and merged.replaces == []
    assert merged.headline == yahoo_copy.headline  # the earlier published copy's
    assert merged.published_us == utc_us(2026, 9, 17, 9, 30)
    assert merged.canonical_url == WSJ


def test_a_syndicated_copy_at_another_url_joins_by_its_headline() -> None:
    """FMP's recorded Reuters story and Yahoo's syndicated copy of it (derived: at a
    finance.yahoo.com address, "U.S." written "US", another summary)."""
    (reuters,) = fmp.parse_news(
        recorded("fmp_stable_news_stock_AAPL_MSFT.json"),
        "stock",
        symbol_map(news_targets("fmp", ["AAPL"])),
        NOON,
    ).items
    yahoo = raw(
        "yfinance",
        "CFPB ends monitoring of Apple, US Bank years ahead of schedule",
        "https://finance.yahoo.com/news/cfpb-ends-monitoring-apple-013148123.html",
        reuters.published_us + 30_000_000,
        ["AAPL", "USB"],
        ts_ingest=NOON,
        summary="Yahoo's copy.",
    )
    assert jaccard(tokens(reuters.headline).tokens, tokens(yahoo.headline).tokens) == 0.8
    *_, merged = run([yahoo, reuters])
    assert merged.providers == ["fmp", "yfinance"] and merged.symbols == ["AAPL", "USB"]
    assert merged.id == story_id(reuters.canonical_url)  # Reuters published first
    assert merged.replaces == [yahoo.id]  # the id it was known by until then
    assert merged.summary == reuters.summary


def test_press_releases_relayed_twice_in_the_recorded_feed_become_one_story_each() -> None:
    """The Alpha Vantage answer carries three press releases twice, from GlobeNewswire and
    from Benzinga (whose headline adds a ticker tag list, " - BCB Bancorp ( NASDAQ:BCBP )")."""
    answer = recorded("alphavantage_news_sentiment_20240719.json")
    served = symbol_map(news_targets("alphavantage", ["BTC/USDT"]))
    items = alphavantage.parse_feed(answer, (), served, utc_us(2024, 7, 19, 13, 30)).items
    window = StoryWindow()
    for item in items:
        window.add(item)
    assert len(items) == 11 and len(window.stories) == 8
    twice = sorted(
        story.item().headline.split()[0] for story in window.stories if len(story.copies) == 2
    )
    assert twice == ["BCB", "Grayscale", "Star"]
    publishers = {
        copy.item.publisher
        for story in window.stories
        if len(story.copies) == 2
        for copy in story.copies.values()
    }
    assert publishers == {"GlobeNewswire", "Benzinga"}


def test_different_stories_with_similar_headlines_stay_two() -> None:
    pairs = [
        ("Apple shares rise after earnings beat", "Apple shares fall after earnings miss"),
        ("Apple shares rise 3% after earnings beat", "Apple shares rise 5% after earnings beat"),
        ("Fed raises rates as inflation stays high", "Fed cuts rates as inflation stays high"),
        # Two real Benzinga headlines of the recorded feed, given one symbol here.
        (
            "What's Going On With Plug Power Shares Today? - Plug Power  ( NASDAQ:PLUG ) ",
            "What's Going On With Exxon Mobil Shares Today? - Exxon Mobil  ( NYSE:XOM ) ",
        ),
    ]
    for first, second in pairs:
        a = raw("fmp", first, "https://example.com/a", NOON, ["AAPL"])
        b = raw("alphavantage", second, "https://example.org/b", NOON + 60_000_000, ["AAPL"])
        assert not similar(tokens(first), tokens(second), 0.6), (first, second)
        assert len(fold(run([a, b]))) == 2, (first, second)


def test_near_duplicates_need_time_and_a_shared_symbol() -> None:
    headline = "Nvidia unveils new AI chip for data centers"
    base = raw("fmp", headline, "https://a.com/1", NOON, ["NVDA"])
    later = raw("yfinance", headline, "https://b.com/2", NOON + 13 * HOUR_US, ["NVDA"])
    other = raw("yfinance", headline, "https://c.com/3", NOON, ["AMD"])
    close = raw("yfinance", headline, "https://d.com/4", NOON + 11 * HOUR_US, ["NVDA", "AMD"])
    assert len(fold(run([base, later, other]))) == 3
    assert len(fold(run([base, later, other, close]))) == 1  # close links all three


def test_a_copy_linking_two_stories_merges_them_and_names_the_one_it_replaces() -> None:
    a = raw(
        "fmp", "Tesla recalls two million cars over Autopilot", "https://x.com/a", NOON, ["TSLA"]
    )
    c = raw(
        "alphavantage",
        "Regulator probes Tesla driver assistance software",
        "https://y.com/c",
        NOON + 10_000_000,
        ["TSLA"],
    )
    b = raw(
        "yfinance",
        "Regulator probes Tesla driver assistance software",
        "https://www.x.com/a?utm_source=yahoo",
        NOON + 20_000_000,
        ["TSLA"],
    )
    outputs = run([a, c, b])
    assert outputs[-1].id == a.id and outputs[-1].replaces == [c.id]
    (story,) = fold(outputs).values()
    assert story.providers == ["alphavantage", "fmp", "yfinance"]


def test_a_later_poll_of_the_same_item_writes_nothing() -> None:
    item = raw("yfinance", "Apple unveils foldable iPhone", "https://a.com/1", NOON, ["AAPL"])
    again = dataclasses.replace(item, ts_ingest=item.ts_ingest + 600_000_000)
    assert run([item, again, item])[1:] == [None, None]


def test_memory_is_bounded_by_the_logs_ingest_times_and_the_caps() -> None:
    config = DedupConfig(retention_us=HOUR_US, max_stories=3)
    window = StoryWindow(config)
    old = raw("fmp", "Oracle wins cloud contract", "https://a.com/old", NOON, ["ORCL"])
    window.add(old)
    for n in range(5):
        window.add(
            raw(
                "fmp",
                f"Story number {n} about {'xyz' * n}",
                f"https://a.com/{n}",
                NOON + 2 * HOUR_US,
                ["ORCL"],
            )
        )
    assert len(window.stories) == 3
    assert old.canonical_url not in {s.item().canonical_url for s in window.stories}
    again = window.add(old)  # forgotten: it starts over, with the same id
    assert again is not None and again.id == old.id


def test_each_symbol_key_gets_its_stories() -> None:
    item = raw(
        "alphavantage",
        "Microsoft and Apple sign AI pact",
        "https://a.com/1",
        NOON,
        ["AAPL", "MSFT"],
    )
    dedup = NewsDeduplicator(max_keys=2)
    assert dedup.add("AAPL", item) == dedup.add("MSFT", item) is not None
    assert dedup.add("AAPL", item) is None
    dedup.add("NVDA", item)
    assert list(dedup.windows) == ["AAPL", "NVDA"]  # MSFT, the least recently fed, went


HEADLINES = [
    "Apple shares rise after earnings beat",
    "Apple shares rise after an earnings beat",
    "Apple shares fall after earnings miss",
    "Tesla recalls 2 million cars over Autopilot",
    "Tesla recalls 2 million cars over Autopilot - Tesla  ( NASDAQ:TSLA ) ",
    "Tesla recalls 3 million cars over Autopilot",
    "Fed holds rates steady as inflation cools",
]
URLS = [
    "https://www.reuters.com/a",
    "https://m.reuters.com/a/?utm_source=x",
    "https://cnbc.com/b",
    "https://cnbc.com/b#top",
    "https://finance.yahoo.com/c.html",
    "https://wsj.com/d?x=1",
]
copies = st.lists(
    st.builds(
        raw,
        provider=st.sampled_from(["yfinance", "fmp", "alphavantage"]),
        headline=st.sampled_from(HEADLINES),
        url=st.sampled_from(URLS),
        published_us=st.integers(NOON, NOON + 14 * HOUR_US),
        symbols=st.lists(
            st.sampled_from(["AAPL", "TSLA", "BTC/USDT"]), min_size=1, max_size=2, unique=True
        ),
        ts_ingest=st.integers(NOON + 14 * HOUR_US, NOON + 20 * HOUR_US),
        sentiment=st.none() | st.sampled_from([-0.5, 0.25]),
    ),
    max_size=10,
)


def stories(outputs: list[NewsItem | None]) -> dict[str, NewsItem]:
    return {key: dataclasses.replace(item, replaces=[]) for key, item in fold(outputs).items()}


@settings(deadline=None)  # no timing assertions: a busy machine runs an example slowly
@given(st.data())
def test_the_stories_do_not_depend_on_the_order_of_the_copies(data: st.DataObject) -> None:
    items = data.draw(copies)
    shuffled = data.draw(st.permutations(items))
    window = StoryWindow()
    outputs = [window.add(item) for item in items]
    assert stories(outputs) == stories(run(shuffled))
    assert stories(outputs) == {s.id: s.item() for s in window.stories}
    assert len({s.id for s in window.stories}) == len(window.stories)


@settings(deadline=None)
@given(copies)
def test_the_same_log_gives_the_same_items(items: list[NewsItem]) -> None:
    window = StoryWindow()
    assert run(items) == [window.add(item) for item in items]
    assert [window.add(item) for item in items] == [None] * len(items)  # a second poll
