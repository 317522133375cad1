"""News in ingest: one raw record per symbol of an item, the synthetic stories."""

from __future__ import annotations

from collections import Counter

from prometheus_client import REGISTRY

from domain.news.dedup import NewsDeduplicator
from ingest.demand import _DemandFollower
from ingest.news.keyed_pollers import AlphaVantageNewsPoller, FmpNewsPoller
from ingest.news.normalize import Parsed
from ingest.news.planner import NewsRequest, Target
from ingest.news.synthetic_news import synthetic_story
from ingest.records import NewsCopy, as_records
from runtime.health import Progress
from runtime.settings import Settings
from schemas import Demand, ProviderStatus

SYMBOLS = ("AAPL", "MSFT", "BTC/USDT")
PERIOD_US = 20_000_000


def test_a_news_item_becomes_one_record_per_symbol_it_names() -> None:
    status = ProviderStatus("synthetic-news", 1, "UP")
    story = synthetic_story(SYMBOLS, 7, 3, PERIOD_US)[0]
    assert story.symbols == ["AAPL", "MSFT"]
    records = as_records([status, story])
    assert records == [status, NewsCopy("AAPL", story), NewsCopy("MSFT", story)]
    assert [r.provider for r in records] == ["synthetic-news", "synthetic", "synthetic"]
    ticks_only = [status]
    assert as_records(ticks_only) is ticks_only


def test_synthetic_stories_depend_on_seed_and_slot_and_deduplicate_to_one() -> None:
    assert synthetic_story(SYMBOLS, 7, 4, PERIOD_US) == synthetic_story(SYMBOLS, 7, 4, PERIOD_US)
    first, second = synthetic_story(SYMBOLS, 7, 4, PERIOD_US)
    assert first.url != second.url and first.headline != second.headline
    assert first.canonical_url == second.canonical_url
    assert first.symbols == ["MSFT"] and first.published_us == 4 * PERIOD_US - 60_000_000
    dedup = NewsDeduplicator()
    written = [dedup.add("MSFT", copy) for copy in (first, second)]
    assert written[0] is not None and written[0].id == first.id
    assert written[1] is None  # the same story, nothing new to write
    other = synthetic_story(SYMBOLS, 7, 7, PERIOD_US)[0]
    assert other.symbols == ["MSFT"]
    again = dedup.add("MSFT", other)
    assert again is not None and again.id != first.id


def test_skipped_items_are_counted_per_provider_and_reason() -> None:
    poller = FmpNewsPoller("KEY", ["AAPL"], timeout_s=1)
    labels = {"provider": "fmp", "reason": "no_url"}
    before = REGISTRY.get_sample_value("fiml_news_skipped_total", labels) or 0.0
    parsed = Parsed(skipped=Counter({"no_url": 2}))
    poller.count_skipped(NewsRequest("stock", (Target("stock", "AAPL", ("AAPL",)),)), parsed)
    assert REGISTRY.get_sample_value("fiml_news_skipped_total", labels) == before + 2
    assert poller.skipped == {"no_url": 2} and poller.name == "fmp-news"


def test_news_pollers_learn_every_subscribed_symbol_from_demand() -> None:
    poller = AlphaVantageNewsPoller("KEY", ["AAPL"], timeout_s=1)
    follower = _DemandFollower(Settings(symbols=("AAPL",)), [poller], 0.5, Progress(60.0))
    now = 1_800_000_000_000_000
    follower.book.apply(Demand("AAPL", "gw-1", 2, now, 60.0))  # configured, subscribed
    follower.book.apply(Demand("IBM", "gw-1", 1, now, 60.0))
    follower.book.apply(Demand("MSFT", "gw-1", 0, now, 60.0))  # no subscriber
    follower._serve(now)
    assert poller.subscribed == {"AAPL", "IBM"}
    assert poller.extra == {"IBM"}
